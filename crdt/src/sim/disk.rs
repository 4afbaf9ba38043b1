//! Each replica's disk: the durable record the persistence contract keeps, written
//! after every change and before anything is sent.

use super::Sim;
use crate::codec::{Decode, Encode};
use crate::lattice::{Authored, Lattice};

/// A replica's durable record: what the persistence contract says survives a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<S> {
    /// [`Replica::state`](crate::Replica::state) when it was written.
    pub state: S,
    /// [`Replica::incarnation`](crate::Replica::incarnation) when it was written.
    pub incarnation: u64,
}

impl<S> Sim<S>
where
    S: Lattice + Authored<u64> + PartialEq + Encode + Decode,
{
    /// After a change at `i`: with random faults on, maybe crash before the write
    /// (returns `false`: the change is lost); otherwise write the record.
    pub(super) fn persist_or_crash(&mut self, i: usize) -> bool {
        let node = &self.nodes[i];
        let changed = node
            .replica
            .as_ref()
            .is_some_and(|r| r.changes() != node.persisted_changes);
        if changed && self.random_faults && self.rng.f64() < self.config.crash_before_persist {
            self.stats.lost_changes += 1;
            self.note(format!(
                "replica {i} loses a change that was not yet written"
            ));
            self.crash(i);
            return false;
        }
        self.persist(i);
        true
    }

    /// Writes `i`'s record if it changed since the last write.
    pub(super) fn persist(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(replica) = node.replica.as_ref() else {
            return;
        };
        if replica.changes() != node.persisted_changes {
            node.disk = Some(Record {
                state: replica.state().clone(),
                incarnation: replica.incarnation(),
            });
            node.persisted_changes = replica.changes();
        }
    }
}
