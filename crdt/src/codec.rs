//! Compact binary encodings of states, deltas and protocol messages: the traits
//! [`Encode`] and [`Decode`], their error [`DecodeError`], and the helpers this crate's
//! types are written with, for implementing them on your own types (a
//! [`NodeId`](crate::NodeId) of your own, a value type in an [`ORSet`](crate::ORSet)).
//!
//! Integers are unsigned LEB128 varints, read by the `unsigned-varint` crate's decoders,
//! which accept only the canonical (shortest) encoding; signed integers are zigzag on
//! top. Collections are a length then their elements, in the types' canonical (sorted)
//! order, so equal states encode to equal bytes. Decoding is defensive: a length is
//! checked against the bytes left before it sizes an allocation, and every error is a
//! [`DecodeError`], never a panic.

use std::collections::{BTreeMap, BTreeSet};

/// Malformed bytes from a peer or from disk ([`Decode::decode`]). No value was made;
/// the input slice may have been advanced part way, and nothing else changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    /// No value was made.
    #[error("input truncated")]
    Truncated,
    /// A varint is not the shortest encoding of its value (padded, over-long), or
    /// does not fit its type.
    /// No value was made.
    #[error("malformed varint")]
    Varint,
    /// A tag byte names no known variant.
    /// No value was made.
    #[error("unknown tag {0}")]
    Tag(u8),
    /// A string is not UTF-8.
    /// No value was made.
    #[error("invalid UTF-8")]
    Utf8,
    /// Elements of a set or keys of a map are not strictly increasing: not the
    /// canonical encoding (a duplicate would otherwise be silently merged).
    /// No value was made.
    #[error("elements out of order or duplicated")]
    Order,
    /// The value breaks an invariant of its type (a zero counter in a version vector,
    /// a dot the causal context does not cover...).
    /// No value was made.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
    /// Bytes remain after the value.
    /// No value was made.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// A value with a compact binary encoding.
pub trait Encode {
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A value that can be read back from [`Encode`]'s bytes.
pub trait Decode: Sized {
    /// Reads one value from the front of `input` and advances it.
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;

    /// Reads exactly one value: trailing bytes are an error.
    fn from_bytes(mut input: &[u8]) -> Result<Self, DecodeError> {
        let value = Self::decode(&mut input)?;
        if input.is_empty() {
            Ok(value)
        } else {
            Err(DecodeError::Trailing(input.len()))
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint (its shortest encoding).
pub fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

/// Reads an unsigned LEB128 varint. Only the shortest encoding of a value is accepted:
/// padded (`[0x81, 0x00]` for 1), over-long (more than 10 bytes) and overflowing
/// (a tenth byte above 1: past 64 bits) encodings are [`DecodeError::Varint`]; input
/// that ends inside the varint is [`DecodeError::Truncated`].
pub fn get_uvarint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    use unsigned_varint::decode::Error;
    let (v, rest) = unsigned_varint::decode::u64(input).map_err(|e| match e {
        Error::Insufficient => DecodeError::Truncated,
        _ => DecodeError::Varint,
    })?;
    // `unsigned-varint` 0.8 shifts a tenth byte into bit 63 without checking that it
    // fits: only 0 (refused above as padding) and 1 do.
    if input.len() - rest.len() == 10 && input[9] > 1 {
        return Err(DecodeError::Varint);
    }
    *input = rest;
    Ok(v)
}

/// Reads one byte.
pub fn get_u8(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (&b, rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    *input = rest;
    Ok(b)
}

/// Reads `n` bytes.
pub fn get_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Reads a collection length and checks it against the bytes left, assuming each
/// element takes at least `min_element_len` bytes: a lying length cannot size an
/// allocation.
pub fn get_len(input: &mut &[u8], min_element_len: usize) -> Result<usize, DecodeError> {
    let len = get_uvarint(input)?;
    let max = input.len() / min_element_len.max(1);
    if len > max as u64 {
        return Err(DecodeError::Truncated);
    }
    Ok(len as usize)
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                put_uvarint(out, u64::from(*self));
            }
        }
        impl Decode for $t {
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                <$t>::try_from(get_uvarint(input)?).map_err(|_| DecodeError::Varint)
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64);

impl Encode for u128 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl Decode for u128 {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let b = get_bytes(input, 16)?;
        Ok(u128::from_be_bytes(b.try_into().expect("16 bytes")))
    }
}

impl Encode for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        // Zig-zag, so small negative numbers stay short.
        put_uvarint(out, ((self << 1) ^ (self >> 63)) as u64);
    }
}
impl Decode for i64 {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let v = get_uvarint(input)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}
impl Decode for bool {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match get_u8(input)? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(DecodeError::Tag(t)),
        }
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().encode(out);
    }
}
impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        out.extend_from_slice(self.as_bytes());
    }
}
impl Decode for String {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 1)?;
        let b = get_bytes(input, len)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Utf8)
    }
}

impl Encode for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        out.extend_from_slice(self);
    }
}
impl Decode for Vec<u8> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 1)?;
        Ok(get_bytes(input, len)?.to_vec())
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
}
impl<T: Decode> Decode for Option<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match get_u8(input)? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(input)?)),
            t => Err(DecodeError::Tag(t)),
        }
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}
impl<A: Decode, B: Decode> Decode for (A, B) {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok((A::decode(input)?, B::decode(input)?))
    }
}

impl<T: Encode> Encode for BTreeSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        for v in self {
            v.encode(out);
        }
    }
}
impl<T: Decode + Ord> Decode for BTreeSet<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 1)?;
        let mut set = BTreeSet::new();
        for _ in 0..len {
            let v = T::decode(input)?;
            if set.last().is_some_and(|last| *last >= v) {
                return Err(DecodeError::Order);
            }
            set.insert(v);
        }
        Ok(set)
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
}
impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 2)?;
        let mut map = BTreeMap::new();
        for _ in 0..len {
            let k = K::decode(input)?;
            if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
                return Err(DecodeError::Order);
            }
            let v = V::decode(input)?;
            map.insert(k, v);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt<T: Encode + Decode + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes();
        assert_eq!(T::from_bytes(&bytes), Ok(v));
        for cut in 0..bytes.len() {
            assert!(T::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn values_round_trip_and_truncations_fail() {
        rt(0u64);
        rt(u64::MAX);
        rt(300u16);
        rt(u128::MAX);
        rt(-5i64);
        rt(i64::MIN);
        rt(String::from("héllo"));
        rt(vec![1u8, 2, 3]);
        rt(Some(7u32));
        rt((3u32, String::from("x")));
        rt(BTreeSet::from([1u32, 5, 9]));
        rt(BTreeMap::from([(1u32, 2u64), (3, 4)]));
    }

    #[test]
    fn non_canonical_and_lying_inputs_are_rejected() {
        // A set with a duplicate element.
        assert_eq!(
            BTreeSet::<u32>::from_bytes(&[2, 5, 5]),
            Err(DecodeError::Order)
        );
        // A map out of order.
        assert_eq!(
            BTreeMap::<u32, u32>::from_bytes(&[2, 5, 0, 4, 0]),
            Err(DecodeError::Order)
        );
        // A length far beyond the input.
        assert_eq!(
            Vec::<u8>::from_bytes(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(u8::from_bytes(&[0x80, 0x02]), Err(DecodeError::Varint));
        // Padded: 1 written in two bytes.
        assert_eq!(u64::from_bytes(&[0x81, 0x00]), Err(DecodeError::Varint));
        assert_eq!(
            u64::from_bytes(&[0x80, 0x80, 0x00]),
            Err(DecodeError::Varint)
        );
        assert_eq!(u64::from_bytes(&[1, 2]), Err(DecodeError::Trailing(1)));
        assert_eq!(String::from_bytes(&[1, 0xff]), Err(DecodeError::Utf8));
    }

    #[test]
    fn only_the_shortest_varint_of_a_value_decodes() {
        let ff9 = [0xff; 9];
        // u64::MAX: nine continuation bytes and a last byte of 1.
        let max = [&ff9[..], &[0x01]].concat();
        assert_eq!(u64::from_bytes(&max), Ok(u64::MAX));
        assert_eq!(u64::MAX.to_bytes(), max);
        // A tenth byte above 1 holds bits past 64: an overflow, not a wrap.
        for last in [0x02, 0x03, 0x7f] {
            let bytes = [&ff9[..], &[last]].concat();
            assert_eq!(
                u64::from_bytes(&bytes),
                Err(DecodeError::Varint),
                "{last:#x}"
            );
        }
        // Eleven bytes: over-long.
        let eleven = [&[0x80; 10][..], &[0x01]].concat();
        assert_eq!(u64::from_bytes(&eleven), Err(DecodeError::Varint));
        // Padded encodings of 0 and of 2^63 (ten bytes with a zero last byte).
        assert_eq!(u64::from_bytes(&[0x80, 0x00]), Err(DecodeError::Varint));
        let padded = [&[0x80; 9][..], &[0x00]].concat();
        assert_eq!(u64::from_bytes(&padded), Err(DecodeError::Varint));
        // Ending inside a varint is a truncation.
        assert_eq!(u64::from_bytes(&[0x80]), Err(DecodeError::Truncated));
        assert_eq!(u64::from_bytes(&ff9), Err(DecodeError::Truncated));
        // Narrow types: canonical but too large, and padded to their width.
        assert_eq!(
            u32::from_bytes(&(1u64 << 32).to_bytes()),
            Err(DecodeError::Varint)
        );
        assert_eq!(
            u32::from_bytes(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok(u32::MAX)
        );
        assert_eq!(
            u32::from_bytes(&[0x81, 0x80, 0x80, 0x80, 0x00]),
            Err(DecodeError::Varint)
        );
        assert_eq!(
            u16::from_bytes(&70_000u64.to_bytes()),
            Err(DecodeError::Varint)
        );
        // Zigzag on top: the extremes round-trip, and -1 is one byte.
        assert_eq!((-1i64).to_bytes(), [0x01]);
        assert_eq!(i64::from_bytes(&i64::MAX.to_bytes()), Ok(i64::MAX));
        assert_eq!(i64::from_bytes(&i64::MIN.to_bytes()), Ok(i64::MIN));
        // Every value's encoding round-trips and is the only one.
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX - 1,
        ] {
            assert_eq!(u64::from_bytes(&v.to_bytes()), Ok(v));
        }
    }
}
