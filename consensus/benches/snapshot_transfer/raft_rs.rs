//! raft-rs 0.7: the leader asks its `Storage::snapshot` for the whole
//! snapshot and sends it as one `MsgSnapshot`; the follower gets it whole in
//! `Ready::snapshot`. raft-rs has no chunking of its own (TiKV streams
//! snapshot files beside raft-rs).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
use raft::storage::MemStorage;
use raft::{Config, GetEntriesContext, RaftState, RawNode, SnapshotStatus, StateRole, Storage};

use super::{ENTRIES_WHILE_CUT_OFF, MAX_ROUNDS, MAX_TICKS};

const LEADER: usize = 0;
const LAGGING: usize = 2;

/// raft-rs's `MemStorage`, whose snapshots carry the application's data:
/// when raft-rs asks for a snapshot, the application reads its file.
struct FileSnapshotStorage {
    mem: MemStorage,
    /// The leader's snapshot file.
    snapshot: Option<File>,
}

impl Storage for FileSnapshotStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let mut snapshot = self.mem.snapshot(request_index, to)?;
        if let Some(file) = &self.snapshot {
            let len = file.metadata().expect("metadata").len();
            let mut data = vec![0u8; usize::try_from(len).expect("fits")];
            file.read_exact_at(&mut data, 0).expect("read");
            snapshot.data = Bytes::from(data);
        }
        Ok(snapshot)
    }
}

/// The cluster, set up up to the point where node 3 is reachable again.
pub(crate) struct RaftRsTransfer {
    nodes: Vec<RawNode<FileSnapshotStorage>>,
    inboxes: Vec<Vec<Message>>,
    cut_off: Option<usize>,
    snapshot_index: u64,
    staging: File,
    restored: bool,
    ticks: usize,
}

impl RaftRsTransfer {
    /// Elects node 1, commits entries without node 3, snapshots the
    /// leader's state (the file at `snapshot`) and compacts its log.
    pub(crate) fn new(snapshot: &Path, staging: &Path) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let ids = vec![1u64, 2, 3];
        let nodes = ids
            .iter()
            .map(|&id| {
                let config = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 1,
                    check_quorum: false,
                    pre_vote: false,
                    ..Config::default()
                };
                let storage = FileSnapshotStorage {
                    mem: MemStorage::new_with_conf_state(ConfState::from((ids.clone(), vec![]))),
                    snapshot: None,
                };
                RawNode::new(&config, storage, &logger).expect("a valid config")
            })
            .collect();
        let mut this = Self {
            nodes,
            inboxes: vec![Vec::new(); 3],
            cut_off: None,
            snapshot_index: 0,
            staging: File::create(staging).expect("the staging file"),
            restored: false,
            ticks: 0,
        };
        this.nodes[LEADER].campaign().expect("a voter campaigns");
        this.settle();
        assert_eq!(this.nodes[LEADER].raft.state, StateRole::Leader);
        this.cut_off = Some(LAGGING);
        for i in 0..ENTRIES_WHILE_CUT_OFF {
            this.nodes[LEADER]
                .propose(vec![], format!("entry {i}").into_bytes())
                .expect("the leader accepts");
            this.settle();
        }
        let leader = &mut this.nodes[LEADER];
        let applied = leader.raft.raft_log.applied;
        assert!(
            applied > ENTRIES_WHILE_CUT_OFF as u64,
            "committed without node 3"
        );
        leader
            .store()
            .mem
            .wl()
            .compact(applied)
            .expect("compacts what is applied");
        leader.mut_store().snapshot = Some(File::open(snapshot).expect("the snapshot file"));
        this.snapshot_index = applied;
        this.cut_off = None;
        this
    }

    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        panic!("raft-rs: the cluster did not settle");
    }

    /// The timed part: until node 3 restored the snapshot and the leader
    /// counts it as holding the snapshot's index.
    pub(crate) fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let caught_up = self.nodes[LEADER]
                .raft
                .prs()
                .get(3)
                .is_some_and(|p| p.matched >= self.snapshot_index);
            if self.restored && caught_up {
                return;
            }
            if !self.round() {
                self.ticks += 1;
                assert!(self.ticks < MAX_TICKS, "raft-rs: the transfer is stuck");
                self.nodes[LEADER].tick();
                self.handle_readies(LEADER);
            }
        }
        panic!("raft-rs: the transfer did not finish");
    }

    /// Checks what the transfer left (not timed).
    pub(crate) fn check(&self) {
        assert!(self.nodes[LAGGING].raft.raft_log.applied >= self.snapshot_index);
    }

    fn round(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.nodes.len() {
            let inbox = std::mem::take(&mut self.inboxes[i]);
            progressed |= !inbox.is_empty();
            for m in inbox {
                self.nodes[i].step(m).expect("raft-rs accepts the message");
            }
            progressed |= self.handle_readies(i);
        }
        progressed
    }

    fn handle_readies(&mut self, i: usize) -> bool {
        let mut any = false;
        while self.nodes[i].has_ready() {
            any = true;
            self.handle_ready(i);
        }
        any
    }

    /// One pass of the documented Ready loop.
    fn handle_ready(&mut self, i: usize) {
        let mut ready = self.nodes[i].ready();
        let messages = ready.take_messages();
        self.route(i, messages);
        if !ready.snapshot().is_empty() {
            // The application restores its state from the snapshot's data
            // (writes it out), then records the snapshot in storage.
            let snapshot = ready.snapshot().clone();
            self.staging
                .write_all_at(&snapshot.data, 0)
                .expect("stage the snapshot");
            self.nodes[i]
                .store()
                .mem
                .wl()
                .apply_snapshot(snapshot)
                .expect("a newer snapshot");
            self.restored = true;
        }
        let _committed = ready.take_committed_entries();
        {
            let node = &self.nodes[i];
            let mut store = node.store().mem.wl();
            store.append(ready.entries()).expect("in order");
            if let Some(hs) = ready.hs() {
                store.set_hardstate(hs.clone());
            }
        }
        let persisted = ready.take_persisted_messages();
        self.route(i, persisted);
        let mut light = self.nodes[i].advance(ready);
        if let Some(commit) = light.commit_index() {
            self.nodes[i]
                .store()
                .mem
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        let messages = light.take_messages();
        self.route(i, messages);
        let _committed = light.take_committed_entries();
        self.nodes[i].advance_apply();
    }

    /// Delivers messages; once the leader's `MsgSnapshot` is handed to the
    /// network, the application reports it sent, as raft-rs asks.
    fn route(&mut self, from: usize, messages: Vec<Message>) {
        for m in messages {
            let to = usize::try_from(m.to - 1).expect("small ids");
            if self.cut_off == Some(to) || self.cut_off == Some(from) {
                continue;
            }
            let snapshot_to = (m.get_msg_type() == MessageType::MsgSnapshot).then_some(m.to);
            self.inboxes[to].push(m);
            if let Some(peer) = snapshot_to {
                self.nodes[from].report_snapshot(peer, SnapshotStatus::Finish);
            }
        }
    }
}
