//! The task that runs a member over its UDP socket.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ::tokio::net::UdpSocket;
use ::tokio::sync::mpsc::{self, error::TrySendError};
use ::tokio::sync::oneshot;
use ::tokio::time::{self, Duration, Instant};

use super::config::{DriverConfig, SpawnError, reachable};
use super::events::Events;
use super::handle::{Command, DriverCounters, Handle, Snapshot};
use crate::{Event, Swim, SwimConfig, inspect_packet};

/// Most commands taken from the queue in one step of the loop.
const COMMAND_BATCH: usize = 64;
/// Most datagrams read, beyond the one that woke the loop, before the
/// outputs are drained.
const RECV_BATCH: usize = 64;
/// Pause after an error reading the socket, so that an error that repeats
/// cannot spin the loop.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(1);

/// Starts a task that runs a SWIM member on `socket`, on the current tokio
/// runtime. The member's id is [`DriverConfig::advertise`], or else the
/// socket's local address. It knows nobody until [`Handle::join`] (a
/// member that is only joined to needs no `join` of its own).
///
/// # Errors
///
/// [`SpawnError`]: a config out of its limits, a socket without a usable
/// local address, or no tokio runtime. Nothing was started.
pub fn spawn(
    socket: UdpSocket,
    swim: SwimConfig,
    config: DriverConfig,
) -> Result<(Handle, Events), SpawnError> {
    config.validate()?;
    let runtime = ::tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime)?;
    let me = match config.advertise {
        Some(addr) => addr,
        None => socket.local_addr()?,
    };
    if !reachable(me) {
        return Err(SpawnError::Unaddressable(me));
    }
    let seed = config.rng_seed.unwrap_or_else(|| fresh_seed(me));
    let swim = Swim::new(me, swim, seed, Instant::now().into_std())?;
    let (commands, command_rx) = mpsc::channel(config.command_queue);
    let (events, event_rx) = mpsc::channel(config.event_queue);
    let driver = Driver {
        buffer: vec![0; swim.config().max_packet_size + 1],
        swim,
        socket,
        commands: command_rx,
        events,
        require_source_match: config.require_source_match,
        counters: DriverCounters::default(),
        acks: Vec::new(),
    };
    runtime.spawn(driver.run());
    Ok((Handle::new(me, commands), Events::new(event_rx)))
}

/// A seed that differs between members (the address) and between the lives
/// of one member (the wall clock).
fn fresh_seed(me: SocketAddr) -> u64 {
    let mut hasher = DefaultHasher::new();
    me.hash(&mut hasher);
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .hash(&mut hasher);
    hasher.finish()
}

struct Driver {
    swim: Swim<SocketAddr>,
    socket: UdpSocket,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event<SocketAddr>>,
    require_source_match: bool,
    counters: DriverCounters,
    /// `max_packet_size + 1` bytes: a datagram that fills it is oversized.
    buffer: Vec<u8>,
    /// Join and leave commands to answer once their packets are sent.
    acks: Vec<oneshot::Sender<()>>,
}

/// What woke the loop.
enum Wake {
    Command(Option<Command>),
    Datagram(io::Result<(usize, SocketAddr)>),
    Timer,
}

impl Driver {
    async fn run(mut self) {
        let sleep = time::sleep_until(Instant::now());
        ::tokio::pin!(sleep);
        let mut shutdown_ack = None;
        'run: loop {
            let deadline = self.swim.poll_timeout();
            if let Some(at) = deadline {
                sleep.as_mut().reset(Instant::from_std(at));
            }
            let wake = ::tokio::select! {
                // Commands first: a shutdown is not kept waiting by traffic.
                biased;
                command = self.commands.recv() => Wake::Command(command),
                received = self.socket.recv_from(&mut self.buffer) => Wake::Datagram(received),
                () = &mut sleep, if deadline.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Command(command) => {
                    if self.command(command, &mut shutdown_ack) {
                        break 'run;
                    }
                }
                Wake::Datagram(received) => self.received(received).await,
                // Handled below, with any timer that came due meanwhile.
                Wake::Timer => {}
            }
            for _ in 0..COMMAND_BATCH {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if self.command(Some(command), &mut shutdown_ack) {
                            break 'run;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.take_ready_datagrams();
            // After every input, not only when the timer branch wins: under a
            // flood of datagrams the biased select would never pick it.
            let now = Instant::now().into_std();
            if self.swim.poll_timeout().is_some_and(|at| at <= now) {
                self.swim.handle_timeout(now);
            }
            self.drain().await;
        }
        // The socket closes and `Events` ends as `self` drops.
        drop(self);
        if let Some(ack) = shutdown_ack {
            let _ = ack.send(());
        }
    }

    /// Handles one command; true when the driver must stop (a shutdown, or
    /// every handle dropped).
    fn command(
        &mut self,
        command: Option<Command>,
        shutdown_ack: &mut Option<oneshot::Sender<()>>,
    ) -> bool {
        match command {
            None => return true,
            Some(Command::Shutdown(ack)) => {
                *shutdown_ack = Some(ack);
                return true;
            }
            Some(Command::Join(seeds, ack)) => {
                self.swim.join(seeds, Instant::now().into_std());
                self.acks.push(ack);
            }
            Some(Command::Leave(ack)) => {
                self.swim.leave();
                self.acks.push(ack);
            }
            Some(Command::Snapshot(reply)) => {
                let _ = reply.send(self.snapshot());
            }
        }
        false
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            me: *self.swim.me(),
            incarnation: self.swim.incarnation(),
            members: self
                .swim
                .members()
                .map(|(addr, state, incarnation)| (*addr, state, incarnation))
                .collect(),
            live_members: self.swim.live_members(),
            health_score: self.swim.health_score(),
            has_left: self.swim.has_left(),
            swim: self.swim.counters().clone(),
            driver: self.counters.clone(),
        }
    }

    async fn received(&mut self, received: io::Result<(usize, SocketAddr)>) {
        match received {
            Ok((len, from)) => self.datagram(len, from),
            Err(_) => {
                // ICMP errors surfacing on the socket, or worse: count, and
                // pause so that an error that repeats cannot spin the loop.
                self.counters.recv_errors += 1;
                time::sleep(RECV_ERROR_PAUSE).await;
            }
        }
    }

    /// Reads the datagrams already waiting, up to [`RECV_BATCH`], without
    /// waiting for more.
    fn take_ready_datagrams(&mut self) {
        for _ in 0..RECV_BATCH {
            match self.socket.try_recv_from(&mut self.buffer) {
                Ok((len, from)) => self.datagram(len, from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.counters.recv_errors += 1;
                    break;
                }
            }
        }
    }

    /// One datagram of `len` bytes from `from`, in the buffer: checked for
    /// size and source, then handed to the state machine.
    fn datagram(&mut self, len: usize, from: SocketAddr) {
        self.counters.datagrams_received += 1;
        self.counters.bytes_received += len as u64;
        let max = self.swim.config().max_packet_size;
        let Some(payload) = self.buffer.get(..len).filter(|_| len <= max) else {
            self.counters.oversized += 1;
            return;
        };
        if self.require_source_match {
            let cluster_id = self.swim.config().cluster_id;
            // A packet that does not decode is left to the state machine,
            // which refuses it and counts why.
            if let Ok(claimed) = inspect_packet::<SocketAddr>(payload, cluster_id) {
                if canonical(claimed) != canonical(from) {
                    self.counters.unknown_sender += 1;
                    return;
                }
            }
        }
        let now = Instant::now().into_std();
        if self.swim.handle_packet(payload, now).is_err() {
            self.counters.rejected += 1;
        }
    }

    /// Sends the packets, then hands out the events (the crate's run loop,
    /// step 3), then answers the commands whose packets are now sent.
    async fn drain(&mut self) {
        while let Some(transmit) = self.swim.poll_transmit() {
            match self.socket.send_to(&transmit.payload, transmit.to).await {
                Ok(sent) => {
                    self.counters.datagrams_sent += 1;
                    self.counters.bytes_sent += sent as u64;
                }
                Err(_) => self.counters.send_errors += 1,
            }
        }
        while let Some(event) = self.swim.poll_event() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.counters.events_dropped += 1,
                // Nobody reads events: nothing to count.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address (a dual-stack socket's view of an
/// IPv4 peer) written as IPv4, so it compares equal to the IPv4 id.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
