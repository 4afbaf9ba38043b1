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
//! Integers are LEB128 varints, decoded by the `unsigned-varint` crate in their canonical
//! (shortest) form only, so a packet for `u32` ids with a few
//! updates is a few dozen bytes. Every packet carries the cluster id: packets from another
//! cluster are rejected before anything else is read ([`PacketError::WrongCluster`]).
//! The sender's incarnation in the header makes every packet a small piece of news in
//! itself: "`from` is alive at `from_incarnation`" (as foca does), so a new member is
//! known to everyone it talks to, and a missed refutation is repaired by the next packet.

use super::id::NodeId;

const MAGIC: u8 = 0xD5;
const VERSION: u8 = 1;

/// A malformed packet or identity. The packet is dropped; no state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet ended in the middle of a field.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("packet truncated")]
    Truncated,
    /// A varint is longer than its type allows, its value does not fit, or it is not in
    /// its shortest (canonical) form.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("malformed varint")]
    Varint,
    /// The first byte is not the dsys-detect magic: not one of our packets.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("bad magic byte {0:#04x}")]
    Magic(u8),
    /// A protocol version this build does not speak.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("unsupported version {0}")]
    Version(u8),
    /// Unknown message kind.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// A flag byte other than 0 or 1.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("bad flag byte {0}")]
    Flag(u8),
    /// Unknown update tag.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("unknown update tag {0}")]
    UpdateTag(u8),
    /// An identity's bytes are invalid for its type (bad UTF-8, too long, bad tag).
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("invalid node id")]
    NodeId,
    /// Bytes remain after the last update.
    ///
    /// State: nothing changed (a member drops the packet and counts it as `malformed`).
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Why a received packet was dropped. Only the drop's counter in
/// [`SwimCounters`](crate::SwimCounters) changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The bytes are not a well-formed packet.
    ///
    /// State: nothing changed but the count in
    /// [`SwimCounters::malformed`](crate::SwimCounters::malformed).
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
    /// The packet belongs to another cluster (a misconfigured or foreign node).
    ///
    /// State: nothing changed but the count in
    /// [`SwimCounters::wrong_cluster`](crate::SwimCounters::wrong_cluster).
    #[error("packet from cluster {got}, this node is in cluster {expected}")]
    WrongCluster {
        /// Our cluster id.
        expected: u64,
        /// The id in the packet.
        got: u64,
    },
    /// The packet claims to come from this node's own identity.
    ///
    /// State: nothing changed but the count in
    /// [`SwimCounters::from_self`](crate::SwimCounters::from_self).
    #[error("packet claims to come from this node")]
    FromSelf,
    /// This node has left the cluster and no longer takes part.
    ///
    /// State: nothing changed but the count in
    /// [`SwimCounters::after_leave`](crate::SwimCounters::after_leave).
    #[error("this node has left the cluster")]
    Left,
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

fn varint_error(e: unsigned_varint::decode::Error) -> DecodeError {
    match e {
        unsigned_varint::decode::Error::Insufficient => DecodeError::Truncated,
        // Overflow, NotMinimal, and whatever a later version adds.
        _ => DecodeError::Varint,
    }
}

/// One `u64` varint, canonical only: `unsigned-varint` refuses padding (`[0x81, 0x00]`)
/// and more than 10 bytes. Its 0.8 decoder drops the bits of a 10th byte above 2⁶⁴
/// without an error, so that byte is checked here: every `u64` has exactly one
/// accepted encoding.
pub(crate) fn get_uvarint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let (v, rest) = unsigned_varint::decode::u64(input).map_err(varint_error)?;
    let len = input.len() - rest.len();
    if len == 10 && input[9] > 0x01 {
        return Err(DecodeError::Varint);
    }
    *input = rest;
    Ok(v)
}

/// One `u32` varint, canonical only; as [`get_uvarint`], a 5th byte carrying bits above
/// 2³² (which `unsigned-varint` 0.8 drops) is refused.
pub(crate) fn get_u32(input: &mut &[u8]) -> Result<u32, DecodeError> {
    let (v, rest) = unsigned_varint::decode::u32(input).map_err(varint_error)?;
    let len = input.len() - rest.len();
    if len == 5 && input[4] > 0x0f {
        return Err(DecodeError::Varint);
    }
    *input = rest;
    Ok(v)
}

pub(crate) fn get_u8(input: &mut &[u8]) -> Result<u8, DecodeError> {
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

pub(crate) fn get_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
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
///
/// The wire format: a packet is a header, one protocol message and the piggybacked
/// membership updates (SWIM §4.1, "infection-style dissemination").
///
/// ```text
/// packet   = magic:u8 (0xD5) version:u8 (1) cluster_id:uvarint kind:u8 from:N
///            from_incarnation:uvarint message-body updates
/// Ping     = seq:uvarint target:N
/// PingReq  = seq:uvarint target:N
/// Ack      = seq:uvarint
/// Nack     = seq:uvarint
/// Gossip   = (no body)
/// Announce = more:u8 (0 = last chunk)    updates = the sender's whole view
/// Feed     = more:u8 (0 = last chunk)    updates = the answerer's whole view
/// updates  = count:uvarint update*
/// update   = tag:u8 node:N incarnation:uvarint [by:N for Suspect and Down]
/// ```
///
/// Integers are canonical LEB128 varints; `N` is the id's [`IdCodec`](crate::IdCodec)
/// encoding. The cluster id is checked before anything after it is read.
///
/// # Errors
///
/// [`PacketError::WrongCluster`] or [`PacketError::Malformed`]; nothing changed (this
/// function holds no state).
pub fn inspect_packet<N: NodeId>(payload: &[u8], cluster_id: u64) -> Result<N, PacketError> {
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
    fn overlong_varints_are_rejected() {
        // 2^64 encoded in 10 bytes: unsigned-varint 0.8 alone would wrap it.
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
        // Eleven bytes, even of a value that fits.
        let eleven = [
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ];
        assert_eq!(get_uvarint(&mut &eleven[..]), Err(DecodeError::Varint));
        // u32::MAX in 5 bytes is canonical; one bit more is not a u32.
        let u32_max = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(get_u32(&mut &u32_max[..]), Ok(u32::MAX));
        assert_eq!(
            get_u32(&mut &[0xff, 0xff, 0xff, 0xff, 0x1f][..]),
            Err(DecodeError::Varint)
        );
        assert_eq!(
            get_u32(&mut &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..]),
            Err(DecodeError::Varint)
        );
    }

    /// Every value has one accepted encoding: a zero-padded (non-minimal) varint is
    /// refused at every width, for both decoders, and the cursor does not move.
    #[test]
    fn non_minimal_varints_are_rejected() {
        for (value, width) in [
            (0u64, 2),
            (1, 2),
            (127, 3),
            (300, 4),
            (u64::from(u32::MAX), 6),
        ] {
            let mut canonical = Vec::new();
            put_uvarint(&mut canonical, value);
            let mut padded = canonical.clone();
            while padded.len() < width {
                let last = padded.len() - 1;
                padded[last] |= 0x80;
                padded.push(0x00);
            }
            let mut cursor = &padded[..];
            assert_eq!(
                get_uvarint(&mut cursor),
                Err(DecodeError::Varint),
                "{padded:x?}"
            );
            assert_eq!(cursor.len(), padded.len(), "the cursor stays put");
            if padded.len() <= 5 {
                assert_eq!(
                    get_u32(&mut &padded[..]),
                    Err(DecodeError::Varint),
                    "{padded:x?}"
                );
            }
            assert_eq!(get_uvarint(&mut &canonical[..]), Ok(value));
        }
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
