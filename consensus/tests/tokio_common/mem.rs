//! What the in-process driver tests with snapshots and membership changes
//! share: an in-memory transport that can cut nodes off, a state machine
//! that records the commands it applied (and snapshots and restores that
//! record), and clients that propose through whichever node leads.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use dsys_consensus::tokio::{
    DriverConfig, Handle, MemPersister, MemSnapshots, ProposeError, StateMachine, Transport,
    spawn_with_snapshots,
};
use dsys_consensus::{
    Config, Entry, MemStorage, Membership, Message, RaftNode, Role, SnapshotMeta,
};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

// ---- The network ----

#[derive(Default)]
pub(crate) struct Hub {
    inboxes: Mutex<BTreeMap<u64, mpsc::UnboundedSender<Message<u64>>>>,
    cut: Mutex<BTreeSet<u64>>,
}

impl Hub {
    pub(crate) fn transport(self: &Arc<Self>, id: u64) -> MemTransport {
        let (tx, inbox) = mpsc::unbounded_channel();
        self.inboxes.lock().expect("ok").insert(id, tx);
        MemTransport {
            hub: Arc::clone(self),
            inbox,
        }
    }

    /// Cuts `id` off from everyone (both ways).
    pub(crate) fn cut(&self, id: u64) {
        self.cut.lock().expect("ok").insert(id);
    }

    pub(crate) fn heal(&self, id: u64) {
        self.cut.lock().expect("ok").remove(&id);
    }
}

pub(crate) struct MemTransport {
    hub: Arc<Hub>,
    inbox: mpsc::UnboundedReceiver<Message<u64>>,
}

impl Transport<u64> for MemTransport {
    fn send(&mut self, message: Message<u64>) {
        let cut = self.hub.cut.lock().expect("ok");
        if cut.contains(&message.from) || cut.contains(&message.to) {
            return;
        }
        if let Some(inbox) = self.hub.inboxes.lock().expect("ok").get(&message.to) {
            let _ = inbox.send(message);
        }
    }
    async fn recv(&mut self) -> Option<Message<u64>> {
        self.inbox.recv().await
    }
}

// ---- The state machine ----

/// What a [`Recorder`] shows from outside: the commands applied, in order,
/// the memberships applied, and how many snapshots it restored.
#[derive(Clone, Default)]
pub(crate) struct Record {
    pub(crate) commands: Arc<Mutex<Vec<Bytes>>>,
    pub(crate) memberships: Arc<Mutex<Vec<Membership<u64>>>>,
    pub(crate) restores: Arc<AtomicU64>,
}

impl Record {
    pub(crate) fn commands(&self) -> Vec<Bytes> {
        self.commands.lock().expect("ok").clone()
    }
    pub(crate) fn membership(&self) -> Option<Membership<u64>> {
        self.memberships.lock().expect("ok").last().cloned()
    }
    pub(crate) fn restores(&self) -> u64 {
        self.restores.load(Ordering::SeqCst)
    }
}

/// The state is the list of commands applied; a snapshot is that list,
/// each command prefixed by its length (u32, big-endian).
pub(crate) struct Recorder(pub(crate) Record);

impl StateMachine<u64> for Recorder {
    type Output = ();

    fn apply(&mut self, entry: &Entry<u64>) {
        if let Some(membership) = entry.as_membership() {
            self.0
                .memberships
                .lock()
                .expect("ok")
                .push(membership.clone());
        } else if !entry.data.is_empty() {
            self.0.commands.lock().expect("ok").push(entry.data.clone());
        }
    }

    fn snapshot(&mut self, _meta: &SnapshotMeta<u64>) -> Option<Bytes> {
        let commands = self.0.commands.lock().expect("ok");
        let mut out = BytesMut::new();
        for command in commands.iter() {
            out.put_u32(u32::try_from(command.len()).expect("small commands"));
            out.put_slice(command);
        }
        Some(out.freeze())
    }

    fn restore(&mut self, meta: &SnapshotMeta<u64>, mut data: Bytes) -> io::Result<()> {
        let mut commands = Vec::new();
        while data.has_remaining() {
            if data.remaining() < 4 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "cut length"));
            }
            let len = data.get_u32() as usize;
            if data.remaining() < len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "cut command"));
            }
            commands.push(data.split_to(len));
        }
        *self.0.commands.lock().expect("ok") = commands;
        self.0
            .memberships
            .lock()
            .expect("ok")
            .push(meta.membership.clone());
        self.0.restores.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

// ---- Nodes ----

/// Small snapshot chunks (several per snapshot), pre-vote and check-quorum
/// on (a removed node cannot disrupt the others).
pub(crate) fn node_config(id: u64) -> Config {
    let mut config = Config::default();
    config.seed = id;
    config.snapshot_chunk_size = 256;
    config.max_snapshot_chunks_in_flight = 2;
    config
}

pub(crate) fn driver_config(snapshot_every: u64) -> DriverConfig {
    let mut driver = DriverConfig::default();
    driver.tick = Duration::from_millis(10);
    driver.snapshot_every = snapshot_every;
    driver
}

pub(crate) struct TestNode {
    pub(crate) id: u64,
    pub(crate) handle: Handle<u64, ()>,
    pub(crate) record: Record,
}

/// Starts node `id` on `storage` (a fresh `MemStorage::new(voters)`, or
/// `MemStorage::new(vec![])` for a node that joins later) over `hub`.
pub(crate) fn start(
    hub: &Arc<Hub>,
    id: u64,
    storage: MemStorage<u64>,
    snapshot_every: u64,
) -> TestNode {
    let node = RaftNode::new(id, storage, node_config(id)).expect("bootstrap");
    let record = Record::default();
    let handle = spawn_with_snapshots(
        node,
        MemPersister,
        hub.transport(id),
        Recorder(record.clone()),
        MemSnapshots::new(),
        driver_config(snapshot_every),
    )
    .expect("config");
    TestNode { id, handle, record }
}

/// The node that leads, among `nodes`, once one does (10 s at most).
pub(crate) async fn leader(nodes: &[TestNode]) -> usize {
    timeout(Duration::from_secs(10), async {
        loop {
            for (i, n) in nodes.iter().enumerate() {
                if n.handle.status().role == Role::Leader {
                    return i;
                }
            }
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a leader within 10 s")
}

/// Proposes `command` through whichever of `handles` leads until one
/// acknowledges it; every attempt is a new command (`command/attempt`),
/// so an attempt whose fate is unknown is never counted. Returns the
/// acknowledged command.
pub(crate) async fn propose(handles: &Arc<Mutex<Vec<Handle<u64, ()>>>>, command: &str) -> Bytes {
    let mut target = 0usize;
    for attempt in 0..4_000 {
        let handle = {
            let handles = handles.lock().expect("ok");
            handles[target % handles.len()].clone()
        };
        let data = Bytes::from(format!("{command}/{attempt}"));
        let result = timeout(Duration::from_secs(5), handle.propose(data.clone())).await;
        match result {
            Ok(Ok(_)) => return data,
            Ok(Err(ProposeError::NotLeader { leader: Some(l) })) => {
                target = position(handles, l).unwrap_or(target + 1);
                sleep(Duration::from_millis(2)).await;
            }
            _ => {
                target += 1;
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
    panic!("{command} not acknowledged after 4000 attempts");
}

pub(crate) fn position(handles: &Mutex<Vec<Handle<u64, ()>>>, id: u64) -> Option<usize> {
    let handles = handles.lock().expect("ok");
    handles.iter().position(|h| h.status().id == id)
}

/// Waits (up to `secs`) until `check` holds.
pub(crate) async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let waited = timeout(Duration::from_secs(secs), async {
        while !check() {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "not within {secs} s: {what}");
}
