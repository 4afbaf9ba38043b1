//! The binary format of [`Message`] and [`Record`].
//!
//! One tag byte, then the fields in order: transaction ids as 8-byte
//! big-endian integers, enums as one byte, node ids through [`WireId`], and
//! participant lists as a 2-byte big-endian count (`1..=`[`MAX_PARTICIPANTS`])
//! followed by the ids in strictly ascending order. Every value has exactly
//! one encoding (fixed widths, no optional fields, sorted lists), so
//! `decode(encode(x)) == x` (for every `x` whose ids fit their encoding:
//! `String` ids up to 255 bytes; longer ones are refused, never misread)
//! and `encode(decode(b)) == b` for every accepted `b`. Decoding refuses trailing bytes, unknown tags, empty, oversized,
//! unsorted or duplicated lists: a peer or a damaged disk gets a
//! [`DecodeError`], never a panic or an allocation beyond the input's size.
//!
//! The format carries no checksum and no length: the transport frames
//! messages, and the application's log frames (and checksums) records, so a
//! torn tail is caught there.

use super::message::{Answer, Message, Outcome, Record, TxId, Vote};

/// The most participants a list on the wire may hold.
pub const MAX_PARTICIPANTS: usize = 1024;

/// Why bytes are not a valid [`Message`] or [`Record`]. Nothing was
/// decoded; decoding has no other effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a value.
    #[error("truncated input")]
    Truncated,
    /// Bytes follow a complete value.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum the tag selects.
        what: &'static str,
        /// The tag byte.
        tag: u8,
    },
    /// A participant list is empty or longer than [`MAX_PARTICIPANTS`].
    #[error("participant count {0} is not in 1..={MAX_PARTICIPANTS}")]
    ParticipantCount(usize),
    /// A participant list is not strictly ascending (unsorted or with
    /// duplicates): not the canonical encoding.
    #[error("participant list not strictly ascending")]
    NotAscending,
    /// A node id is invalid (a string id that is not UTF-8).
    #[error("invalid node id")]
    BadId,
}

/// A node id that has a wire encoding, implemented for `u16`, `u32`, `u64`
/// (fixed-width big-endian) and `String` (one length byte, at most 255
/// bytes of UTF-8). Implement it for your own id type to use the codec;
/// the encoding must be canonical (one encoding per value) and decoding
/// must consume exactly what encoding wrote.
pub trait WireId: Sized {
    /// Appends the id.
    fn encode_id(&self, out: &mut Vec<u8>);
    /// Reads one id from the front of `input`, advancing it.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::BadId`].
    fn decode_id(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_array<const K: usize>(input: &mut &[u8]) -> Result<[u8; K], DecodeError> {
    let bytes = take(input, K)?;
    let mut out = [0; K];
    out.copy_from_slice(bytes);
    Ok(out)
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl WireId for $t {
            fn encode_id(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode_id(input: &mut &[u8]) -> Result<Self, DecodeError> {
                Ok(<$t>::from_be_bytes(take_array(input)?))
            }
        }
    )*};
}
wire_int!(u16, u32, u64);

impl WireId for String {
    /// Strings longer than 255 bytes encode into bytes that decode refuses
    /// with [`DecodeError::BadId`]; keep ids short.
    fn encode_id(&self, out: &mut Vec<u8>) {
        match u8::try_from(self.len()) {
            Ok(len) => {
                out.push(len);
                out.extend_from_slice(self.as_bytes());
            }
            // Not the saturated length and every byte: the decoder would
            // stop after 255 of them and read the rest as further fields,
            // possibly a different valid message. 255 bytes of 0xFF are
            // never UTF-8, so the id itself is refused.
            Err(_) => {
                out.push(u8::MAX);
                out.extend_from_slice(&[0xFF; 255]);
            }
        }
    }
    fn decode_id(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let [len] = take_array(input)?;
        let bytes = take(input, usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadId)
    }
}

fn put_tx(out: &mut Vec<u8>, tx: TxId) {
    out.extend_from_slice(&tx.0.to_be_bytes());
}

fn get_tx(input: &mut &[u8]) -> Result<TxId, DecodeError> {
    Ok(TxId(u64::from_be_bytes(take_array(input)?)))
}

fn get_u8(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let [b] = take_array(input)?;
    Ok(b)
}

/// Lists longer than `u16::MAX` saturate the count, which decoding refuses
/// (the state machines never build lists past [`MAX_PARTICIPANTS`]).
fn put_list<N: WireId>(out: &mut Vec<u8>, list: &[N]) {
    let count = u16::try_from(list.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for id in list {
        id.encode_id(out);
    }
}

fn get_list<N: WireId + Ord>(input: &mut &[u8]) -> Result<Vec<N>, DecodeError> {
    let count = usize::from(u16::from_be_bytes(take_array(input)?));
    if count == 0 || count > MAX_PARTICIPANTS {
        return Err(DecodeError::ParticipantCount(count));
    }
    // Every id takes at least one byte: the input bounds the allocation.
    if input.len() < count {
        return Err(DecodeError::Truncated);
    }
    let mut list: Vec<N> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = N::decode_id(input)?;
        if list.last().is_some_and(|last| *last >= id) {
            return Err(DecodeError::NotAscending);
        }
        list.push(id);
    }
    Ok(list)
}

fn finish<T>(value: T, input: &[u8]) -> Result<T, DecodeError> {
    if input.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::TrailingBytes(input.len()))
    }
}

impl Vote {
    fn to_byte(self) -> u8 {
        match self {
            Vote::Yes => 0,
            Vote::No => 1,
            Vote::ReadOnly => 2,
        }
    }
    fn from_byte(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            0 => Ok(Vote::Yes),
            1 => Ok(Vote::No),
            2 => Ok(Vote::ReadOnly),
            _ => Err(DecodeError::UnknownTag { what: "vote", tag }),
        }
    }
}

impl Outcome {
    fn to_byte(self) -> u8 {
        match self {
            Outcome::Commit => 0,
            Outcome::Abort => 1,
        }
    }
    fn from_byte(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            0 => Ok(Outcome::Commit),
            1 => Ok(Outcome::Abort),
            _ => Err(DecodeError::UnknownTag {
                what: "outcome",
                tag,
            }),
        }
    }
}

impl Answer {
    fn to_byte(self) -> u8 {
        match self {
            Answer::Commit => 0,
            Answer::Abort => 1,
            Answer::Unknown => 2,
        }
    }
    fn from_byte(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            0 => Ok(Answer::Commit),
            1 => Ok(Answer::Abort),
            2 => Ok(Answer::Unknown),
            _ => Err(DecodeError::UnknownTag {
                what: "answer",
                tag,
            }),
        }
    }
}

impl<N: WireId + Ord> Message<N> {
    /// Appends the message's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Prepare { tx, participants } => {
                out.push(1);
                put_tx(out, *tx);
                put_list(out, participants);
            }
            Message::CommitOnePhase { tx } => {
                out.push(2);
                put_tx(out, *tx);
            }
            Message::Vote { tx, vote } => {
                out.push(3);
                put_tx(out, *tx);
                out.push(vote.to_byte());
            }
            Message::Decision { tx, outcome } => {
                out.push(4);
                put_tx(out, *tx);
                out.push(outcome.to_byte());
            }
            Message::Ack { tx } => {
                out.push(5);
                put_tx(out, *tx);
            }
            Message::DecisionRequest { coordinator, tx } => {
                out.push(6);
                coordinator.encode_id(out);
                put_tx(out, *tx);
            }
            Message::DecisionReply {
                coordinator,
                tx,
                answer,
            } => {
                out.push(7);
                coordinator.encode_id(out);
                put_tx(out, *tx);
                out.push(answer.to_byte());
            }
        }
    }

    /// Decodes exactly one message from `bytes`.
    ///
    /// # Errors
    /// A [`DecodeError`] if `bytes` is not exactly one canonical message.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut input = bytes;
        let input = &mut input;
        let message = match get_u8(input)? {
            1 => Message::Prepare {
                tx: get_tx(input)?,
                participants: get_list(input)?,
            },
            2 => Message::CommitOnePhase { tx: get_tx(input)? },
            3 => Message::Vote {
                tx: get_tx(input)?,
                vote: Vote::from_byte(get_u8(input)?)?,
            },
            4 => Message::Decision {
                tx: get_tx(input)?,
                outcome: Outcome::from_byte(get_u8(input)?)?,
            },
            5 => Message::Ack { tx: get_tx(input)? },
            6 => Message::DecisionRequest {
                coordinator: N::decode_id(input)?,
                tx: get_tx(input)?,
            },
            7 => Message::DecisionReply {
                coordinator: N::decode_id(input)?,
                tx: get_tx(input)?,
                answer: Answer::from_byte(get_u8(input)?)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "message",
                    tag,
                });
            }
        };
        finish(message, input)
    }
}

impl<N: WireId + Ord> Record<N> {
    /// Appends the record's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Commit { tx, participants } => {
                out.push(1);
                put_tx(out, *tx);
                put_list(out, participants);
            }
            Record::End { tx } => {
                out.push(2);
                put_tx(out, *tx);
            }
            Record::Prepared {
                coordinator,
                tx,
                participants,
            } => {
                out.push(3);
                coordinator.encode_id(out);
                put_tx(out, *tx);
                put_list(out, participants);
            }
            Record::Committed { coordinator, tx } => {
                out.push(4);
                coordinator.encode_id(out);
                put_tx(out, *tx);
            }
            Record::Aborted { coordinator, tx } => {
                out.push(5);
                coordinator.encode_id(out);
                put_tx(out, *tx);
            }
        }
    }

    /// Decodes exactly one record from `bytes`.
    ///
    /// # Errors
    /// A [`DecodeError`] if `bytes` is not exactly one canonical record.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut input = bytes;
        let input = &mut input;
        let record = match get_u8(input)? {
            1 => Record::Commit {
                tx: get_tx(input)?,
                participants: get_list(input)?,
            },
            2 => Record::End { tx: get_tx(input)? },
            3 => Record::Prepared {
                coordinator: N::decode_id(input)?,
                tx: get_tx(input)?,
                participants: get_list(input)?,
            },
            4 => Record::Committed {
                coordinator: N::decode_id(input)?,
                tx: get_tx(input)?,
            },
            5 => Record::Aborted {
                coordinator: N::decode_id(input)?,
                tx: get_tx(input)?,
            },
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "record",
                    tag,
                });
            }
        };
        finish(record, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_noncanonical_lists() {
        let mut b = Vec::new();
        Message::Prepare {
            tx: TxId(1),
            participants: vec![2u32, 1],
        }
        .encode(&mut b);
        assert_eq!(Message::<u32>::decode(&b), Err(DecodeError::NotAscending));
        let mut b = Vec::new();
        Message::Prepare {
            tx: TxId(1),
            participants: vec![1u32, 1],
        }
        .encode(&mut b);
        assert_eq!(Message::<u32>::decode(&b), Err(DecodeError::NotAscending));
        let b = [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(
            Message::<u32>::decode(&b),
            Err(DecodeError::ParticipantCount(0))
        );
        // A huge count with a short input allocates nothing.
        let b = [1, 0, 0, 0, 0, 0, 0, 0, 1, 0x03, 0xff, 0];
        assert_eq!(Message::<u32>::decode(&b), Err(DecodeError::Truncated));
    }

    #[test]
    fn refuses_trailing_and_unknown() {
        let mut b = Vec::new();
        Message::<u64>::Ack { tx: TxId(9) }.encode(&mut b);
        b.push(0);
        assert_eq!(
            Message::<u64>::decode(&b),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            Message::<u64>::decode(&[0]),
            Err(DecodeError::UnknownTag { .. })
        ));
        assert_eq!(Record::<u64>::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            Record::<String>::decode(&[4, 1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadId)
        );
    }
}
