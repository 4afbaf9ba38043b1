//! The simulated disk of one node: what is durable, apart from what the
//! node was handed to write (the persistence contract in
//! [`ReplicatedLog`](crate::ReplicatedLog#the-persistence-contract)).
//!
//! A [`Persist`] batch is handed out, becomes durable some time later
//! (batches complete in order), and is acknowledged to the node later
//! still, possibly together with batches after it. A crash keeps what is
//! durable and resolves the batches still in the air the way a real disk
//! may: all lost, an in-order prefix of them landed, and possibly the next
//! one torn (its hard state with a prefix of its entries, or a prefix of
//! its entries without its hard state); and, past all that, a later
//! batch's hard state that changed only the commit index may land on its
//! own, ahead of the entries before it (as `DiskStorage::sync_in_background`
//! fsyncs such a hard state beside the entries, not after them: the
//! persistence contract allows it). Nothing acknowledged is ever lost.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::config::{self, SimConfigError};
use crate::entry::{HardState, Index};
use crate::output::{Persist, PersistId};
use crate::storage::{MemStorage, StorageError};

/// How a node's storage and its state machine's own persistence behave.
/// [`DiskConfig::default`] is a benign disk: writes not yet durable at a
/// crash are all lost, acknowledgements come as soon as a write is
/// durable, and the state machine keeps nothing (it replays the log).
/// Built from [`Default`] and set by assignment; [`DiskConfig::validate`]
/// bounds every field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DiskConfig {
    /// Longest an acknowledgement (`on_persisted`) lags behind the write
    /// becoming durable, in time units (at most
    /// [`SimConfig::MAX_UNITS`](super::SimConfig::MAX_UNITS)); one
    /// acknowledgement then covers every batch durable by the time it is
    /// made.
    pub max_ack_lag: u64,
    /// At a crash, the probability that an in-order prefix of the writes
    /// handed out but not yet durable lands anyway (its length uniform).
    pub keep_on_crash: f64,
    /// At a crash, the probability that one of the writes not yet
    /// durable is torn (every write before it lands whole, none after
    /// it): its hard state with a proper prefix of its entries, or a
    /// prefix of its entries without its hard state. Otherwise
    /// `keep_on_crash` applies.
    pub tear_on_crash: f64,
    /// After each `Apply`, the probability that the state machine records
    /// its key-value map and applied index durably; a restart then builds
    /// the node with `Config::applied` set to that index.
    pub snapshot_state_machine: f64,
    /// After each `Apply`, the probability that the node takes a Raft
    /// snapshot (§7) of its state machine at its applied index, makes it
    /// durable, and compacts its log to `compaction_limit()`. Followers
    /// that then need compacted entries are restored by snapshot.
    pub compact: f64,
    /// Longest a follower's restore from a received snapshot takes, in
    /// time units (at most [`SimConfig::MAX_UNITS`](super::SimConfig::MAX_UNITS)):
    /// it starts once the writes handed out before it are durable, and the
    /// node waits for it meanwhile.
    pub max_restore_delay: u64,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            max_ack_lag: 0,
            keep_on_crash: 0.0,
            tear_on_crash: 0.0,
            snapshot_state_machine: 0.0,
            compact: 0.0,
            max_restore_delay: 0,
        }
    }
}

impl DiskConfig {
    /// Checks every field: the lag at most
    /// [`SimConfig::MAX_UNITS`](super::SimConfig::MAX_UNITS), probabilities
    /// in `0.0..=1.0`.
    ///
    /// # Errors
    /// The first [`SimConfigError`] found.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        config::time("DiskConfig::max_ack_lag", self.max_ack_lag, 0)?;
        config::probability("DiskConfig::keep_on_crash", self.keep_on_crash)?;
        config::probability("DiskConfig::tear_on_crash", self.tear_on_crash)?;
        config::probability(
            "DiskConfig::snapshot_state_machine",
            self.snapshot_state_machine,
        )?;
        config::probability("DiskConfig::compact", self.compact)?;
        config::time("DiskConfig::max_restore_delay", self.max_restore_delay, 0)
    }
}

/// What happened to the writes in the air at crashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct CrashWrites {
    pub(super) lost: u64,
    pub(super) kept: u64,
    pub(super) torn: u64,
    /// Commit-only hard states that landed ahead of earlier entries.
    pub(super) commits_early: u64,
}

/// A state machine's durable record: its map and the index it reflects.
pub(super) type SmSnapshot = (Index, BTreeMap<u64, u64>);

#[derive(Debug)]
pub(super) struct Disk {
    /// What survives a crash.
    pub(super) durable: MemStorage<u64>,
    /// Handed out, not yet durable: (completion time, batch), in order.
    pub(super) writing: VecDeque<(u64, Persist<HardState<u64>, u64>)>,
    /// In this life of the node: the highest batch durable, and the
    /// highest acknowledged.
    pub(super) durable_id: PersistId,
    pub(super) acked_id: PersistId,
    /// When the next acknowledgement is made.
    pub(super) ack_due: Option<u64>,
    /// The state machine's durable record.
    pub(super) state_machine: Option<SmSnapshot>,
    /// The bytes of every Raft snapshot this node took or installed, by
    /// index (durable; a transfer reads the one it began with).
    pub(super) snapshots: BTreeMap<Index, Bytes>,
}

/// Writes a whole batch to `storage`.
pub(super) fn write_batch(
    storage: &mut MemStorage<u64>,
    persist: &Persist<HardState<u64>, u64>,
) -> Result<(), StorageError> {
    storage.append(&persist.entries)?;
    if let Some(hard_state) = &persist.hard_state {
        storage.set_hard_state(hard_state.clone());
    }
    Ok(())
}

/// Whether some proper part of `batch` can land: it has a hard state
/// and an entry, or two entries.
fn tearable(batch: &Persist<HardState<u64>, u64>) -> bool {
    let len = batch.entries.len();
    (batch.hard_state.is_some() && len > 0) || len > 1
}

impl Disk {
    pub(super) fn new(voters: Vec<u64>) -> Self {
        Self {
            durable: MemStorage::new(voters),
            writing: VecDeque::new(),
            durable_id: 0,
            acked_id: 0,
            ack_due: None,
            state_machine: None,
            snapshots: BTreeMap::new(),
        }
    }

    /// Batch `persist` is durable now.
    pub(super) fn complete(
        &mut self,
        persist: &Persist<HardState<u64>, u64>,
    ) -> Result<(), StorageError> {
        write_batch(&mut self.durable, persist)?;
        self.durable_id = persist.id;
        Ok(())
    }

    /// The node crashed: the writes in the air land, tear or vanish.
    pub(super) fn crash(
        &mut self,
        config: &DiskConfig,
        rng: &mut fastrand::Rng,
        stats: &mut CrashWrites,
    ) -> Result<(), StorageError> {
        let pending: Vec<Persist<HardState<u64>, u64>> =
            self.writing.drain(..).map(|(_, persist)| persist).collect();
        self.ack_due = None;
        let tearable: Vec<usize> = (0..pending.len())
            .filter(|&i| tearable(&pending[i]))
            .collect();
        // Either one batch tears (every batch before it landed whole), or
        // an in-order prefix lands whole, or nothing does.
        let chance = |rng: &mut fastrand::Rng, p: f64| p > 0.0 && rng.f64() < p;
        let (landed, torn) = if !tearable.is_empty() && chance(rng, config.tear_on_crash) {
            (tearable[rng.usize(..tearable.len())], true)
        } else if !pending.is_empty() && chance(rng, config.keep_on_crash) {
            (rng.usize(..=pending.len()), false)
        } else {
            (0, false)
        };
        for persist in &pending[..landed] {
            write_batch(&mut self.durable, persist)?;
        }
        stats.kept += landed as u64;
        if torn {
            self.tear(&pending[landed], rng)?;
            stats.torn += 1;
        }
        stats.lost += (pending.len() - landed - usize::from(torn)) as u64;
        // A later batch's hard state that changes only the commit index
        // (same term and vote as what is durable now) may have landed on
        // its own, with none of the entries still in the air before it.
        let rest = &pending[landed + usize::from(torn)..];
        if !rest.is_empty() && chance(rng, config.tear_on_crash) {
            let now = self.durable.hard_state().clone();
            let early: Vec<&HardState<u64>> = rest
                .iter()
                .filter_map(|p| p.hard_state.as_ref())
                .filter(|h| h.term == now.term && h.vote == now.vote && h.commit > now.commit)
                .collect();
            if !early.is_empty() {
                let hard_state = early[rng.usize(..early.len())].clone();
                self.durable.set_hard_state(hard_state);
                stats.commits_early += 1;
            }
        }
        Ok(())
    }

    /// Lands a proper part of `batch`: its hard state with fewer than all
    /// of its entries (often none: a hard state landing without the
    /// entries it came with), or some of its entries without its hard
    /// state.
    fn tear(
        &mut self,
        batch: &Persist<HardState<u64>, u64>,
        rng: &mut fastrand::Rng,
    ) -> Result<(), StorageError> {
        let len = batch.entries.len();
        let with_hard_state = batch.hard_state.is_some() && len > 0 && rng.bool();
        let keep = if with_hard_state {
            if rng.bool() { 0 } else { rng.usize(..len) }
        } else if batch.hard_state.is_some() {
            rng.usize(1..=len)
        } else {
            rng.usize(1..len)
        };
        self.durable.append(&batch.entries[..keep])?;
        if with_hard_state {
            let hard_state = batch.hard_state.clone().expect("checked above");
            self.durable.set_hard_state(hard_state);
        }
        Ok(())
    }

    /// A new life: batch ids start again from 1.
    pub(super) fn restart(&mut self) {
        self.writing.clear();
        self.durable_id = 0;
        self.acked_id = 0;
        self.ack_due = None;
    }
}
