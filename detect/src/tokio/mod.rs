//! A tokio driver (feature `tokio`): runs one [`Swim`](crate::Swim) member
//! over one UDP socket, in a task, for users who want a working member
//! without writing the run loop. It holds no protocol logic: it does what
//! [the run loop](crate#the-run-loop) says, with real time and a real
//! socket.
//!
//! - [`spawn`] starts the task and returns a cloneable [`Handle`] and the
//!   [`Events`] stream. [`Handle::join`] joins through seeds,
//!   [`Handle::snapshot`] returns the member list, the state machine's
//!   [`SwimCounters`](crate::SwimCounters) and the driver's
//!   [`DriverCounters`], [`Handle::leave`] leaves gracefully and
//!   [`Handle::shutdown`] stops the task.
//! - **A member's id is its address**: `Swim<SocketAddr>`, the address peers
//!   send to ([`SocketAddr`](std::net::SocketAddr) implements
//!   [`IdCodec`](crate::IdCodec)). So there is no address book to keep in
//!   step with the membership: whoever SWIM learns of can be reached. The id
//!   is the socket's local address, or [`DriverConfig::advertise`] where
//!   that is not what peers see (a wildcard bind, NAT).
//! - Membership changes come out of [`Events`], a bounded queue that
//!   implements `futures_core::Stream` (and has an inherent
//!   [`Events::recv`]). A full queue drops the event and counts it
//!   ([`DriverCounters::events_dropped`]): a slow reader never stalls failure
//!   detection.
//!
//! The driver's loop, once per wake-up (a command from a handle, a datagram,
//! the state machine's timer): feed the input, take the datagrams already
//! waiting on the socket, call
//! [`handle_timeout`](crate::Swim::handle_timeout) if
//! [`poll_timeout`](crate::Swim::poll_timeout) has passed, then drain
//! [`poll_transmit`](crate::Swim::poll_transmit) (each packet sent with
//! `send_to`) and [`poll_event`](crate::Swim::poll_event) (into [`Events`]),
//! and sleep until the next `poll_timeout`. Time is tokio's
//! [`Instant`](::tokio::time::Instant), converted to the
//! [`std::time::Instant`] the state machine takes, so a paused tokio clock
//! drives it too.
//!
//! Bad datagrams never stop the driver: one larger than
//! [`SwimConfig::max_packet_size`](crate::SwimConfig::max_packet_size) is
//! dropped unread ([`DriverCounters::oversized`]), one whose source address
//! is not the id it claims is dropped
//! ([`DriverCounters::unknown_sender`]), and one the state machine refuses
//! (garbage, another cluster, ourselves) is counted in
//! [`DriverCounters::rejected`] and, by cause, in
//! [`SwimCounters`](crate::SwimCounters).
//!
//! Queues are bounded: commands ([`DriverConfig::command_queue`]; handles
//! wait for room), events ([`DriverConfig::event_queue`]; dropped when
//! full), and the state machine's own outputs, drained after every input.
//! There is no send queue: packets go to the socket as they are drained (a
//! full socket buffer makes the loop wait for the kernel).

mod config;
mod driver;
mod events;
mod handle;

pub use config::{DriverConfig, DriverConfigError, SpawnError};
pub use driver::spawn;
pub use events::Events;
pub use handle::{CommandError, DriverCounters, Handle, Snapshot};
