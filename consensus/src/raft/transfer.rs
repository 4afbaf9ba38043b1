//! Leadership transfer (thesis §3.10): the leader stops taking proposals,
//! brings the target's log up to date, then tells it to start an election
//! at once; the target's vote requests override the voters' leader lease.

use super::{NodeId, RaftNode, Role};
use crate::message::MessageBody;
use crate::storage::Storage;

/// Why a leadership transfer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Only the leader can hand leadership over. Nothing changed.
    #[error("not the leader")]
    NotLeader,
    /// The target is not a voter of the configuration. Nothing changed.
    #[error("the target is not a voter")]
    NotAVoter,
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    /// Hands leadership to `target`. Proposals are refused until the
    /// transfer completes or is abandoned after an election timeout.
    /// Transferring to itself is a no-op.
    ///
    /// # Errors
    /// [`TransferError`] if this node does not lead or `target` cannot.
    pub fn transfer_leadership(&mut self, target: S::NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader);
        }
        if !self.voters.contains(&target) {
            return Err(TransferError::NotAVoter);
        }
        if target == self.id {
            return Ok(());
        }
        self.wake_for_input();
        tracing::debug!(id = ?self.id, ?target, "transferring leadership");
        self.transfer_target = Some(target.clone());
        // The target's election overrides the voters' leases: no lease read
        // for the rest of this term (thesis §6.4.1).
        self.reads.forfeit_lease();
        // The transfer is abandoned if it takes longer than an election timeout.
        self.election_elapsed = 0;
        self.send_appends(&target, false);
        self.maybe_finish_transfer(&target);
        Ok(())
    }

    /// The leadership transfer target, while one is in progress.
    pub fn transfer_target(&self) -> Option<&S::NodeId> {
        self.transfer_target.as_ref()
    }

    /// Once the target holds the whole log, tell it to campaign.
    pub(super) fn maybe_finish_transfer(&mut self, peer: &S::NodeId) {
        if self.transfer_target.as_ref() != Some(peer) {
            return;
        }
        let caught_up = self
            .peers
            .get(peer)
            .is_some_and(|p| p.progress.matched() == self.log.last_index());
        if caught_up {
            self.send_as_leader(peer.clone(), MessageBody::TimeoutNow);
        }
    }

    pub(super) fn handle_timeout_now(&mut self, from: S::NodeId) {
        if self.role != Role::Follower || self.leader.as_ref() != Some(&from) {
            // Only the current leader may order an election; a repeat of the
            // order after this node already campaigned changes nothing.
            return;
        }
        if !self.promotable() {
            // A late order to a node that is no longer a voter (demoted to
            // learner, or removed, since the transfer began): only voters
            // campaign (thesis §3.10, §4.2.2).
            return;
        }
        if self.restore_pending() {
            self.counters.snapshot_busy += 1;
            return;
        }
        self.become_candidate(true);
    }
}
