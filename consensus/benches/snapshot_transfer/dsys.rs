//! dsys: the leader asks for one chunk at a time (`Output::ReadSnapshot`),
//! keeps at most `max_snapshot_chunks_in_flight` chunks unacknowledged, and
//! the follower hands each chunk out to be staged (`Output::SnapshotChunk`)
//! before it asks for the restore (`Output::RestoreSnapshot`).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use dsys_consensus::{Config, MemStorage, Message, Output, RaftNode};

use super::{ENTRIES_WHILE_CUT_OFF, MAX_ROUNDS, MAX_TICKS};

const LEADER: usize = 0;
const LAGGING: usize = 2;

/// The cluster, set up up to the point where node 3 is reachable again.
pub(crate) struct DsysTransfer {
    nodes: Vec<RaftNode<MemStorage<u64>>>,
    inboxes: Vec<Vec<Message<u64>>>,
    /// Messages to or from this node are dropped.
    cut_off: Option<usize>,
    applied: [u64; 3],
    /// The leader's snapshot file (its application's copy of the state).
    snapshot: File,
    snapshot_len: u64,
    snapshot_index: u64,
    /// Node 3's staging file.
    staging: File,
    restored: bool,
    send_ended: bool,
    ticks: usize,
}

impl DsysTransfer {
    /// Elects node 1, commits entries without node 3, snapshots the
    /// leader's state (the file at `snapshot`) and compacts its log.
    pub(crate) fn new(snapshot: &Path, staging: &Path, chunk: u64, in_flight: usize) -> Self {
        let ids = vec![1u64, 2, 3];
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut config = Config::default();
                config.seed = id;
                config.election_tick = 10;
                config.heartbeat_tick = 1;
                config.check_quorum = false;
                config.pre_vote = false;
                config.snapshot_chunk_size = chunk;
                config.max_snapshot_chunks_in_flight = in_flight;
                RaftNode::new(id, MemStorage::new(ids.clone()), config).expect("a valid config")
            })
            .collect();
        let snapshot = File::open(snapshot).expect("the snapshot file");
        let snapshot_len = snapshot.metadata().expect("metadata").len();
        let mut this = Self {
            nodes,
            inboxes: vec![Vec::new(); 3],
            cut_off: None,
            applied: [0; 3],
            snapshot,
            snapshot_len,
            snapshot_index: 0,
            staging: File::create(staging).expect("the staging file"),
            restored: false,
            send_ended: false,
            ticks: 0,
        };
        this.nodes[LEADER].campaign();
        this.settle();
        this.cut_off = Some(LAGGING);
        for i in 0..ENTRIES_WHILE_CUT_OFF {
            this.nodes[LEADER]
                .propose(Bytes::from(format!("entry {i}")))
                .expect("the leader accepts");
            this.settle();
        }
        let leader = &mut this.nodes[LEADER];
        let applied = leader.log().applied();
        assert!(
            applied > ENTRIES_WHILE_CUT_OFF as u64,
            "committed without node 3"
        );
        // The application's snapshot of its state at `applied` is the file;
        // record it, then compact as far as the node allows.
        let meta = leader.snapshot_meta(applied).expect("applied");
        leader.storage_mut().set_snapshot(meta).expect("recorded");
        let limit = leader.compaction_limit();
        leader
            .storage_mut()
            .compact(limit)
            .expect("within the limit");
        assert!(
            leader.log().first_index() > this.nodes[LAGGING].log().last_index() + 1,
            "node 3 needs the snapshot"
        );
        this.snapshot_index = applied;
        this.cut_off = None;
        this
    }

    /// Rounds until nothing is in flight (no ticks).
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        panic!("dsys: the cluster did not settle");
    }

    /// The timed part: until node 3 restored the snapshot and the leader
    /// knows.
    pub(crate) fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let caught_up = self.nodes[LEADER]
                .progress(&3)
                .is_some_and(|p| p.matched() >= self.snapshot_index);
            if self.restored && self.send_ended && caught_up {
                return;
            }
            if !self.round() {
                self.ticks += 1;
                assert!(self.ticks < MAX_TICKS, "dsys: the transfer is stuck");
                self.nodes[LEADER].tick();
                self.drain(LEADER);
            }
        }
        panic!("dsys: the transfer did not finish");
    }

    /// Checks what the transfer left (not timed).
    pub(crate) fn check(&self) {
        assert!(self.nodes[LAGGING].log().applied() >= self.snapshot_index);
        assert_eq!(self.nodes[LAGGING].counters().snapshots_installed, 1);
        assert_eq!(self.nodes[LEADER].counters().snapshots_sent, 1);
    }

    fn round(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.nodes.len() {
            let inbox = std::mem::take(&mut self.inboxes[i]);
            progressed |= !inbox.is_empty();
            for message in inbox {
                self.nodes[i].handle_message(message);
            }
            progressed |= self.drain(i);
        }
        progressed
    }

    fn drain(&mut self, i: usize) -> bool {
        let mut any = false;
        while let Some(output) = self.nodes[i].poll_output() {
            any = true;
            let node = &mut self.nodes[i];
            match output {
                Output::Persist(persist) => {
                    let storage = node.storage_mut();
                    if let Some(hard_state) = persist.hard_state {
                        storage.set_hard_state(hard_state);
                    }
                    storage.append(&persist.entries).expect("in order");
                    node.on_persisted(persist.id);
                }
                Output::Send(message) => {
                    let to = usize::try_from(message.to - 1).expect("small ids");
                    if self.cut_off != Some(to) && self.cut_off != Some(i) {
                        self.inboxes[to].push(message);
                    }
                }
                Output::Apply(entries) => {
                    if let Some(last) = entries.last() {
                        self.applied[i] = last.index;
                    }
                }
                Output::ReadReady(_) | Output::ReadFailed { .. } => {}
                Output::ReadSnapshot {
                    to,
                    index,
                    offset,
                    max_len,
                } => {
                    // The application reads the chunk into a buffer of its own.
                    let len = max_len.min(self.snapshot_len - offset);
                    let mut buf = vec![0u8; usize::try_from(len).expect("a chunk fits")];
                    self.snapshot.read_exact_at(&mut buf, offset).expect("read");
                    let last = offset + len == self.snapshot_len;
                    node.snapshot_chunk(&to, index, offset, Bytes::from(buf), last)
                        .expect("the chunk asked for");
                }
                Output::SnapshotSendEnded { aborted, .. } => {
                    assert_eq!(aborted, None, "the transfer completes");
                    self.send_ended = true;
                }
                Output::SnapshotChunk { offset, data, .. } => {
                    self.staging.write_all_at(&data, offset).expect("stage");
                }
                Output::RestoreSnapshot(meta) => {
                    // The state machine is the staged file; record the
                    // snapshot in storage, then acknowledge.
                    let index = meta.index;
                    node.storage_mut().apply_snapshot(meta);
                    node.on_snapshot_restored(index)
                        .expect("the restore is pending");
                    self.restored = true;
                }
                Output::SnapshotAborted { index, reason } => {
                    panic!("dsys: snapshot {index} aborted: {reason:?}")
                }
            }
        }
        any
    }
}
