//! The cloneable handle to a running member, and what it reads back.

use std::net::SocketAddr;

use ::tokio::sync::{mpsc, oneshot};

use crate::{State, SwimCounters};

/// What a handle asks of the driver's task.
pub(super) enum Command {
    Join(Vec<SocketAddr>, oneshot::Sender<()>),
    Leave(oneshot::Sender<()>),
    Snapshot(oneshot::Sender<Snapshot>),
    Shutdown(oneshot::Sender<()>),
}

/// Why a [`Handle`] call did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The driver has stopped ([`Handle::shutdown`], or every handle was
    /// dropped). Nothing changed.
    #[error("the driver has shut down")]
    ShutDown,
}

/// What the driver did with datagrams and events. Every field only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverCounters {
    /// Datagrams read from the socket, whatever became of them.
    pub datagrams_received: u64,
    /// Bytes in those datagrams (an oversized one counts as the bytes read:
    /// `max_packet_size + 1`).
    pub bytes_received: u64,
    /// Datagrams dropped unread because they were larger than
    /// [`SwimConfig::max_packet_size`](crate::SwimConfig::max_packet_size):
    /// no member sends those.
    pub oversized: u64,
    /// Datagrams dropped because their source address is not the member id
    /// the packet claims ([`DriverConfig::require_source_match`](super::DriverConfig::require_source_match)).
    pub unknown_sender: u64,
    /// Datagrams the state machine refused; [`SwimCounters`] says why
    /// (`malformed`, `wrong_cluster`, `from_self`, `after_leave`).
    pub rejected: u64,
    /// Packets handed to the socket.
    pub datagrams_sent: u64,
    /// Bytes in those packets.
    pub bytes_sent: u64,
    /// Packets the socket refused to send (an unreachable or invalid address
    /// learned from a peer, a datagram too large for the path). Lost, as UDP
    /// may lose any packet; SWIM tolerates it.
    pub send_errors: u64,
    /// Errors reading the socket. The driver goes on reading.
    pub recv_errors: u64,
    /// Events dropped because [`Events`](super::Events) was full.
    pub events_dropped: u64,
}

/// A member's view and counters, as of one moment of the driver's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// This member's id.
    pub me: SocketAddr,
    /// This member's incarnation: raised each time it refuted a suspicion, or
    /// outbid a previous life after a restart (SWIM §4.2).
    pub incarnation: u32,
    /// Every remembered member but this one, with its state and incarnation,
    /// in address order.
    pub members: Vec<(SocketAddr, State, u32)>,
    /// Alive and suspect members, this one not included.
    pub live_members: usize,
    /// Lifeguard's local health score (0 = healthy).
    pub health_score: u32,
    /// Whether [`Handle::leave`] was called.
    pub has_left: bool,
    /// The state machine's counters.
    pub swim: SwimCounters,
    /// The driver's counters.
    pub driver: DriverCounters,
}

impl Snapshot {
    /// What this member believes about `node` (`None`: unknown or forgotten).
    pub fn state_of(&self, node: SocketAddr) -> Option<State> {
        self.members
            .binary_search_by_key(&node, |(addr, _, _)| *addr)
            .ok()
            .and_then(|i| self.members.get(i))
            .map(|(_, state, _)| *state)
    }
}

/// A cloneable handle to a member running in a driver task
/// ([`spawn`](super::spawn)).
///
/// The driver runs until [`shutdown`](Self::shutdown), or until every handle
/// is dropped.
#[derive(Clone)]
pub struct Handle {
    me: SocketAddr,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("me", &self.me)
            .field("shut_down", &self.commands.is_closed())
            .finish()
    }
}

impl Handle {
    pub(super) fn new(me: SocketAddr, commands: mpsc::Sender<Command>) -> Self {
        Self { me, commands }
    }

    /// This member's id: the address peers send to.
    pub fn me(&self) -> SocketAddr {
        self.me
    }

    /// Joins through `seeds` ([`Swim::join`](crate::Swim::join)): resolves
    /// once the announcements to them are sent. Members show up in
    /// [`Events`](super::Events) as `Up` as they are learned. The seeds are
    /// asked again every protocol period while this member knows nobody
    /// alive, so a seed that is not up yet is no error.
    ///
    /// # Errors
    ///
    /// [`CommandError::ShutDown`]; nothing was sent.
    pub async fn join(
        &self,
        seeds: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<(), CommandError> {
        let seeds = seeds.into_iter().collect();
        self.ask(|reply| Command::Join(seeds, reply)).await
    }

    /// Leaves gracefully ([`Swim::leave`](crate::Swim::leave)): resolves once
    /// the departure is sent to a few members. The driver keeps running, so
    /// the news keeps spreading through gossip; wait a few
    /// [`gossip_interval`](crate::SwimConfig::gossip_interval)s before
    /// [`shutdown`](Self::shutdown). Packets received from then on are
    /// refused (counted in `after_leave`). A member cannot join again after
    /// leaving: spawn a new one.
    ///
    /// # Errors
    ///
    /// [`CommandError::ShutDown`]; nothing was sent.
    pub async fn leave(&self) -> Result<(), CommandError> {
        self.ask(Command::Leave).await
    }

    /// The member's current view and counters.
    ///
    /// # Errors
    ///
    /// [`CommandError::ShutDown`].
    pub async fn snapshot(&self) -> Result<Snapshot, CommandError> {
        self.ask(Command::Snapshot).await
    }

    /// Whether the driver has stopped.
    pub fn is_shut_down(&self) -> bool {
        self.commands.is_closed()
    }

    /// Stops the driver without telling anyone (peers will find the member
    /// down, as after a crash; [`leave`](Self::leave) first for a graceful
    /// exit). The socket is closed and [`Events`](super::Events) ends.
    /// Resolves once the task has stopped; at once if it already had.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| CommandError::ShutDown)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .ok_or(CommandError::ShutDown)
    }
}
