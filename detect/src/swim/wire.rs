//! The wire format: one packet is a header, one protocol message and the piggybacked
//! membership updates (SWIM §4.1, "infection-style dissemination").
//!
//! ```text
//! packet   = magic:u8 (0xD5) version:u8 (1) cluster_id:uvarint kind:u8 from:N
//!            from_incarnation:uvarint message-body updates
//! Ping     = seq:uvarint target:N
//! PingReq  = seq:uvarint target:N
//! Ack      = seq:uvarint
//! Nack     = seq:uvarint
//! Gossip   = (no body)
//! Announce = more:u8 (0 = last chunk)    updates = the sender's whole view
//! Feed     = more:u8 (0 = last chunk)    updates = the answerer's whole view
//! updates  = count:uvarint update*
//! update   = tag:u8 node:N incarnation:uvarint [by:N for Suspect and Down]
//! ```
//!
//! Integers are LEB128 varints (`integer-encoding`), so a packet for `u32` ids with a few
//! updates is a few dozen bytes. Every packet carries the cluster id: packets from another
//! cluster are rejected before anything else is read ([`PacketError::WrongCluster`]).
//! The sender's incarnation in the header makes every packet a small piece of news in
//! itself: "`from` is alive at `from_incarnation`" (as foca does), so a new member is
//! known to everyone it talks to, and a missed refutation is repaired by the next packet.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use integer_encoding::VarInt;

const MAGIC: u8 = 0xD5;
const VERSION: u8 = 1;

/// Longest identity accepted by the decoders for variable-length ids (`String`).
pub const MAX_ID_LEN: usize = 255;

/// A malformed packet or identity. The packet is dropped; no state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet ended in the middle of a field.
    #[error("packet truncated")]
    Truncated,
    /// A varint is longer than its type allows, or its value does not fit.
    #[error("malformed varint")]
    Varint,
    /// The first byte is not the dsys-detect magic: not one of our packets.
    #[error("bad magic byte {0:#04x}")]
    Magic(u8),
    /// A protocol version this build does not speak.
    #[error("unsupported version {0}")]
    Version(u8),
    /// Unknown message kind.
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// A flag byte other than 0 or 1.
    #[error("bad flag byte {0}")]
    Flag(u8),
    /// Unknown update tag.
    #[error("unknown update tag {0}")]
    UpdateTag(u8),
    /// An identity's bytes are invalid for its type (bad UTF-8, too long, bad tag).
    #[error("invalid node id")]
    NodeId,
    /// Bytes remain after the last update.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Why a received packet was dropped. State did not change; the drop is counted in
/// [`Counters`](super::Counters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The bytes are not a well-formed packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
    /// The packet belongs to another cluster (a misconfigured or foreign node).
    #[error("packet from cluster {got}, this node is in cluster {expected}")]
    WrongCluster {
        /// Our cluster id.
        expected: u64,
        /// The id in the packet.
        got: u64,
    },
    /// The packet claims to come from this node's own identity.
    #[error("packet claims to come from this node")]
    FromSelf,
    /// This node has left the cluster and no longer takes part.
    #[error("this node has left the cluster")]
    Left,
}

/// A node identity that can travel in packets.
///
/// Implemented for `u32`, `u64`, `u128`, `String` and [`SocketAddr`]; implement it for
/// your own id type (a UUID, a name plus a generation) with a compact, prefix-free
/// encoding. `decode` must consume exactly what `encode` wrote and must reject, not
/// panic on, any other input, including an encoding longer than
/// [`MAX_ENCODED_LEN`](Self::MAX_ENCODED_LEN).
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {
    /// The longest encoding `encode` writes and `decode` accepts, in bytes. The
    /// smallest valid [`Config::max_packet_size`](super::Config::max_packet_size) is
    /// sized from it ([`Config::min_packet_size`](super::Config::min_packet_size)). An
    /// id longer than declared never makes a packet exceed `max_packet_size`: what
    /// does not fit is not sent, and is counted in
    /// [`Counters`](super::Counters)' `oversized_packets` and `oversized_updates`.
    const MAX_ENCODED_LEN: usize;
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one id from the front of `input` and advances it.
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

pub(crate) fn get_uvarint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    // Most varints in a packet (kinds, small ids, sequence numbers) are one byte.
    if let Some((&b, rest)) = input.split_first() {
        if b < 0x80 {
            *input = rest;
            return Ok(u64::from(b));
        }
    }
    // integer-encoding accepts up to 10 bytes and wraps silently past 64 bits; reject
    // over-long encodings ourselves so every u64 has exactly one accepted encoding.
    let (v, n) = u64::decode_var(input).ok_or_else(|| {
        if input.len() < 10 && input.iter().all(|b| b & 0x80 != 0) {
            DecodeError::Truncated
        } else {
            DecodeError::Varint
        }
    })?;
    // One accepted encoding per value: no 10-byte overflow past 64 bits, and no
    // padding (a last byte of zero after a continuation byte, as in [0x81, 0x00]).
    if (n == 10 && input[9] > 1) || (n > 1 && input[n - 1] == 0) {
        return Err(DecodeError::Varint);
    }
    *input = &input[n..];
    Ok(v)
}

pub(crate) fn get_u32(input: &mut &[u8]) -> Result<u32, DecodeError> {
    u32::try_from(get_uvarint(input)?).map_err(|_| DecodeError::Varint)
}

fn get_u8(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    *input = rest;
    Ok(b)
}

fn get_flag(input: &mut &[u8]) -> Result<bool, DecodeError> {
    match get_u8(input)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(DecodeError::Flag(b)),
    }
}

fn get_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

impl NodeId for u32 {
    const MAX_ENCODED_LEN: usize = 5;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, u64::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_u32(input)
    }
}

impl NodeId for u64 {
    const MAX_ENCODED_LEN: usize = 10;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, *self);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        get_uvarint(input)
    }
}

impl NodeId for u128 {
    const MAX_ENCODED_LEN: usize = 16;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let b = get_bytes(input, 16)?;
        Ok(u128::from_be_bytes(b.try_into().expect("16 bytes")))
    }
}

impl NodeId for String {
    /// A 2-byte length and up to [`MAX_ID_LEN`] bytes.
    const MAX_ENCODED_LEN: usize = 2 + MAX_ID_LEN;
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_uvarint(input)?;
        if len > MAX_ID_LEN as u64 {
            return Err(DecodeError::NodeId);
        }
        let b = get_bytes(input, len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NodeId)
    }
}

impl NodeId for SocketAddr {
    /// A tag, an IPv6 address and a port.
    const MAX_ENCODED_LEN: usize = 1 + 16 + 2;
    fn encode(&self, out: &mut Vec<u8>) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.port().to_be_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let ip = match get_u8(input)? {
            4 => IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(get_bytes(input, 4)?).expect("4 bytes"),
            )),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(get_bytes(input, 16)?).expect("16 bytes"),
            )),
            _ => return Err(DecodeError::NodeId),
        };
        let port = u16::from_be_bytes(get_bytes(input, 2)?.try_into().expect("2 bytes"));
        Ok(SocketAddr::new(ip, port))
    }
}

/// The protocol message a packet carries (SWIM §3 and §4, Lifeguard §4.2 for `Nack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message<N> {
    /// Direct probe; `target` lets a relayed ping be checked by its receiver.
    Ping { seq: u32, target: N },
    /// "Probe `target` for me" (SWIM §3.1, ping-req).
    PingReq { seq: u32, target: N },
    /// Answer to a ping, or a relayed answer to a ping-req.
    Ack { seq: u32 },
    /// Lifeguard: a relay could not reach the target in time.
    Nack { seq: u32 },
    /// Updates only (memberlist's gossip interval).
    Gossip,
    /// Join, re-join or anti-entropy: a chunk of the sender's view, and "send me
    /// yours" once the last chunk (`more == false`) arrives.
    Announce { more: bool },
    /// A chunk of a full membership view, the answer to `Announce`.
    Feed { more: bool },
}

impl<N> Message<N> {
    fn kind(&self) -> u8 {
        match self {
            Message::Ping { .. } => 1,
            Message::PingReq { .. } => 2,
            Message::Ack { .. } => 3,
            Message::Nack { .. } => 4,
            Message::Gossip => 5,
            Message::Announce { .. } => 6,
            Message::Feed { .. } => 7,
        }
    }
}

/// One piece of membership news (SWIM §4.2): what the sender believes about `node` at
/// `incarnation`. `by` names who suspected or confirmed the failure, which Lifeguard's
/// dynamic suspicion counts as independent confirmations (Lifeguard §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Update<N> {
    Alive { node: N, incarnation: u32 },
    Suspect { node: N, incarnation: u32, by: N },
    Down { node: N, incarnation: u32, by: N },
    Left { node: N, incarnation: u32 },
}

impl<N: NodeId> Update<N> {
    pub(crate) fn node(&self) -> &N {
        match self {
            Update::Alive { node, .. }
            | Update::Suspect { node, .. }
            | Update::Down { node, .. }
            | Update::Left { node, .. } => node,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let (tag, node, incarnation, by) = match self {
            Update::Alive { node, incarnation } => (1, node, incarnation, None),
            Update::Suspect {
                node,
                incarnation,
                by,
            } => (2, node, incarnation, Some(by)),
            Update::Down {
                node,
                incarnation,
                by,
            } => (3, node, incarnation, Some(by)),
            Update::Left { node, incarnation } => (4, node, incarnation, None),
        };
        out.push(tag);
        node.encode(out);
        put_uvarint(out, u64::from(*incarnation));
        if let Some(by) = by {
            by.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let tag = get_u8(input)?;
        if !(1..=4).contains(&tag) {
            return Err(DecodeError::UpdateTag(tag));
        }
        let node = N::decode(input)?;
        let incarnation = get_u32(input)?;
        Ok(match tag {
            1 => Update::Alive { node, incarnation },
            2 => Update::Suspect {
                node,
                incarnation,
                by: N::decode(input)?,
            },
            3 => Update::Down {
                node,
                incarnation,
                by: N::decode(input)?,
            },
            _ => Update::Left { node, incarnation },
        })
    }
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packet<N> {
    pub(crate) from: N,
    pub(crate) from_incarnation: u32,
    pub(crate) message: Message<N>,
    pub(crate) updates: Vec<Update<N>>,
}

/// Writes the header and message of a packet; updates follow through
/// [`finish_updates`] once the caller has chosen them.
pub(crate) fn encode_message<N: NodeId>(
    out: &mut Vec<u8>,
    cluster_id: u64,
    (from, from_incarnation): (&N, u32),
    message: &Message<N>,
) {
    out.push(MAGIC);
    out.push(VERSION);
    put_uvarint(out, cluster_id);
    out.push(message.kind());
    from.encode(out);
    put_uvarint(out, u64::from(from_incarnation));
    match message {
        Message::Ping { seq, target } | Message::PingReq { seq, target } => {
            put_uvarint(out, u64::from(*seq));
            target.encode(out);
        }
        Message::Ack { seq } | Message::Nack { seq } => put_uvarint(out, u64::from(*seq)),
        Message::Gossip => {}
        Message::Announce { more } | Message::Feed { more } => out.push(u8::from(*more)),
    }
}

/// Appends the update count and the already-encoded updates.
pub(crate) fn finish_updates(out: &mut Vec<u8>, count: usize, encoded: &[u8]) {
    put_uvarint(out, count as u64);
    out.extend_from_slice(encoded);
}

/// Decodes a whole packet, checking the cluster id first.
pub(crate) fn decode_packet<N: NodeId>(
    input: &[u8],
    cluster_id: u64,
) -> Result<Packet<N>, PacketError> {
    decode_packet_into(input, cluster_id, Vec::new())
}

/// [`decode_packet`] into a caller's (cleared) update buffer, so a member can reuse one
/// allocation for every packet it receives.
pub(crate) fn decode_packet_into<N: NodeId>(
    mut input: &[u8],
    cluster_id: u64,
    mut updates: Vec<Update<N>>,
) -> Result<Packet<N>, PacketError> {
    updates.clear();
    let input = &mut input;
    let magic = get_u8(input)?;
    if magic != MAGIC {
        return Err(DecodeError::Magic(magic).into());
    }
    let version = get_u8(input)?;
    if version != VERSION {
        return Err(DecodeError::Version(version).into());
    }
    let got = get_uvarint(input)?;
    if got != cluster_id {
        return Err(PacketError::WrongCluster {
            expected: cluster_id,
            got,
        });
    }
    let kind = get_u8(input)?;
    let from = N::decode(input)?;
    let from_incarnation = get_u32(input)?;
    let message = match kind {
        1 => Message::Ping {
            seq: get_u32(input)?,
            target: N::decode(input)?,
        },
        2 => Message::PingReq {
            seq: get_u32(input)?,
            target: N::decode(input)?,
        },
        3 => Message::Ack {
            seq: get_u32(input)?,
        },
        4 => Message::Nack {
            seq: get_u32(input)?,
        },
        5 => Message::Gossip,
        6 => Message::Announce {
            more: get_flag(input)?,
        },
        7 => Message::Feed {
            more: get_flag(input)?,
        },
        k => return Err(DecodeError::Kind(k).into()),
    };
    let count = get_uvarint(input)?;
    // Each update takes at least three bytes: a count beyond that is a lie, and must not
    // size an allocation.
    if count > (input.len() / 3) as u64 {
        return Err(DecodeError::Truncated.into());
    }
    updates.reserve(count as usize);
    for _ in 0..count {
        updates.push(Update::decode(input)?);
    }
    if !input.is_empty() {
        return Err(DecodeError::Trailing(input.len()).into());
    }
    Ok(Packet {
        from,
        from_incarnation,
        message,
        updates,
    })
}

/// Decodes a packet without acting on it: the fuzz and property tests' entry point, and
/// a tool for users who log or inspect traffic. Returns the sender on success.
pub fn inspect<N: NodeId>(payload: &[u8], cluster_id: u64) -> Result<N, PacketError> {
    decode_packet::<N>(payload, cluster_id).map(|p| p.from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(message: Message<u32>, updates: Vec<Update<u32>>) {
        let mut out = Vec::new();
        encode_message(&mut out, 7, (&3u32, 12), &message);
        let mut enc = Vec::new();
        for u in &updates {
            u.encode(&mut enc);
        }
        finish_updates(&mut out, updates.len(), &enc);
        let p = decode_packet::<u32>(&out, 7).expect("decodes");
        assert_eq!(p.from, 3);
        assert_eq!(p.from_incarnation, 12);
        assert_eq!(p.message, message);
        assert_eq!(p.updates, updates);
        for cut in 0..out.len() {
            assert!(
                decode_packet::<u32>(&out[..cut], 7).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            decode_packet::<u32>(&out, 8),
            Err(PacketError::WrongCluster {
                expected: 8,
                got: 7
            })
        );
    }

    #[test]
    fn every_message_round_trips() {
        let updates = vec![
            Update::Alive {
                node: 1,
                incarnation: 0,
            },
            Update::Suspect {
                node: 2,
                incarnation: 300,
                by: 9,
            },
            Update::Down {
                node: u32::MAX,
                incarnation: u32::MAX,
                by: 0,
            },
            Update::Left {
                node: 5,
                incarnation: 1,
            },
        ];
        for m in [
            Message::Ping { seq: 1, target: 4 },
            Message::PingReq {
                seq: u32::MAX,
                target: 4,
            },
            Message::Ack { seq: 0 },
            Message::Nack { seq: 77 },
            Message::Gossip,
            Message::Announce { more: false },
            Message::Announce { more: true },
            Message::Feed { more: true },
            Message::Feed { more: false },
        ] {
            roundtrip(m.clone(), vec![]);
            roundtrip(m, updates.clone());
        }
    }

    #[test]
    fn ids_round_trip() {
        fn rt<N: NodeId>(n: N) {
            let mut out = Vec::new();
            n.encode(&mut out);
            let mut s = &out[..];
            assert_eq!(N::decode(&mut s).unwrap(), n);
            assert!(s.is_empty());
        }
        rt(0u64);
        rt(u64::MAX);
        rt(u128::MAX - 5);
        rt(String::from("node-a"));
        rt("10.0.0.1:7946".parse::<SocketAddr>().unwrap());
        rt("[::1]:7946".parse::<SocketAddr>().unwrap());
        fn longest<N: NodeId>(n: N) {
            let mut out = Vec::new();
            n.encode(&mut out);
            assert_eq!(out.len(), N::MAX_ENCODED_LEN, "{n:?}");
        }
        longest(u32::MAX);
        longest(u64::MAX);
        longest(u128::MAX);
        longest("x".repeat(MAX_ID_LEN));
        longest(
            "[ffff::ffff]:65535"
                .parse::<SocketAddr>()
                .expect("an address"),
        );
        let mut long = Vec::new();
        "x".repeat(MAX_ID_LEN + 1).encode(&mut long);
        assert_eq!(String::decode(&mut &long[..]), Err(DecodeError::NodeId));
    }

    #[test]
    fn overlong_varints_are_rejected() {
        // 2^64 encoded in 10 bytes: integer-encoding would wrap it.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03];
        assert_eq!(get_uvarint(&mut &bytes[..]), Err(DecodeError::Varint));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(get_uvarint(&mut &max[..]), Ok(u64::MAX));
        assert_eq!(get_uvarint(&mut &[0x80][..]), Err(DecodeError::Truncated));
        assert_eq!(
            get_uvarint(&mut &[0x81, 0x00][..]),
            Err(DecodeError::Varint),
            "padded"
        );
        assert_eq!(
            get_u32(&mut &[0x80, 0x80, 0x80, 0x80, 0x10][..]),
            Err(DecodeError::Varint)
        );
    }

    #[test]
    fn lying_update_count_does_not_allocate() {
        let mut out = Vec::new();
        encode_message(&mut out, 0, (&1u32, 0), &Message::<u32>::Gossip);
        put_uvarint(&mut out, u64::MAX);
        assert!(matches!(
            decode_packet::<u32>(&out, 0),
            Err(PacketError::Malformed(DecodeError::Truncated))
        ));
    }
}
