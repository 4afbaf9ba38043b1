//! The task that runs a node, and the handle that talks to it.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use ::tokio::sync::{mpsc, oneshot, watch};
use ::tokio::time::{self, MissedTickBehavior};
use bytes::Bytes;

use super::{
    Applied, DriverConfig, DriverConfigError, PersistFuture, Persister, ProposeError, ReadError,
    StateMachine, Transport,
};
use crate::entry::{Index, Term};
use crate::output::Output;
use crate::raft::{NodeId, RaftNode, Status};
use crate::storage::Storage;

/// Most commands taken from the queue in one step of the loop.
const COMMAND_BATCH: usize = 256;
/// Most messages taken from the transport, beyond the one that woke the
/// loop, in one step.
const MESSAGE_BATCH: usize = 256;

type ProposeReply<N, O> = oneshot::Sender<Result<Applied<O>, ProposeError<N>>>;
/// A proposal waiting for its index to be applied: its term and who to tell.
type Pending<N, O> = (Term, ProposeReply<N, O>);
type ReadReply = oneshot::Sender<Result<Index, ReadError>>;

enum Command<N, O> {
    Propose(Bytes, ProposeReply<N, O>),
    Read(ReadReply),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to a node running in a driver task ([`spawn`]).
///
/// The driver runs until [`shutdown`](Self::shutdown), a persistence
/// failure, or until every handle is dropped.
pub struct Handle<N, O> {
    commands: mpsc::Sender<Command<N, O>>,
    status: watch::Receiver<Status<N>>,
}

impl<N, O> Clone for Handle<N, O> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            status: self.status.clone(),
        }
    }
}

impl<N, O> std::fmt::Debug for Handle<N, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("shut_down", &self.commands.is_closed())
            .finish_non_exhaustive()
    }
}

impl<N: NodeId + Send + Sync + 'static, O: Send + 'static> Handle<N, O> {
    /// Proposes `data`; resolves once its entry is applied on this node,
    /// with what the state machine returned.
    ///
    /// A proposal accepted by a leader that then loses leadership may still
    /// commit (a later leader may hold its entry), so it stays pending until
    /// this node learns its fate: its own entry applied (`Ok`), or another
    /// entry committed at its index or, with a newer term, before it
    /// (`Lost`, final). Both come once the next leader's first entry is
    /// applied here; a node cut off from the cluster waits until it hears
    /// from it again (wrap the call in a timeout where that matters).
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] (with the leader this node knows of),
    /// [`ProposeError::Refused`], [`ProposeError::Lost`] when another entry
    /// committed at its index, [`ProposeError::ShutDown`].
    pub async fn propose(&self, data: impl Into<Bytes>) -> Result<Applied<O>, ProposeError<N>> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Propose(data.into(), reply))
            .await
            .map_err(|_| ProposeError::ShutDown)?;
        answer.await.map_err(|_| ProposeError::ShutDown)?
    }

    /// A linearizable read (ReadIndex, thesis §6.4): resolves once this
    /// node's state machine has applied every entry committed before the
    /// call, with that index. Read the state machine then: the result is no
    /// older than the moment `read` was called. Works on followers too (the
    /// read is confirmed through the leader).
    ///
    /// # Errors
    /// [`ReadError::NoLeader`] during an election, [`ReadError::Failed`]
    /// when leadership changed before the read was confirmed (retry both),
    /// [`ReadError::ShutDown`].
    pub async fn read(&self) -> Result<Index, ReadError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Read(reply))
            .await
            .map_err(|_| ReadError::ShutDown)?;
        answer.await.map_err(|_| ReadError::ShutDown)?
    }

    /// The node's state as of its last step.
    pub fn status(&self) -> Status<N> {
        self.status.borrow().clone()
    }

    /// Waits until this node knows a leader, and returns it.
    ///
    /// # Errors
    /// [`ReadError::ShutDown`] if the driver stops first.
    pub async fn leader(&self) -> Result<N, ReadError> {
        let mut status = self.status.clone();
        let status = status
            .wait_for(|s| s.leader.is_some())
            .await
            .map_err(|_| ReadError::ShutDown)?;
        status.leader.clone().ok_or(ReadError::ShutDown)
    }

    /// Whether the driver has stopped.
    pub fn is_shut_down(&self) -> bool {
        self.commands.is_closed()
    }

    /// Stops the driver: pending proposals and reads fail with `ShutDown`,
    /// the transport and the persister are dropped (a [`super::TcpTransport`]
    /// closes its connections). Resolves once the task has stopped; returns
    /// at once if it already had.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// Starts a task that runs `node`, on the current tokio runtime.
///
/// `node` is built as usual ([`RaftNode::new`] from its storage);
/// `persister` makes its batches durable, `transport` carries its
/// messages, `state_machine` applies what commits.
///
/// # Errors
/// [`DriverConfigError`] if `config` does not validate; nothing started.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn<S, P, T, M>(
    node: RaftNode<S>,
    persister: P,
    transport: T,
    state_machine: M,
    config: DriverConfig,
) -> Result<Handle<S::NodeId, M::Output>, DriverConfigError>
where
    S: Storage + Send + 'static,
    S::NodeId: Send + Sync + 'static,
    P: Persister<S>,
    T: Transport<S::NodeId>,
    M: StateMachine<S::NodeId>,
{
    config.validate()?;
    let (commands, receiver) = mpsc::channel(config.command_queue);
    let (status_tx, status) = watch::channel(node.status());
    // Read ids must increase across restarts too: start from the wall
    // clock, in microseconds (ReplicatedLog::read_index).
    let next_read_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
    let driver = Driver {
        node,
        persister,
        transport,
        state_machine,
        commands: receiver,
        status: status_tx,
        persisting: VecDeque::new(),
        proposals: BTreeMap::new(),
        reads: BTreeMap::new(),
        next_read_id,
        applied_term: 0,
        tick: config.tick,
    };
    ::tokio::spawn(driver.run());
    Ok(Handle { commands, status })
}

struct Driver<S: Storage, P, T, M: StateMachine<S::NodeId>> {
    node: RaftNode<S>,
    persister: P,
    transport: T,
    state_machine: M,
    commands: mpsc::Receiver<Command<S::NodeId, M::Output>>,
    status: watch::Sender<Status<S::NodeId>>,
    /// Batches handed to the persister, oldest first.
    persisting: VecDeque<(u64, PersistFuture)>,
    /// Proposals accepted here, by index.
    proposals: BTreeMap<Index, Pending<S::NodeId, M::Output>>,
    reads: BTreeMap<u64, ReadReply>,
    next_read_id: u64,
    /// The term of the last entry applied.
    applied_term: Term,
    tick: std::time::Duration,
}

enum Event<N, O> {
    Tick,
    Message(Option<crate::message::Message<N>>),
    Command(Option<Command<N, O>>),
    Persisted(u64, std::io::Result<()>),
}

impl<S, P, T, M> Driver<S, P, T, M>
where
    S: Storage + Send + 'static,
    S::NodeId: Send + Sync + 'static,
    P: Persister<S>,
    T: Transport<S::NodeId>,
    M: StateMachine<S::NodeId>,
{
    async fn run(mut self) {
        let mut ticks = time::interval(self.tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut transport_open = true;
        let mut shutdown_ack = None;
        loop {
            let event = {
                let persisting = &mut self.persisting;
                let transport = &mut self.transport;
                let commands = &mut self.commands;
                ::tokio::select! {
                    Some(done) = async {
                        match persisting.front_mut() {
                            Some((id, future)) => Some((*id, future.as_mut().await)),
                            None => None,
                        }
                    }, if !persisting.is_empty() => Event::Persisted(done.0, done.1),
                    command = commands.recv() => Event::Command(command),
                    message = transport.recv(), if transport_open => Event::Message(message),
                    _ = ticks.tick() => Event::Tick,
                }
            };
            let mut stop = match event {
                Event::Tick => {
                    self.node.tick();
                    false
                }
                Event::Message(Some(message)) => {
                    self.node.handle_message(message);
                    false
                }
                Event::Message(None) => {
                    transport_open = false;
                    false
                }
                Event::Persisted(id, Ok(())) => {
                    self.persisting.pop_front();
                    self.node.on_persisted(id);
                    false
                }
                Event::Persisted(id, Err(e)) => {
                    tracing::error!(id, error = %e, "persisting failed; the driver stops");
                    true
                }
                Event::Command(command) => self.command(command, &mut shutdown_ack),
            };
            // Take the commands already waiting before draining, so that
            // proposals made together go out in one append (the node
            // batches what is proposed between two drains).
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
            // Likewise the messages already received: a follower then
            // appends what several AppendEntries carry and persists it with
            // one fsync (the drain hands every batch over at once).
            if transport_open {
                transport_open = self.take_ready_messages();
            }
            self.drain();
            self.status.send_if_modified(|status| {
                let now = self.node.status();
                let changed = *status != now;
                *status = now;
                changed
            });
        }
        // Pending proposals and reads fail with ShutDown as their senders
        // drop with `self`; the transport closes its connections.
        drop(self);
        if let Some(ack) = shutdown_ack {
            let _ = ack.send(());
        }
    }

    /// Feeds the node the messages the transport holds already, up to
    /// [`MESSAGE_BATCH`], without waiting; false once the transport has
    /// closed. `recv` is cancel safe, so polling it once and dropping it
    /// loses nothing.
    fn take_ready_messages(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..MESSAGE_BATCH {
            let recv = std::pin::pin!(self.transport.recv());
            match recv.poll(&mut cx) {
                Poll::Ready(Some(message)) => self.node.handle_message(message),
                Poll::Ready(None) => return false,
                Poll::Pending => break,
            }
        }
        true
    }

    /// An entry of `term` committed at `index`: every proposal after it of
    /// an older term is lost. A leader's log holding it would hold, at
    /// `index`, an entry of a term no newer than the proposal's (terms
    /// never decrease along a log), yet every later leader holds the
    /// committed entry there (§5.4.1, Leader Completeness). Without this, a
    /// deposed leader's proposals past the new leader's log would wait for
    /// their index to be applied, which in an idle cluster may never come.
    /// Proposals are made in the node's current term, never older than a
    /// committed entry's, so checking when the applied term rises is
    /// enough.
    fn drop_overtaken(&mut self, index: Index, term: Term) {
        let lost: Vec<Index> = self
            .proposals
            .range(index + 1..)
            .filter(|(_, (t, _))| *t < term)
            .map(|(i, _)| *i)
            .collect();
        for i in lost {
            if let Some((_, reply)) = self.proposals.remove(&i) {
                let _ = reply.send(Err(ProposeError::Lost { index: i }));
            }
        }
    }

    /// Handles one command; true when the driver must stop.
    fn command(
        &mut self,
        command: Option<Command<S::NodeId, M::Output>>,
        shutdown_ack: &mut Option<oneshot::Sender<()>>,
    ) -> bool {
        match command {
            None => true,
            Some(Command::Shutdown(ack)) => {
                *shutdown_ack = Some(ack);
                true
            }
            Some(Command::Propose(data, reply)) => {
                self.propose(data, reply);
                false
            }
            Some(Command::Read(reply)) => {
                self.read(reply);
                false
            }
        }
    }

    fn propose(&mut self, data: Bytes, reply: ProposeReply<S::NodeId, M::Output>) {
        match self.node.propose(data) {
            Ok(id) => {
                self.proposals.insert(id.index, (id.term, reply));
            }
            Err(crate::output::ProposeError::NotLeader { leader }) => {
                let _ = reply.send(Err(ProposeError::NotLeader { leader }));
            }
            Err(e) => {
                let _ = reply.send(Err(ProposeError::Refused(e)));
            }
        }
    }

    fn read(&mut self, reply: ReadReply) {
        let id = self.next_read_id;
        self.next_read_id += 1;
        match self.node.read_index(id) {
            Ok(()) => {
                self.reads.insert(id, reply);
            }
            Err(crate::output::ReadError::NoLeader) => {
                let _ = reply.send(Err(ReadError::NoLeader));
            }
            Err(_) => {
                // Ids come from one counter above every id used before;
                // refused anyway, the read simply fails.
                let _ = reply.send(Err(ReadError::Failed));
            }
        }
    }

    /// Drains the node's outputs, in order (the crate's run loop, step 3).
    ///
    /// Persist batches are collected and handed to the persister together
    /// once the drain is over (group commit: `DiskPersister` syncs them
    /// with one fsync). Staging them after the other outputs of the drain
    /// is safe: the node keeps entries it has not been told are durable in
    /// its own memory and reads none of them from the storage, and nothing
    /// else touches the node until the drain ends.
    fn drain(&mut self) {
        let mut batches = Vec::new();
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(batch) => batches.push(batch),
                Output::Send(message) => self.transport.send(message),
                Output::Apply(entries) => {
                    for entry in entries {
                        let output = self.state_machine.apply(&entry);
                        if let Some((term, reply)) = self.proposals.remove(&entry.index) {
                            let result = if term == entry.term {
                                Ok(Applied {
                                    index: entry.index,
                                    term,
                                    output,
                                })
                            } else {
                                Err(ProposeError::Lost { index: entry.index })
                            };
                            let _ = reply.send(result);
                        }
                        if entry.term > self.applied_term {
                            self.applied_term = entry.term;
                            self.drop_overtaken(entry.index, entry.term);
                        }
                    }
                }
                Output::ReadReady(state) => {
                    // The read's index is applied already (the node hands
                    // it out only then).
                    if let Some(reply) = self.reads.remove(&state.id) {
                        let _ = reply.send(Ok(state.index));
                    }
                }
                Output::ReadFailed { id } => {
                    if let Some(reply) = self.reads.remove(&id) {
                        let _ = reply.send(Err(ReadError::Failed));
                    }
                }
                Output::ReadSnapshot { to, index, .. } => {
                    tracing::warn!(
                        ?to,
                        index,
                        "snapshot transfers are not supported by the driver"
                    );
                    let _ = self.node.abort_snapshot_send(&to, index);
                }
                Output::RestoreSnapshot(meta) => {
                    tracing::warn!(
                        index = meta.index,
                        "snapshot restore is not supported by the driver"
                    );
                }
                Output::SnapshotSendEnded { .. }
                | Output::SnapshotChunk { .. }
                | Output::SnapshotAborted { .. } => {}
            }
        }
        if let Some(last) = batches.last() {
            let id = last.id;
            let future = self.persister.persist_all(self.node.storage_mut(), batches);
            self.persisting.push_back((id, future));
        }
    }
}
