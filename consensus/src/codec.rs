//! A compact, versioned binary encoding of [`Message`]s, for transports that
//! send them over a socket (the [`tokio`](crate#the-tokio-driver) driver's TCP
//! transport uses it). Always compiled; it needs no runtime.
//!
//! ```text
//! message  = version:u8 (1) from:N to:N term:uvarint kind:u8 body
//! kind 0  VoteRequest        flags:u8 (1 pre_vote | 2 leadership_transfer)
//!                            last_index last_term priority
//! kind 1  VoteResponse       flags:u8 (1 pre_vote | 2 granted)
//! kind 2  Append             prev_index prev_term commit count:uvarint entry*
//! kind 3  AppendResponse     0 last_index | 1 rejected hint_index hint_term
//! kind 4  Heartbeat          commit read_round
//! kind 5  HeartbeatResponse  read_round
//! kind 6  TimeoutNow         (no body)
//! kind 7  ReadIndexRequest   id
//! kind 8  ReadIndexResponse  0 | 1 index
//! kind 9  InstallSnapshot    meta offset last:u8 (0 | 1) len:uvarint data
//! kind 10 Quiesce            commit last_index last_term
//! kind 11 SnapshotResponse   index (0 offset | 1 installed | 2 rejected)
//! entry      = term index kind:u8 (0 command | 1 membership [membership])
//!              len:uvarint data
//! meta       = index term membership
//! membership = auto_leave:u8 (0 | 1) voters outgoing learners learners_next
//!              (each: count:uvarint N*, ascending)
//! ```
//!
//! Every integer not marked `u8` is an unsigned LEB128 varint, read in its
//! canonical (shortest) form only, through the `unsigned-varint` crate plus a
//! check of the last byte's spare bits (CONTRIBUTING.md), so every message
//! has exactly one accepted encoding: a membership must be in the normal
//! form [`Membership::joint`] builds (sorted, no duplicates, no learner that
//! votes), and flags may not carry unknown bits.
//!
//! Decoding untrusted bytes never panics: every length and count is checked
//! against the bytes that remain before anything is allocated, so a decoder
//! allocates at most a small multiple of its input. Cap the input itself (a
//! frame limit) to bound memory.
//!
//! ```
//! use dsys_consensus::codec;
//! use dsys_consensus::{Entry, Message, MessageBody};
//!
//! let message = Message {
//!     from: 1u64,
//!     to: 2,
//!     term: 3,
//!     body: MessageBody::Append {
//!         prev_index: 4,
//!         prev_term: 3,
//!         entries: vec![Entry::new(3, 5, "x=1")],
//!         commit: 4,
//!     },
//! };
//! let bytes = codec::encode_to_vec(&message);
//! assert_eq!(bytes.len(), 16);
//! assert_eq!(codec::decode::<u64>(&bytes)?, message);
//! # Ok::<(), codec::DecodeError>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::Bytes;

use crate::entry::{Entry, EntryKind};
use crate::membership::Membership;
use crate::message::{AppendOutcome, Message, MessageBody, SnapshotOutcome};
use crate::snapshot::SnapshotMeta;

/// The format version this build writes and reads (the first byte of every
/// message).
pub const VERSION: u8 = 1;

/// Malformed bytes: no message was made, nothing else changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field. Nothing changed.
    #[error("input truncated")]
    Truncated,
    /// A varint is not in its shortest form, is too long, or its value does
    /// not fit its type. Nothing changed.
    #[error("malformed varint")]
    Varint,
    /// A format version this build does not read. Nothing changed.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A tag or kind byte names nothing known. Nothing changed.
    #[error("unknown tag {0}")]
    Tag(u8),
    /// A flag byte carries bits that mean nothing. Nothing changed.
    #[error("bad flags {0:#04x}")]
    Flags(u8),
    /// A node id's bytes are not valid for its type (bad UTF-8, too long, a
    /// bad tag). Nothing changed.
    #[error("invalid node id")]
    NodeId,
    /// A membership that is not in its normal form (unsorted, duplicated,
    /// a learner that votes, `auto_leave` outside a joint configuration):
    /// not the one encoding of any membership. Nothing changed.
    #[error("membership not in normal form")]
    Membership,
    /// Bytes remain after the message. Nothing changed.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// How a node id travels in messages.
///
/// Implemented for `u32`, `u64`, `String` and [`SocketAddr`]. A `String`
/// id may be of any length: it is checked against the bytes left before
/// anything is allocated. The same encoding is what
/// [`DiskStorage`](crate::durable::DiskStorage) writes, so an id that can
/// be written can always be read back. For your own id type, write a compact, prefix-free
/// encoding (the helpers [`put_uvarint`] and [`get_uvarint`] write and read
/// canonical varints). `decode` must consume exactly what `encode` wrote and
/// must reject, never panic on, anything else.
pub trait IdCodec: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one id from the front of `input` and advances it.
    ///
    /// # Errors
    /// [`DecodeError::NodeId`] (or [`DecodeError::Truncated`] /
    /// [`DecodeError::Varint`]) when the bytes are not an id of this type;
    /// `input` may have been advanced.
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

impl IdCodec for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, u64::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        u32::try_from(get_uvarint(input)?).map_err(|_| DecodeError::Varint)
    }
}

impl IdCodec for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, *self);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_uvarint(input)
    }
}

impl IdCodec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_uvarint(input)?;
        let bytes = get_bytes(input, len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NodeId)
    }
}

impl IdCodec for SocketAddr {
    /// A tag (4 or 6), the address's octets, the port (2 bytes,
    /// big-endian). An IPv6 address with a flow label or a scope id (a
    /// link-local address needs one) has tag 7 and both after the port (4
    /// bytes each, big-endian), so the id read back is the id written; tag
    /// 7 with both zero is refused (that address is written with tag 6).
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SocketAddr::V4(addr) => {
                out.push(4);
                out.extend_from_slice(&addr.ip().octets());
                out.extend_from_slice(&addr.port().to_be_bytes());
            }
            SocketAddr::V6(addr) => {
                let scoped = addr.flowinfo() != 0 || addr.scope_id() != 0;
                out.push(if scoped { 7 } else { 6 });
                out.extend_from_slice(&addr.ip().octets());
                out.extend_from_slice(&addr.port().to_be_bytes());
                if scoped {
                    out.extend_from_slice(&addr.flowinfo().to_be_bytes());
                    out.extend_from_slice(&addr.scope_id().to_be_bytes());
                }
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match get_u8(input)? {
            4 => {
                let ip = Ipv4Addr::from(get_array::<4>(input)?);
                let port = u16::from_be_bytes(get_array::<2>(input)?);
                Ok(SocketAddr::new(IpAddr::V4(ip), port))
            }
            tag @ (6 | 7) => {
                let ip = Ipv6Addr::from(get_array::<16>(input)?);
                let port = u16::from_be_bytes(get_array::<2>(input)?);
                let (flowinfo, scope_id) = if tag == 7 {
                    let flowinfo = u32::from_be_bytes(get_array::<4>(input)?);
                    let scope_id = u32::from_be_bytes(get_array::<4>(input)?);
                    if flowinfo == 0 && scope_id == 0 {
                        return Err(DecodeError::NodeId);
                    }
                    (flowinfo, scope_id)
                } else {
                    (0, 0)
                };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip, port, flowinfo, scope_id,
                )))
            }
            _ => Err(DecodeError::NodeId),
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

/// Reads one canonical `u64` varint from the front of `input` and advances
/// it. `unsigned-varint` refuses padded and over-long encodings; its 0.8
/// decoder drops the bits of a 10th byte above 2⁶⁴, so that byte is checked
/// here: every value has exactly one accepted encoding.
///
/// # Errors
/// [`DecodeError::Truncated`] or [`DecodeError::Varint`]; `input` is then
/// left as it was.
pub fn get_uvarint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let (v, rest) = unsigned_varint::decode::u64(input).map_err(|e| match e {
        unsigned_varint::decode::Error::Insufficient => DecodeError::Truncated,
        _ => DecodeError::Varint,
    })?;
    let len = input.len() - rest.len();
    if len == 10 && input[9] > 0x01 {
        return Err(DecodeError::Varint);
    }
    *input = rest;
    Ok(v)
}

fn get_u8(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    *input = rest;
    Ok(b)
}

fn get_bytes<'a>(input: &mut &'a [u8], len: u64) -> Result<&'a [u8], DecodeError> {
    let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
    if input.len() < len {
        return Err(DecodeError::Truncated);
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Ok(bytes)
}

fn get_array<const L: usize>(input: &mut &[u8]) -> Result<[u8; L], DecodeError> {
    let bytes = get_bytes(input, L as u64)?;
    let mut out = [0; L];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn get_bool(input: &mut &[u8]) -> Result<bool, DecodeError> {
    match get_u8(input)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(DecodeError::Flags(b)),
    }
}

/// Reads a flag byte whose only meaningful bits are the two lowest.
fn get_flags2(input: &mut &[u8]) -> Result<(bool, bool), DecodeError> {
    let b = get_u8(input)?;
    if b & !0b11 != 0 {
        return Err(DecodeError::Flags(b));
    }
    Ok((b & 1 != 0, b & 2 != 0))
}

fn flags2(a: bool, b: bool) -> u8 {
    u8::from(a) | (u8::from(b) << 1)
}

/// A count read from the input, capped so that `count * min_size` bytes
/// remain: a lying count fails before it sizes an allocation.
fn get_count(input: &mut &[u8], min_size: usize) -> Result<usize, DecodeError> {
    let count = get_uvarint(input)?;
    let most = input.len() / min_size.max(1);
    match usize::try_from(count) {
        Ok(count) if count <= most => Ok(count),
        _ => Err(DecodeError::Truncated),
    }
}

/// Appends the encoding of `message`.
pub fn encode<N: IdCodec>(message: &Message<N>, out: &mut Vec<u8>) {
    out.push(VERSION);
    message.from.encode(out);
    message.to.encode(out);
    put_uvarint(out, message.term);
    match &message.body {
        MessageBody::VoteRequest {
            pre_vote,
            last_index,
            last_term,
            leadership_transfer,
            priority,
        } => {
            out.push(0);
            out.push(flags2(*pre_vote, *leadership_transfer));
            put_uvarint(out, *last_index);
            put_uvarint(out, *last_term);
            put_uvarint(out, *priority);
        }
        MessageBody::VoteResponse { pre_vote, granted } => {
            out.push(1);
            out.push(flags2(*pre_vote, *granted));
        }
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            out.push(2);
            put_uvarint(out, *prev_index);
            put_uvarint(out, *prev_term);
            put_uvarint(out, *commit);
            put_uvarint(out, entries.len() as u64);
            for entry in entries {
                encode_entry(entry, out);
            }
        }
        MessageBody::AppendResponse(outcome) => {
            out.push(3);
            match outcome {
                AppendOutcome::Accepted { last_index } => {
                    out.push(0);
                    put_uvarint(out, *last_index);
                }
                AppendOutcome::Rejected {
                    rejected,
                    hint_index,
                    hint_term,
                } => {
                    out.push(1);
                    put_uvarint(out, *rejected);
                    put_uvarint(out, *hint_index);
                    put_uvarint(out, *hint_term);
                }
            }
        }
        MessageBody::Heartbeat { commit, read_round } => {
            out.push(4);
            put_uvarint(out, *commit);
            put_uvarint(out, *read_round);
        }
        MessageBody::HeartbeatResponse { read_round } => {
            out.push(5);
            put_uvarint(out, *read_round);
        }
        MessageBody::TimeoutNow => out.push(6),
        MessageBody::ReadIndexRequest { id } => {
            out.push(7);
            put_uvarint(out, *id);
        }
        MessageBody::ReadIndexResponse { id, index } => {
            out.push(8);
            put_uvarint(out, *id);
            match index {
                None => out.push(0),
                Some(index) => {
                    out.push(1);
                    put_uvarint(out, *index);
                }
            }
        }
        MessageBody::InstallSnapshot {
            meta,
            offset,
            data,
            last,
        } => {
            out.push(9);
            put_uvarint(out, meta.index);
            put_uvarint(out, meta.term);
            encode_membership(&meta.membership, out);
            put_uvarint(out, *offset);
            out.push(u8::from(*last));
            put_uvarint(out, data.len() as u64);
            out.extend_from_slice(data);
        }
        MessageBody::Quiesce {
            commit,
            last_index,
            last_term,
        } => {
            out.push(10);
            put_uvarint(out, *commit);
            put_uvarint(out, *last_index);
            put_uvarint(out, *last_term);
        }
        MessageBody::SnapshotResponse { index, outcome } => {
            out.push(11);
            put_uvarint(out, *index);
            match outcome {
                SnapshotOutcome::Next { offset } => {
                    out.push(0);
                    put_uvarint(out, *offset);
                }
                SnapshotOutcome::Installed => out.push(1),
                SnapshotOutcome::Rejected => out.push(2),
            }
        }
    }
}

/// The encoding of `message` as a new vector.
pub fn encode_to_vec<N: IdCodec>(message: &Message<N>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(message, &mut out);
    out
}

fn encode_entry<N: IdCodec>(entry: &Entry<N>, out: &mut Vec<u8>) {
    put_uvarint(out, entry.term);
    put_uvarint(out, entry.index);
    match &entry.kind {
        EntryKind::Command => out.push(0),
        EntryKind::Membership(m) => {
            out.push(1);
            encode_membership(m, out);
        }
    }
    put_uvarint(out, entry.data.len() as u64);
    out.extend_from_slice(&entry.data);
}

/// The membership's encoding (also inside the durable storage's records).
pub(crate) fn encode_membership<N: IdCodec>(m: &Membership<N>, out: &mut Vec<u8>) {
    out.push(u8::from(m.auto_leave()));
    for set in [
        m.voters(),
        m.outgoing_voters(),
        m.learners(),
        m.learners_next(),
    ] {
        put_uvarint(out, set.len() as u64);
        for node in set {
            node.encode(out);
        }
    }
}

/// Decodes one message: all of `input`, nothing more or less.
///
/// # Errors
/// A [`DecodeError`] for any input that is not the one encoding of a
/// message (including [`DecodeError::Trailing`] when bytes remain).
pub fn decode<N: IdCodec + crate::NodeId>(input: &[u8]) -> Result<Message<N>, DecodeError> {
    let mut input = input;
    let input = &mut input;
    let version = get_u8(input)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let from = N::decode(input)?;
    let to = N::decode(input)?;
    let term = get_uvarint(input)?;
    let body = match get_u8(input)? {
        0 => {
            let (pre_vote, leadership_transfer) = get_flags2(input)?;
            MessageBody::VoteRequest {
                pre_vote,
                leadership_transfer,
                last_index: get_uvarint(input)?,
                last_term: get_uvarint(input)?,
                priority: get_uvarint(input)?,
            }
        }
        1 => {
            let (pre_vote, granted) = get_flags2(input)?;
            MessageBody::VoteResponse { pre_vote, granted }
        }
        2 => {
            let prev_index = get_uvarint(input)?;
            let prev_term = get_uvarint(input)?;
            let commit = get_uvarint(input)?;
            // An entry is at least 4 bytes: term, index, kind, length.
            let count = get_count(input, 4)?;
            let mut entries = Vec::with_capacity(count.min(MAX_RESERVE));
            for _ in 0..count {
                entries.push(decode_entry(input)?);
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            }
        }
        3 => MessageBody::AppendResponse(match get_u8(input)? {
            0 => AppendOutcome::Accepted {
                last_index: get_uvarint(input)?,
            },
            1 => AppendOutcome::Rejected {
                rejected: get_uvarint(input)?,
                hint_index: get_uvarint(input)?,
                hint_term: get_uvarint(input)?,
            },
            tag => return Err(DecodeError::Tag(tag)),
        }),
        4 => MessageBody::Heartbeat {
            commit: get_uvarint(input)?,
            read_round: get_uvarint(input)?,
        },
        5 => MessageBody::HeartbeatResponse {
            read_round: get_uvarint(input)?,
        },
        6 => MessageBody::TimeoutNow,
        7 => MessageBody::ReadIndexRequest {
            id: get_uvarint(input)?,
        },
        8 => {
            let id = get_uvarint(input)?;
            let index = match get_u8(input)? {
                0 => None,
                1 => Some(get_uvarint(input)?),
                tag => return Err(DecodeError::Tag(tag)),
            };
            MessageBody::ReadIndexResponse { id, index }
        }
        9 => {
            let meta = SnapshotMeta {
                index: get_uvarint(input)?,
                term: get_uvarint(input)?,
                membership: decode_membership(input)?,
            };
            let offset = get_uvarint(input)?;
            let last = get_bool(input)?;
            let len = get_uvarint(input)?;
            let data = Bytes::copy_from_slice(get_bytes(input, len)?);
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                last,
            }
        }
        10 => MessageBody::Quiesce {
            commit: get_uvarint(input)?,
            last_index: get_uvarint(input)?,
            last_term: get_uvarint(input)?,
        },
        11 => {
            let index = get_uvarint(input)?;
            let outcome = match get_u8(input)? {
                0 => SnapshotOutcome::Next {
                    offset: get_uvarint(input)?,
                },
                1 => SnapshotOutcome::Installed,
                2 => SnapshotOutcome::Rejected,
                tag => return Err(DecodeError::Tag(tag)),
            };
            MessageBody::SnapshotResponse { index, outcome }
        }
        kind => return Err(DecodeError::Tag(kind)),
    };
    if !input.is_empty() {
        return Err(DecodeError::Trailing(input.len()));
    }
    Ok(Message {
        from,
        to,
        term,
        body,
    })
}

fn decode_entry<N: IdCodec + crate::NodeId>(input: &mut &[u8]) -> Result<Entry<N>, DecodeError> {
    let term = get_uvarint(input)?;
    let index = get_uvarint(input)?;
    let kind = match get_u8(input)? {
        0 => EntryKind::Command,
        1 => EntryKind::Membership(Box::new(decode_membership(input)?)),
        tag => return Err(DecodeError::Tag(tag)),
    };
    let len = get_uvarint(input)?;
    let data = Bytes::copy_from_slice(get_bytes(input, len)?);
    Ok(Entry {
        term,
        index,
        data,
        kind,
    })
}

/// Most items reserved up front from a count read off the wire: the count
/// is checked against the bytes left, but an item in memory is larger than
/// its smallest encoding (an entry 14 times, a `SocketAddr` id 32 times), so
/// a lying count could make a small frame reserve many times its size
/// before decoding fails. Longer lists grow as they decode.
const MAX_RESERVE: usize = 1024;

/// Reads one membership, refusing any but its one encoding.
pub(crate) fn decode_membership<N: IdCodec + crate::NodeId>(
    input: &mut &[u8],
) -> Result<Membership<N>, DecodeError> {
    let auto_leave = get_bool(input)?;
    let mut sets: [Vec<N>; 4] = Default::default();
    for set in &mut sets {
        // An id is at least one byte.
        let count = get_count(input, 1)?;
        let mut nodes = Vec::with_capacity(count.min(MAX_RESERVE));
        for _ in 0..count {
            nodes.push(N::decode(input)?);
        }
        *set = nodes;
    }
    let [voters, outgoing, learners, learners_next] = sets;
    let m = Membership::joint(
        voters.iter().cloned(),
        outgoing.iter().cloned(),
        learners.iter().cloned(),
        learners_next.iter().cloned(),
        auto_leave,
    );
    // One encoding per membership: only the normal form `joint` builds.
    if m.voters() != voters
        || m.outgoing_voters() != outgoing
        || m.learners() != learners
        || m.learners_next() != learners_next
        || m.auto_leave() != auto_leave
    {
        return Err(DecodeError::Membership);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(message: Message<u64>) {
        let bytes = encode_to_vec(&message);
        assert_eq!(decode::<u64>(&bytes), Ok(message));
        for cut in 0..bytes.len() {
            assert!(decode::<u64>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode::<u64>(&long), Err(DecodeError::Trailing(1)));
    }

    fn msg(body: MessageBody<u64>) -> Message<u64> {
        Message {
            from: 1,
            to: 2,
            term: 7,
            body,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let joint = Membership::joint([1u64, 2, 4], [1, 2, 3], [5], [3], true);
        rt(msg(MessageBody::VoteRequest {
            pre_vote: true,
            last_index: 9,
            last_term: 6,
            leadership_transfer: true,
            priority: 3,
        }));
        rt(msg(MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        }));
        rt(msg(MessageBody::Append {
            prev_index: 3,
            prev_term: 2,
            entries: vec![
                Entry::new(7, 4, "abc"),
                Entry::membership(7, 5, joint.clone()),
                Entry::new(7, 6, Bytes::new()),
            ],
            commit: 3,
        }));
        rt(msg(MessageBody::AppendResponse(AppendOutcome::Rejected {
            rejected: 5,
            hint_index: 2,
            hint_term: 1,
        })));
        rt(msg(MessageBody::AppendResponse(AppendOutcome::Accepted {
            last_index: u64::MAX,
        })));
        rt(msg(MessageBody::Heartbeat {
            commit: 1,
            read_round: 2,
        }));
        rt(msg(MessageBody::HeartbeatResponse { read_round: 2 }));
        rt(msg(MessageBody::TimeoutNow));
        rt(msg(MessageBody::ReadIndexRequest { id: 5 }));
        rt(msg(MessageBody::ReadIndexResponse { id: 5, index: None }));
        rt(msg(MessageBody::ReadIndexResponse {
            id: 5,
            index: Some(0),
        }));
        rt(msg(MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                index: 10,
                term: 3,
                membership: joint,
            },
            offset: 4096,
            data: Bytes::from_static(b"chunk"),
            last: true,
        }));
        rt(msg(MessageBody::Quiesce {
            commit: 4,
            last_index: 4,
            last_term: 2,
        }));
        for outcome in [
            SnapshotOutcome::Next { offset: 7 },
            SnapshotOutcome::Installed,
            SnapshotOutcome::Rejected,
        ] {
            rt(msg(MessageBody::SnapshotResponse { index: 3, outcome }));
        }
    }

    #[test]
    fn other_id_types_round_trip() {
        let m = Message {
            from: String::from("a"),
            to: String::from("bé"),
            term: 1,
            body: MessageBody::TimeoutNow,
        };
        assert_eq!(decode::<String>(&encode_to_vec(&m)), Ok(m));
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("an address");
        let b: SocketAddr = "[::1]:4001".parse().expect("an address");
        let m = Message {
            from: a,
            to: b,
            term: 1,
            body: MessageBody::ReadIndexRequest { id: 1 },
        };
        assert_eq!(decode::<SocketAddr>(&encode_to_vec(&m)), Ok(m));
        let m = Message {
            from: 1u32,
            to: u32::MAX,
            term: 1,
            body: MessageBody::TimeoutNow,
        };
        assert_eq!(decode::<u32>(&encode_to_vec(&m)), Ok(m));
        // A u64 that does not fit a u32 id.
        let wide = encode_to_vec(&Message {
            from: u64::from(u32::MAX) + 1,
            to: 1,
            term: 1,
            body: MessageBody::TimeoutNow,
        });
        assert_eq!(decode::<u32>(&wide), Err(DecodeError::Varint));
        // A long id reads back (what is written to disk must); a length
        // past the input is refused before anything is allocated.
        let long = "x".repeat(4000);
        let mut out = Vec::new();
        long.encode(&mut out);
        assert_eq!(String::decode(&mut &out[..]), Ok(long));
        assert_eq!(
            String::decode(&mut &out[..100]),
            Err(DecodeError::Truncated)
        );
    }

    /// Padded, over-long and spare-bit varints are all refused
    /// (CONTRIBUTING.md, "Bytes from peers or disk").
    #[test]
    fn only_canonical_varints() {
        assert_eq!(
            get_uvarint(&mut &[0x81, 0x00][..]),
            Err(DecodeError::Varint)
        );
        let overlong = [0xff; 11];
        assert_eq!(get_uvarint(&mut &overlong[..]), Err(DecodeError::Varint));
        let spare = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03];
        assert_eq!(get_uvarint(&mut &spare[..]), Err(DecodeError::Varint));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(get_uvarint(&mut &max[..]), Ok(u64::MAX));
        assert_eq!(get_uvarint(&mut &[0x80][..]), Err(DecodeError::Truncated));
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        let base = encode_to_vec(&msg(MessageBody::VoteResponse {
            pre_vote: true,
            granted: false,
        }));
        let mut bad = base.clone();
        *bad.last_mut().expect("a flag byte") = 0x04;
        assert_eq!(decode::<u64>(&bad), Err(DecodeError::Flags(4)));
        let mut bad = base.clone();
        bad[0] = 2;
        assert_eq!(decode::<u64>(&bad), Err(DecodeError::Version(2)));
        let mut bad = base;
        bad[4] = 12;
        assert_eq!(decode::<u64>(&bad), Err(DecodeError::Tag(12)));

        // A membership with its voters out of order.
        let mut out = vec![VERSION, 1, 2, 7, 9, 1, 1, 0, 2, 2, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode::<u64>(&out), Err(DecodeError::Membership));
        out[9..11].copy_from_slice(&[1, 2]);
        assert!(decode::<u64>(&out).is_ok());
        // auto_leave on a simple membership.
        out[7] = 1;
        assert_eq!(decode::<u64>(&out), Err(DecodeError::Membership));
    }

    #[test]
    fn lying_counts_allocate_nothing_large() {
        // An Append claiming 2^40 entries in a few bytes.
        let mut out = vec![VERSION, 1, 2, 7, 2, 0, 0, 0];
        put_uvarint(&mut out, 1 << 40);
        assert_eq!(decode::<u64>(&out), Err(DecodeError::Truncated));
        // A snapshot chunk claiming u64::MAX bytes.
        let mut out = vec![VERSION, 1, 2, 7, 9, 1, 1, 0, 0, 0, 0, 0, 0, 1];
        put_uvarint(&mut out, u64::MAX);
        assert_eq!(decode::<u64>(&out), Err(DecodeError::Truncated));
    }
}
