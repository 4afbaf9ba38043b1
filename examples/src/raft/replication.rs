//! Machinery: the leader's replication loop of Figure 7, written out
//! against the log layer (`RaftLog::maybe_append` on the follower,
//! `find_conflict_by_term` on both sides), with the two ways a leader backs
//! off after a refusal.

use dsys_consensus::{Index, Term};

use super::logs::Log;
use crate::report::{Res, check, check_eq};

/// How the leader backs off when a follower refuses AppendEntries.
#[derive(Clone, Copy)]
pub(super) enum Backoff {
    /// Read the follower's `(index, term)` hint against the leader's log.
    Hint,
    /// `next_index -= 1`, as in the paper's basic algorithm.
    OneByOne,
}

/// One refused AppendEntries and where the leader goes next.
pub(super) struct Refusal {
    /// The `(prevLogIndex, prevLogTerm)` the follower did not hold.
    pub(super) prev: (Index, Term),
    /// The follower's hint: its largest index at or below `prev.0` whose
    /// term is at most `prev.1`, with that term.
    pub(super) hint: (Index, Term),
    /// The leader's next `next_index`.
    pub(super) next: Index,
}

/// The leader's replication loop for one follower, from `next` until the
/// follower accepts. Returns the round trips taken and the refusals.
pub(super) fn replicate(
    leader: &Log,
    follower: &mut Log,
    mut next: Index,
    backoff: Backoff,
) -> Res<(usize, Vec<Refusal>)> {
    let last = leader.last_index();
    let mut refusals = Vec::new();
    for trip in 1..=last + 1 {
        let prev = next - 1;
        let prev_term = leader.term(prev)?;
        let entries = leader.slice(next, last + 1, u64::MAX)?;
        // Commit index 0: this section is about matching, not committing.
        if let Some(last_new) = follower.maybe_append(prev, prev_term, 0, &entries)? {
            check_eq("the follower's last new index", &last_new, &last)?;
            return Ok((usize::try_from(trip)?, refusals));
        }
        let hint = follower.find_conflict_by_term(prev, prev_term);
        let retry = match backoff {
            // etcd's leader: the largest index of its own log at or below the
            // hint whose term is at most the hint's term. Everything after it
            // is either missing on the follower or from a term it lacks.
            Backoff::Hint => leader.find_conflict_by_term(hint.0, hint.1).0 + 1,
            Backoff::OneByOne => prev,
        };
        check("a refusal moves next_index back", retry < next)?;
        refusals.push(Refusal {
            prev: (prev, prev_term),
            hint,
            next: retry,
        });
        next = retry;
    }
    Err(format!("no agreement after {} round trips", last + 1).into())
}
