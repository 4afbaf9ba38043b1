//! The task that runs a replica, and the handle that talks to it.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use ::tokio::sync::{mpsc, oneshot};
use ::tokio::time::{self, MissedTickBehavior};

use super::{DriverConfig, DriverConfigError, DriverCounters, DriverError, Persister, Transport};
use crate::codec::{Decode, Encode};
use crate::id::NodeId;
use crate::lattice::{Authored, Lattice};
use crate::sync::{Replica, SyncError};

/// Most commands taken from the queue in one round of the loop.
const COMMAND_BATCH: usize = 256;
/// Most messages taken from the transport, beyond the one that woke the loop,
/// in one round.
const MESSAGE_BATCH: usize = 256;

type Mutator<N, S> = Box<dyn FnOnce(&mut S, &N) -> S + Send>;

enum Command<N, S> {
    Mutate(Mutator<N, S>, oneshot::Sender<S>),
    State(oneshot::Sender<S>),
    Counters(oneshot::Sender<DriverCounters>),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to a replica running in a driver task ([`spawn`]).
///
/// The driver runs until [`shutdown`](Self::shutdown), a persist failure, or
/// until every handle is dropped.
pub struct Handle<N, S> {
    commands: mpsc::Sender<Command<N, S>>,
}

impl<N, S> Clone for Handle<N, S> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
        }
    }
}

impl<N, S> std::fmt::Debug for Handle<N, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("shut_down", &self.commands.is_closed())
            .finish_non_exhaustive()
    }
}

impl<N: Send + 'static, S: Send + 'static> Handle<N, S> {
    /// Applies the delta mutator `f` on the replica ([`Replica::mutate`]:
    /// `|counter, me| counter.increment(me, 1)`) and resolves with its delta
    /// once the change is durable (the [`Persister`] wrote it). The delta
    /// ships to the peers at the next anti-entropy round.
    ///
    /// `f` runs in the driver's task: keep it short. A panic in `f` stops
    /// the driver.
    ///
    /// # Errors
    /// [`DriverError::ShutDown`] if the driver stopped before the change was
    /// durable.
    pub async fn mutate<F>(&self, f: F) -> Result<S, DriverError>
    where
        F: FnOnce(&mut S, &N) -> S + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.call(Command::Mutate(Box::new(f), reply), answer).await
    }

    /// A snapshot (a clone) of the replica's state.
    ///
    /// # Errors
    /// [`DriverError::ShutDown`] if the driver has stopped.
    pub async fn state(&self) -> Result<S, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.call(Command::State(reply), answer).await
    }

    /// What the replica and the driver did so far.
    ///
    /// # Errors
    /// [`DriverError::ShutDown`] if the driver has stopped.
    pub async fn counters(&self) -> Result<DriverCounters, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.call(Command::Counters(reply), answer).await
    }

    /// Whether the driver has stopped.
    pub fn is_shut_down(&self) -> bool {
        self.commands.is_closed()
    }

    /// Stops the driver: pending calls fail with [`DriverError::ShutDown`],
    /// the transport and the persister are dropped (a
    /// [`TcpTransport`](super::TcpTransport) closes its connections and its
    /// listener). Resolves once the task has stopped; returns at once if it
    /// already had. The last record the persister wrote is the one to
    /// [`Replica::restore`] from.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = dsys_net::answered(done, &self.commands).await;
        }
    }

    async fn call<T>(
        &self,
        command: Command<N, S>,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, DriverError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| DriverError::ShutDown)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .ok_or(DriverError::ShutDown)
    }
}

/// Starts a task that runs `replica`, on the current tokio runtime.
///
/// `replica` is built as usual: [`Replica::new`] on first start,
/// [`Replica::restore`] from the last durable record on every restart, with
/// its peers added. `persister` makes its record durable, `transport` carries
/// its messages.
///
/// # Errors
/// [`DriverConfigError`] if `config` does not validate; nothing started.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn<N, S, P, T>(
    replica: Replica<N, S>,
    persister: P,
    transport: T,
    config: DriverConfig,
) -> Result<Handle<N, S>, DriverConfigError>
where
    N: NodeId + Send + 'static,
    S: Lattice + Authored<N> + PartialEq + Encode + Decode + Send + 'static,
    P: Persister<S>,
    T: Transport<N>,
{
    config.validate()?;
    let (commands, receiver) = mpsc::channel(config.command_queue);
    let driver = Driver {
        replica,
        persister,
        transport,
        commands: receiver,
        persisted: 0,
        confirm: Vec::new(),
        counters: DriverCounters::default(),
        config,
    };
    ::tokio::spawn(driver.run());
    Ok(Handle { commands })
}

struct Driver<N: NodeId, S, P, T> {
    replica: Replica<N, S>,
    persister: P,
    transport: T,
    commands: mpsc::Receiver<Command<N, S>>,
    /// `replica.changes()` at the last write. A restored replica starts at 1,
    /// so its new incarnation is written before its first message.
    persisted: u64,
    /// Mutations of this round, answered once the record is durable.
    confirm: Vec<(oneshot::Sender<S>, S)>,
    counters: DriverCounters,
    config: DriverConfig,
}

enum Event<N, S> {
    Ship,
    Message(Option<(N, Vec<u8>)>),
    Command(Option<Command<N, S>>),
}

impl<N, S, P, T> Driver<N, S, P, T>
where
    N: NodeId + Send + 'static,
    S: Lattice + Authored<N> + PartialEq + Encode + Decode + Send + 'static,
    P: Persister<S>,
    T: Transport<N>,
{
    async fn run(mut self) {
        let mut ticks = time::interval(self.config.ship_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut transport_open = true;
        let mut shutdown_ack = None;
        loop {
            let event = {
                let transport = &mut self.transport;
                let commands = &mut self.commands;
                ::tokio::select! {
                    command = commands.recv() => Event::Command(command),
                    message = transport.recv(), if transport_open => Event::Message(message),
                    _ = ticks.tick() => Event::Ship,
                }
            };
            let mut stop = match event {
                Event::Ship => {
                    self.counters.rounds += 1;
                    self.replica.ship();
                    false
                }
                Event::Message(Some((from, bytes))) => {
                    self.message(&from, &bytes);
                    false
                }
                Event::Message(None) => {
                    transport_open = false;
                    false
                }
                Event::Command(command) => self.command(command, &mut shutdown_ack),
            };
            // Take what is waiting already, so one write covers many changes.
            for _ in 0..COMMAND_BATCH {
                if stop {
                    break;
                }
                match self.commands.try_recv() {
                    Ok(command) => stop = self.command(Some(command), &mut shutdown_ack),
                    Err(_) => break,
                }
            }
            if stop {
                break;
            }
            if transport_open {
                transport_open = self.take_ready_messages();
            }
            if self.drain().await.is_err() {
                // Nothing of this round was sent or confirmed; the last
                // durable record is still the one to restore from.
                break;
            }
        }
        // Pending calls fail with ShutDown as their senders drop with
        // `self`; the transport closes its connections.
        drop(self);
        if let Some(ack) = shutdown_ack {
            let _ = ack.send(());
        }
    }

    fn message(&mut self, from: &N, bytes: &[u8]) {
        self.counters.received += 1;
        match self.replica.handle_bytes(from, bytes) {
            Ok(()) => {}
            Err(SyncError::Malformed(_)) => self.counters.malformed += 1,
            Err(SyncError::UnknownPeer) => self.counters.unknown_peer += 1,
            // Counted by the replica (`rejected`).
            Err(_) => {}
        }
    }

    /// Feeds the replica the messages the transport holds already, up to
    /// [`MESSAGE_BATCH`], without waiting; false once the transport has
    /// closed. `recv` is cancel safe, so polling it once and dropping it
    /// loses nothing.
    fn take_ready_messages(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..MESSAGE_BATCH {
            let polled = {
                let recv = std::pin::pin!(self.transport.recv());
                recv.poll(&mut cx)
            };
            match polled {
                Poll::Ready(Some((from, bytes))) => self.message(&from, &bytes),
                Poll::Ready(None) => return false,
                Poll::Pending => break,
            }
        }
        true
    }

    /// Handles one command; true when the driver must stop.
    fn command(
        &mut self,
        command: Option<Command<N, S>>,
        shutdown_ack: &mut Option<oneshot::Sender<()>>,
    ) -> bool {
        match command {
            None => return true,
            Some(Command::Shutdown(ack)) => {
                *shutdown_ack = Some(ack);
                return true;
            }
            Some(Command::Mutate(f, reply)) => {
                let delta = self.replica.mutate(f);
                self.confirm.push((reply, delta));
            }
            Some(Command::State(reply)) => {
                let _ = reply.send(self.replica.state().clone());
            }
            Some(Command::Counters(reply)) => {
                let mut counters = self.counters.clone();
                counters.sync = self.replica.counters().clone();
                let _ = reply.send(counters);
            }
        }
        false
    }

    /// The end of a round (the crate's run loop, step 3): write the record if
    /// it changed, then confirm the mutations and send what the replica
    /// hands out.
    async fn drain(&mut self) -> std::io::Result<()> {
        let changes = self.replica.changes();
        if changes != self.persisted {
            self.persister
                .persist(self.replica.state(), self.replica.incarnation())
                .await?;
            self.persisted = changes;
            self.counters.persists += 1;
        }
        for (reply, delta) in self.confirm.drain(..) {
            let _ = reply.send(delta);
        }
        while let Some(out) = self.replica.poll_transmit() {
            self.transport.send(&out.to, out.message.to_bytes());
        }
        Ok(())
    }
}
