//! The payloads inside frames: log entries, hard states and the log's meta
//! (compaction point, membership, latest snapshot). An entry is its index,
//! term and kind, then its membership (a configuration entry), then its
//! data to the end of the payload, for both kinds, as the wire codec keeps
//! the data of both. Indexes and terms are fixed-width little-endian; node
//! ids and memberships are written as the wire [`codec`](crate::codec)
//! writes them, which accepts one encoding per value.

use bytes::Bytes;

use crate::NodeId;
use crate::codec::{IdCodec, decode_membership, encode_membership};
use crate::entry::{Entry, EntryKind, HardState, Index, Term};
use crate::membership::Membership;
use crate::snapshot::SnapshotMeta;

/// The front `len` bytes of `input`, checked against what remains.
fn take<'a>(input: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if input.len() < len {
        return None;
    }
    let (head, tail) = input.split_at(len);
    *input = tail;
    Some(head)
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn get_u64(input: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(input, 8)?.try_into().ok()?))
}

fn get_u8(input: &mut &[u8]) -> Option<u8> {
    Some(take(input, 1)?[0])
}

const KIND_COMMAND: u8 = 0;
const KIND_MEMBERSHIP: u8 = 1;
const RECORD_HARD_STATE: u8 = 1;
const RECORD_META: u8 = 2;

/// The payload of one log entry.
pub(crate) fn encode_entry<N: IdCodec>(out: &mut Vec<u8>, entry: &Entry<N>) {
    put_u64(out, entry.index);
    put_u64(out, entry.term);
    match &entry.kind {
        EntryKind::Command => {
            out.push(KIND_COMMAND);
            out.extend_from_slice(&entry.data);
        }
        EntryKind::Membership(membership) => {
            out.push(KIND_MEMBERSHIP);
            encode_membership(membership, out);
            // A configuration entry may carry data too (the wire codec
            // sends it): kept, so the entry reads back as it was staged.
            out.extend_from_slice(&entry.data);
        }
    }
}

/// The index and term at the front of an entry payload.
pub(crate) fn entry_position(payload: &[u8]) -> Option<(Index, Term)> {
    let mut input = payload;
    Some((get_u64(&mut input)?, get_u64(&mut input)?))
}

pub(crate) fn decode_entry<N: NodeId + IdCodec>(payload: &[u8]) -> Option<Entry<N>> {
    let mut input = payload;
    let index = get_u64(&mut input)?;
    let term = get_u64(&mut input)?;
    match get_u8(&mut input)? {
        KIND_COMMAND => Some(Entry::new(term, index, Bytes::copy_from_slice(input))),
        KIND_MEMBERSHIP => {
            let membership = decode_membership(&mut input).ok()?;
            let mut entry = Entry::membership(term, index, membership);
            entry.data = Bytes::copy_from_slice(input);
            Some(entry)
        }
        _ => None,
    }
}

/// What the state file holds: hard states and metas, the latest of each
/// in force.
// Short-lived (encoded or decoded at once), so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateRecord<N> {
    HardState(HardState<N>),
    Meta(Meta<N>),
}

impl<N> StateRecord<N> {
    /// Whether every index the record holds (commit index, compaction
    /// point, snapshot index) is at most `max`.
    pub(crate) fn in_range(&self, max: Index) -> bool {
        match self {
            Self::HardState(h) => h.commit <= max,
            Self::Meta(m) => {
                m.compacted.0 <= max && m.snapshot.as_ref().is_none_or(|s| s.index <= max)
            }
        }
    }
}

/// Where the log starts and what stands for the entries before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta<N> {
    /// Index and term of the entry before the log (0, 0: never compacted).
    pub(crate) compacted: (Index, Term),
    /// The bootstrap membership, or the latest snapshot's.
    pub(crate) membership: Membership<N>,
    /// The latest durable snapshot.
    pub(crate) snapshot: Option<SnapshotMeta<N>>,
}

pub(crate) fn encode_state<N: IdCodec>(out: &mut Vec<u8>, record: &StateRecord<N>) {
    match record {
        StateRecord::HardState(hard_state) => {
            out.push(RECORD_HARD_STATE);
            put_u64(out, hard_state.term);
            match &hard_state.vote {
                None => out.push(0),
                Some(vote) => {
                    out.push(1);
                    vote.encode(out);
                }
            }
            put_u64(out, hard_state.commit);
        }
        StateRecord::Meta(meta) => {
            out.push(RECORD_META);
            put_u64(out, meta.compacted.0);
            put_u64(out, meta.compacted.1);
            encode_membership(&meta.membership, out);
            match &meta.snapshot {
                None => out.push(0),
                Some(snapshot) => {
                    out.push(1);
                    put_u64(out, snapshot.index);
                    put_u64(out, snapshot.term);
                    encode_membership(&snapshot.membership, out);
                }
            }
        }
    }
}

pub(crate) fn decode_state<N: NodeId + IdCodec>(payload: &[u8]) -> Option<StateRecord<N>> {
    let mut input = payload;
    let record = match get_u8(&mut input)? {
        RECORD_HARD_STATE => {
            let term = get_u64(&mut input)?;
            let vote = match get_u8(&mut input)? {
                0 => None,
                1 => Some(N::decode(&mut input).ok()?),
                _ => return None,
            };
            let commit = get_u64(&mut input)?;
            StateRecord::HardState(HardState { term, vote, commit })
        }
        RECORD_META => {
            let compacted = (get_u64(&mut input)?, get_u64(&mut input)?);
            let membership = decode_membership(&mut input).ok()?;
            let snapshot = match get_u8(&mut input)? {
                0 => None,
                1 => Some(SnapshotMeta {
                    index: get_u64(&mut input)?,
                    term: get_u64(&mut input)?,
                    membership: decode_membership(&mut input).ok()?,
                }),
                _ => return None,
            };
            StateRecord::Meta(Meta {
                compacted,
                membership,
                snapshot,
            })
        }
        _ => return None,
    };
    input.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let joint = Membership::joint([1u64, 2, 4], [1, 2, 3], [5], [3], true);
        for entry in [
            Entry::new(3, 7, "payload"),
            Entry::new(0, 1, ""),
            Entry::membership(4, 9, joint.clone()),
            Entry {
                data: "context".into(),
                ..Entry::membership(5, 10, joint)
            },
        ] {
            let mut out = Vec::new();
            encode_entry(&mut out, &entry);
            assert_eq!(decode_entry::<u64>(&out), Some(entry.clone()));
            assert_eq!(entry_position(&out), Some((entry.index, entry.term)));
            if entry.as_membership().is_some() {
                // Cut inside the membership: refused (a cut in the data
                // is the frame's checksum's to catch).
                for cut in 0..out.len() - entry.data.len() {
                    assert_eq!(decode_entry::<u64>(&out[..cut]), None);
                }
            }
        }
    }

    #[test]
    fn state_round_trips_and_refuses_cuts() {
        let records = [
            StateRecord::HardState(HardState {
                term: 5,
                vote: Some("node-a".to_string()),
                commit: 9,
            }),
            StateRecord::HardState(HardState::default()),
            StateRecord::Meta(Meta {
                compacted: (10, 3),
                membership: Membership::new(["a".to_string()], ["b".to_string()]),
                snapshot: Some(SnapshotMeta {
                    index: 12,
                    term: 3,
                    membership: Membership::from_voters(["a".to_string()]),
                }),
            }),
        ];
        for record in records {
            let mut out = Vec::new();
            encode_state(&mut out, &record);
            assert_eq!(decode_state::<String>(&out), Some(record));
            for cut in 0..out.len() {
                assert_eq!(decode_state::<String>(&out[..cut]), None);
            }
        }
    }
}
