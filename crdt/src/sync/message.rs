//! The protocol's messages and their wire form.

use crate::codec::{Decode, DecodeError, Encode, get_u8, get_uvarint, put_uvarint};

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SyncMessage<S> {
    /// The join of the sender's deltas from the receiver's last acknowledgement up to
    /// `seq` (exclusive). The receiver acknowledges `(incarnation, seq)`.
    Delta {
        /// The sender's incarnation ([`Replica::incarnation`](crate::Replica::incarnation)).
        incarnation: u64,
        /// The sender's sequence counter after these deltas.
        seq: u64,
        /// The delta-interval.
        delta: S,
    },
    /// The sender's whole state, for a receiver whose missing deltas the sender no
    /// longer buffers (or a new peer, or any peer after a restart). The receiver
    /// acknowledges `(incarnation, seq)`.
    State {
        /// The sender's incarnation ([`Replica::incarnation`](crate::Replica::incarnation)).
        incarnation: u64,
        /// The sender's sequence counter.
        seq: u64,
        /// The state.
        state: S,
    },
    /// "I have everything your incarnation `incarnation` sent before `seq`."
    Ack {
        /// The incarnation of the acknowledged message.
        incarnation: u64,
        /// The acknowledged sequence number.
        seq: u64,
    },
}

/// Wire form: a tag, the incarnation if not 0, the sequence number (varints), then the
/// delta or state. Tags 1, 2, 3 (delta, state, ack) are incarnation 0, the form every
/// replica that never restarted sends, so incarnations cost no byte until a restart;
/// tags 4, 5, 6 are the same messages followed by an incarnation of at least 1.
impl<S: Encode> Encode for SyncMessage<S> {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, incarnation, seq) = match self {
            SyncMessage::Delta {
                incarnation, seq, ..
            } => (1, *incarnation, *seq),
            SyncMessage::State {
                incarnation, seq, ..
            } => (2, *incarnation, *seq),
            SyncMessage::Ack { incarnation, seq } => (3, *incarnation, *seq),
        };
        if incarnation == 0 {
            out.push(tag);
        } else {
            out.push(tag + INCARNATION_TAGS);
            put_uvarint(out, incarnation);
        }
        put_uvarint(out, seq);
        match self {
            SyncMessage::Delta { delta, .. } => delta.encode(out),
            SyncMessage::State { state, .. } => state.encode(out),
            SyncMessage::Ack { .. } => {}
        }
    }
}

/// Added to a message's tag when an incarnation follows it.
const INCARNATION_TAGS: u8 = 3;

impl<S: Decode> Decode for SyncMessage<S> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let tag = get_u8(input)?;
        let (kind, incarnation) = match tag {
            1..=3 => (tag, 0),
            4..=6 => match get_uvarint(input)? {
                // One encoding per message: incarnation 0 has the short form.
                0 => return Err(DecodeError::Invalid("incarnation 0 in the long form")),
                incarnation => (tag - INCARNATION_TAGS, incarnation),
            },
            t => return Err(DecodeError::Tag(t)),
        };
        let seq = get_uvarint(input)?;
        Ok(match kind {
            1 => SyncMessage::Delta {
                incarnation,
                seq,
                delta: S::decode(input)?,
            },
            2 => SyncMessage::State {
                incarnation,
                seq,
                state: S::decode(input)?,
            },
            _ => SyncMessage::Ack { incarnation, seq },
        })
    }
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<N, S> {
    /// The peer it goes to.
    pub to: N,
    /// What to send; [`Encode::to_bytes`] gives its wire form.
    pub message: SyncMessage<S>,
}
