//! The task that runs a node, and the handle that talks to it.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use ::tokio::sync::{mpsc, oneshot, watch};
use ::tokio::time::{self, MissedTickBehavior};
use bytes::Bytes;

use super::admin::{Admin, ChangeReply, ChangeRequest, TransferReply};
use super::snapshot::{NoSnapshots, SnapshotFailure, SnapshotStore, Snapshots, TakeError};
use super::{
    Applied, DriverConfig, DriverConfigError, MembershipChangeError, PersistFuture, Persister,
    ProposeError, ReadError, SnapshotCommandError, StateMachine, TransferLeaderError, Transport,
};
use crate::entry::{Entry, Index, Term};
use crate::membership::{JointLeave, MembershipChange};
use crate::output::Output;
use crate::raft::{NodeId, RaftNode, Status};
use crate::snapshot::SnapshotMeta;
use crate::storage::Storage;

/// Most commands taken from the queue in one step of the loop.
const COMMAND_BATCH: usize = 256;
/// Most messages taken from the transport, beyond the one that woke the
/// loop, in one step.
const MESSAGE_BATCH: usize = 256;

type ProposeReply<N, O> = oneshot::Sender<Result<Applied<O>, ProposeError<N>>>;
/// A proposal waiting for its index to be applied: its term and who to tell.
type Pending<N, O> = ProposeReply<N, O>;
type ReadReply = oneshot::Sender<Result<Index, ReadError>>;
type SnapshotReply = oneshot::Sender<Result<Index, SnapshotCommandError>>;

enum Command<N, O> {
    Propose(Bytes, ProposeReply<N, O>),
    Read(ReadReply),
    Change(ChangeRequest<N>, ChangeReply<N>),
    Transfer(N, TransferReply<N>),
    Snapshot(SnapshotReply),
    PeerLiveness(N, bool),
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
        let data = data.into();
        self.ask(
            |reply| Command::Propose(data, reply),
            ProposeError::ShutDown,
        )
        .await
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
        self.ask(Command::Read, ReadError::ShutDown).await
    }

    /// Sends the command `make` builds around a reply channel, and waits
    /// for the answer; `shut_down` if the driver has stopped (before or
    /// after taking the command).
    async fn ask<T, E>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Command<N, O>,
        shut_down: E,
    ) -> Result<T, E> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(make(reply)).await.is_err() {
            return Err(shut_down);
        }
        dsys_net::answered(answer, &self.commands)
            .await
            .unwrap_or(Err(shut_down))
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

    /// Adds `node` as a learner (thesis §4.2.1: a new node catches up
    /// before it votes); resolves with the configuration entry's index once
    /// it is applied (committed) on this node, the leader.
    ///
    /// # Errors
    /// [`MembershipChangeError::NotLeader`] (with a hint),
    /// [`MembershipChangeError::InProgress`],
    /// [`MembershipChangeError::LeaderNotReady`],
    /// [`MembershipChangeError::Refused`], and, once appended,
    /// [`MembershipChangeError::Lost`] or
    /// [`MembershipChangeError::ShutDown`].
    pub async fn add_learner(&self, node: N) -> Result<Index, MembershipChangeError<N>> {
        self.change(ChangeRequest::Single(MembershipChange::AddLearner(node)))
            .await
    }

    /// Makes `node` a voter (a learner, or a new node; single-server
    /// change, thesis §4.2); resolves once the entry is applied here. The
    /// leader accepts it only once the node holds 90% of its log
    /// ([`MembershipError::NotCaughtUp`](crate::MembershipError::NotCaughtUp)
    /// in [`MembershipChangeError::Refused`] until then: retry).
    ///
    /// # Errors
    /// As [`add_learner`](Self::add_learner).
    pub async fn promote(&self, node: N) -> Result<Index, MembershipChangeError<N>> {
        self.change(ChangeRequest::Single(MembershipChange::AddVoter(node)))
            .await
    }

    /// Removes the voter or learner `node` (the leader itself included:
    /// it leads until the removal commits, then steps down, thesis
    /// §4.2.2); resolves once the entry is applied here.
    ///
    /// # Errors
    /// As [`add_learner`](Self::add_learner).
    pub async fn remove(&self, node: N) -> Result<Index, MembershipChangeError<N>> {
        self.change(ChangeRequest::Single(MembershipChange::Remove(node)))
            .await
    }

    /// Changes several members at once through a joint configuration
    /// (Raft §6, thesis §4.3). With [`JointLeave::Auto`] it resolves once
    /// the leader has left the joint configuration (the entry leaving it is
    /// applied here, with its index); with [`JointLeave::Explicit`], once
    /// the joint entry is applied: then call
    /// [`leave_joint`](Self::leave_joint).
    ///
    /// # Errors
    /// As [`add_learner`](Self::add_learner).
    pub async fn change_joint(
        &self,
        changes: Vec<MembershipChange<N>>,
        leave: JointLeave,
    ) -> Result<Index, MembershipChangeError<N>> {
        self.change(ChangeRequest::Joint(changes, leave)).await
    }

    /// Leaves the joint configuration in force for its incoming voters;
    /// resolves once that entry is applied here.
    ///
    /// # Errors
    /// As [`add_learner`](Self::add_learner);
    /// [`MembershipError::NotJoint`](crate::MembershipError::NotJoint) in
    /// [`MembershipChangeError::Refused`] when none is in force.
    pub async fn leave_joint(&self) -> Result<Index, MembershipChangeError<N>> {
        self.change(ChangeRequest::LeaveJoint).await
    }

    async fn change(&self, request: ChangeRequest<N>) -> Result<Index, MembershipChangeError<N>> {
        self.ask(
            |reply| Command::Change(request, reply),
            MembershipChangeError::ShutDown,
        )
        .await
    }

    /// Hands leadership to the voter `target` (thesis §3.10); resolves
    /// once this node sees `target` lead. Proposals are refused meanwhile
    /// on this node.
    ///
    /// # Errors
    /// [`TransferLeaderError::NotLeader`] (with a hint),
    /// [`TransferLeaderError::NotAVoter`],
    /// [`TransferLeaderError::InProgress`], [`TransferLeaderError::Failed`]
    /// when abandoned after an election timeout or won by another node,
    /// [`TransferLeaderError::ShutDown`].
    pub async fn transfer_leader(&self, target: N) -> Result<(), TransferLeaderError<N>> {
        self.ask(
            |reply| Command::Transfer(target, reply),
            TransferLeaderError::ShutDown,
        )
        .await
    }

    /// Takes a snapshot of the state machine at the applied index now
    /// (with [`spawn_with_snapshots`]), saves it and compacts the log;
    /// resolves with the snapshot's index (the latest one's if nothing was
    /// applied since).
    ///
    /// # Errors
    /// [`SnapshotCommandError::Unsupported`] (the state machine does not
    /// snapshot, or snapshots are off), [`SnapshotCommandError::NothingApplied`],
    /// [`SnapshotCommandError::Failed`] (the store failed and the driver
    /// stopped, or the applied index could not be described),
    /// [`SnapshotCommandError::ShutDown`].
    pub async fn snapshot(&self) -> Result<Index, SnapshotCommandError> {
        self.ask(Command::Snapshot, SnapshotCommandError::ShutDown)
            .await
    }

    /// Tells the node whether `peer` is up, from the application's failure
    /// detector (dsys-detect's SWIM, say): see
    /// [`RaftNode::set_peer_liveness`]. With quiescence on
    /// ([`Config::quiesce_after_ticks`](crate::Config::quiesce_after_ticks))
    /// the application MUST report peers that go down and come back, or a
    /// group whose leader dies while quiet never elects another (the
    /// driver cannot tell on its own: a quiet group sends nothing). A
    /// wrong report is safe. Returns once the report is queued.
    ///
    /// # Errors
    /// [`ReadError::ShutDown`] if the driver has stopped.
    pub async fn set_peer_liveness(&self, peer: N, live: bool) -> Result<(), ReadError> {
        self.commands
            .send(Command::PeerLiveness(peer, live))
            .await
            .map_err(|_| ReadError::ShutDown)
    }

    /// Stops the driver: pending proposals and reads fail with `ShutDown`,
    /// the transport and the persister are dropped (a [`super::TcpTransport`]
    /// closes its connections). Resolves once the task has stopped; returns
    /// at once if it already had.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = dsys_net::answered(done, &self.commands).await;
        }
    }
}

/// Starts a task that runs `node`, on the current tokio runtime, with
/// snapshots off ([`NoSnapshots`]: see [Snapshots](super#snapshots)).
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
    let (driver, handle) = Driver::new(
        node,
        persister,
        transport,
        state_machine,
        Box::new(NoSnapshots),
        &config,
    );
    ::tokio::spawn(driver.run());
    Ok(handle)
}

/// Why [`spawn_with_snapshots`] started nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The configuration does not validate. Nothing was started.
    #[error(transparent)]
    Config(#[from] DriverConfigError),
    /// The snapshot storage reports could not be loaded (or the store does
    /// not hold its bytes while the node starts at its index), or the state
    /// machine could not be restored from it. Nothing was started.
    #[error("restoring the stored snapshot failed: {0}")]
    Snapshot(#[source] std::io::Error),
}

/// [`spawn`], with snapshots on: `snapshots` keeps their bytes and records
/// them in storage ([`MemSnapshots`](super::MemSnapshots) for
/// [`MemStorage`](crate::MemStorage)). The driver snapshots the state
/// machine every [`DriverConfig::snapshot_every`] applied entries and on
/// [`Handle::snapshot`], compacts, sends snapshots to followers that need
/// them and restores those it receives ([Snapshots](super#snapshots)).
///
/// On start, if storage reports a snapshot and the node starts at its
/// index ([`Config::applied`](crate::Config::applied) not above it), the
/// state machine is restored from it first.
///
/// # Errors
/// [`SpawnError::Config`] if `config` does not validate,
/// [`SpawnError::Snapshot`] if the stored snapshot cannot be loaded or
/// restored; nothing started.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn_with_snapshots<S, P, T, M, Z>(
    node: RaftNode<S>,
    persister: P,
    transport: T,
    state_machine: M,
    snapshots: Z,
    config: DriverConfig,
) -> Result<Handle<S::NodeId, M::Output>, SpawnError>
where
    S: Storage + Send + 'static,
    S::NodeId: Send + Sync + 'static,
    P: Persister<S>,
    T: Transport<S::NodeId>,
    M: StateMachine<S::NodeId>,
    Z: SnapshotStore<S>,
{
    config.validate()?;
    let (mut driver, handle) = Driver::new(
        node,
        persister,
        transport,
        state_machine,
        Box::new(snapshots),
        &config,
    );
    driver
        .snapshots
        .start(&driver.node, &mut driver.state_machine)
        .map_err(SpawnError::Snapshot)?;
    ::tokio::spawn(driver.run());
    Ok(handle)
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
    /// By index and term: after a leader change, a later proposal of this
    /// node may sit at the index of an earlier one that is still pending
    /// (its entry may yet commit if another node holding it leads).
    proposals: BTreeMap<(Index, Term), Pending<S::NodeId, M::Output>>,
    reads: BTreeMap<u64, ReadReply>,
    next_read_id: u64,
    /// The term of the last entry applied.
    applied_term: Term,
    tick: std::time::Duration,
    snapshots: Snapshots<S>,
    /// `Handle::snapshot` calls waiting for the next snapshot.
    snapshot_requests: Vec<SnapshotReply>,
    admin: Admin<S::NodeId>,
    /// Why the driver must stop, found during a drain.
    fatal: Option<String>,
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
    fn new(
        node: RaftNode<S>,
        persister: P,
        transport: T,
        state_machine: M,
        store: Box<dyn SnapshotStore<S>>,
        config: &DriverConfig,
    ) -> (Self, Handle<S::NodeId, M::Output>) {
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
            snapshots: Snapshots::new(store, config.snapshot_every, config.max_snapshot_size),
            snapshot_requests: Vec::new(),
            admin: Admin::new(),
            fatal: None,
        };
        (driver, Handle { commands, status })
    }

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
            if self.after_drain() {
                break;
            }
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
        let lost: Vec<(Index, Term)> = self
            .proposals
            .range((index.saturating_add(1), 0)..)
            .filter(|((_, t), _)| *t < term)
            .map(|(key, _)| *key)
            .collect();
        for key in lost {
            if let Some(reply) = self.proposals.remove(&key) {
                let _ = reply.send(Err(ProposeError::Lost { index: key.0 }));
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
            Some(Command::Change(request, reply)) => {
                self.admin.change(&mut self.node, request, reply);
                false
            }
            Some(Command::Transfer(target, reply)) => {
                self.admin.transfer(&mut self.node, target, reply);
                false
            }
            Some(Command::Snapshot(reply)) => {
                self.snapshot_requests.push(reply);
                false
            }
            Some(Command::PeerLiveness(peer, live)) => {
                self.node.set_peer_liveness(peer, live);
                false
            }
        }
    }

    /// What follows a drain: a restore that waited for earlier batches to
    /// be durable, a snapshot the policy or a handle asks for, the end of
    /// a leadership transfer. True when the driver must stop.
    fn after_drain(&mut self) -> bool {
        // A restore must follow every batch handed out before it
        // (the snapshot contract): wait until none is in flight. While it
        // waits the node takes no entries, so the queue empties.
        while self.fatal.is_none() && self.snapshots.restore_waiting() && self.persisting.is_empty()
        {
            match self
                .snapshots
                .restore(&mut self.node, &mut self.state_machine)
            {
                Ok(Some(meta)) => {
                    self.snapshot_restored(&meta);
                    self.drain();
                }
                Ok(None) => break,
                Err(e) => self.fatal = Some(e),
            }
        }
        if self.fatal.is_none() {
            self.maybe_snapshot();
        }
        self.admin.check_transfer(&self.node);
        if let Some(reason) = &self.fatal {
            tracing::error!(%reason, "snapshot handling failed; the driver stops");
            return true;
        }
        false
    }

    /// Takes a snapshot if the policy or a handle asks for one.
    fn maybe_snapshot(&mut self) {
        let wanted = !self.snapshot_requests.is_empty() || self.snapshots.due(&self.node);
        if !wanted || self.node.restore_pending() || self.snapshots.restore_waiting() {
            return;
        }
        let result = match self.snapshots.take(&mut self.node, &mut self.state_machine) {
            Ok(index) => Ok(index),
            Err(TakeError::Unsupported) => Err(SnapshotCommandError::Unsupported),
            Err(TakeError::NothingApplied) => Err(SnapshotCommandError::NothingApplied),
            Err(TakeError::Meta(reason)) => {
                tracing::warn!(%reason, "cannot snapshot the applied index");
                Err(SnapshotCommandError::Failed(reason))
            }
            Err(TakeError::Failed(SnapshotFailure::NotNow)) => return,
            Err(TakeError::Failed(SnapshotFailure::Fatal(reason))) => {
                self.fatal = Some(reason.clone());
                Err(SnapshotCommandError::Failed(reason))
            }
        };
        for reply in self.snapshot_requests.drain(..) {
            let _ = reply.send(result.clone());
        }
    }

    /// A snapshot from the leader replaced the state machine: proposals
    /// at or below its index were not applied here and never will be;
    /// those of a newer term than its last entry are lost (no log holding
    /// that entry holds them before it), the others unknown here. Later
    /// ones of an older term are lost as in [`drop_overtaken`](Self::drop_overtaken).
    fn snapshot_restored(&mut self, meta: &SnapshotMeta<S::NodeId>) {
        let covered: Vec<(Index, Term)> = self
            .proposals
            .range(..=(meta.index, Term::MAX))
            .map(|(key, _)| *key)
            .collect();
        for (index, term) in covered {
            if let Some(reply) = self.proposals.remove(&(index, term)) {
                let error = if term > meta.term {
                    ProposeError::Lost { index }
                } else {
                    ProposeError::Snapshotted { index }
                };
                let _ = reply.send(Err(error));
            }
        }
        self.admin.snapshot_restored(meta);
        if meta.term > self.applied_term {
            self.applied_term = meta.term;
        }
        self.drop_overtaken(meta.index, meta.term);
    }

    /// `entry` was applied with `output`: the proposal made for it (same
    /// index and term) succeeded; any other pending at its index is lost.
    fn settle(&mut self, entry: &Entry<S::NodeId>, output: M::Output) {
        let index = entry.index;
        let others: Vec<Term> = self
            .proposals
            .range((index, 0)..=(index, Term::MAX))
            .map(|((_, t), _)| *t)
            .filter(|t| *t != entry.term)
            .collect();
        for term in others {
            if let Some(reply) = self.proposals.remove(&(index, term)) {
                let _ = reply.send(Err(ProposeError::Lost { index }));
            }
        }
        if let Some(reply) = self.proposals.remove(&(index, entry.term)) {
            let _ = reply.send(Ok(Applied {
                index,
                term: entry.term,
                output,
            }));
        }
    }

    fn propose(&mut self, data: Bytes, reply: ProposeReply<S::NodeId, M::Output>) {
        if let Some(max) = self.transport.max_entry_len() {
            let size = data.len() as u64;
            if size > max {
                let error = crate::output::ProposeError::TooLarge { size, max };
                let _ = reply.send(Err(ProposeError::Refused(error)));
                return;
            }
        }
        match self.node.propose(data) {
            Ok(id) => {
                self.proposals.insert((id.index, id.term), reply);
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
                        self.admin.applied(&entry);
                        let output = self.state_machine.apply(&entry);
                        self.settle(&entry, output);
                        if entry.term > self.applied_term {
                            self.applied_term = entry.term;
                            self.drop_overtaken(entry.index, entry.term);
                            self.admin.overtaken(entry.index, entry.term);
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
                Output::ReadSnapshot {
                    to,
                    index,
                    offset,
                    max_len,
                } => {
                    self.snapshots
                        .read_chunk(&mut self.node, to, index, offset, max_len);
                }
                Output::SnapshotSendEnded { to, index, .. } => {
                    self.snapshots.send_ended(&to, index);
                }
                Output::SnapshotChunk {
                    index,
                    offset,
                    data,
                    last,
                } => {
                    if let Err(SnapshotFailure::Fatal(reason)) =
                        self.snapshots.stage(index, offset, &data, last)
                    {
                        self.fatal.get_or_insert(reason);
                    }
                }
                Output::RestoreSnapshot(meta) => self.snapshots.restore_requested(meta),
                Output::SnapshotAborted { index, .. } => self.snapshots.aborted(index),
            }
        }
        if let Some(last) = batches.last() {
            let id = last.id;
            let future = self.persister.persist_all(self.node.storage_mut(), batches);
            self.persisting.push_back((id, future));
        }
    }
}
