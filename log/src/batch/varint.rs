//! Kafka's record varints: zig-zag signed integers (`varint` for 32 bits, `varlong`
//! for 64) on top of the canonical unsigned LEB128 codec of the `unsigned-varint`
//! crate (Kafka protocol guide, "Record"; Kafka's `ByteUtils.readVarint`).
//!
//! Decoding accepts only the shortest encoding: a non-minimal varint (`[0x80, 0x00]`
//! for 0), one longer than 5 bytes (varint) or 10 bytes (varlong), or one whose value
//! overflows is an error, so every value has exactly one encoding on disk.

use bytes::{BufMut, BytesMut};
use unsigned_varint::{decode, encode};

/// Why a varint did not decode.
pub(crate) fn describe(e: decode::Error) -> &'static str {
    match e {
        decode::Error::Insufficient => "varint runs past the end of the record",
        decode::Error::Overflow => "varint too long or overflowing",
        decode::Error::NotMinimal => "varint not in its shortest encoding",
        _ => "bad varint",
    }
}

const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

const fn unzigzag32(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

const fn unzigzag64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Decodes a zig-zag `varint` (32 bits) from the start of `buf`: the value and the
/// bytes it took.
pub(crate) fn decode_varint(buf: &[u8]) -> Result<(i32, usize), decode::Error> {
    let (u, rest) = decode::u32(buf)?;
    let len = buf.len() - rest.len();
    reject_dropped_bits(buf, len, 5, 0x0f)?;
    Ok((unzigzag32(u), len))
}

/// Decodes a zig-zag `varlong` (64 bits) from the start of `buf`: the value and the
/// bytes it took.
pub(crate) fn decode_varlong(buf: &[u8]) -> Result<(i64, usize), decode::Error> {
    let (u, rest) = decode::u64(buf)?;
    let len = buf.len() - rest.len();
    reject_dropped_bits(buf, len, 10, 0x01)?;
    Ok((unzigzag64(u), len))
}

/// `unsigned-varint` 0.8 bounds the byte count but shifts the last byte of a
/// maximal-length encoding without checking it, silently dropping bits past the
/// type's width (`[0xff, 0xff, 0xff, 0xff, 0x1f]` decodes as `u32::MAX`). Refuse
/// those bits, so that every value has exactly one encoding.
fn reject_dropped_bits(
    buf: &[u8],
    len: usize,
    max_len: usize,
    last_max: u8,
) -> Result<(), decode::Error> {
    if len == max_len && buf[len - 1] > last_max {
        return Err(decode::Error::Overflow);
    }
    Ok(())
}

/// Appends a zig-zag `varint`.
pub(crate) fn put_varint(buf: &mut BytesMut, v: i32) {
    buf.put_slice(encode::u32(zigzag32(v), &mut encode::u32_buffer()));
}

/// Appends a zig-zag `varlong`.
pub(crate) fn put_varlong(buf: &mut BytesMut, v: i64) {
    buf.put_slice(encode::u64(zigzag64(v), &mut encode::u64_buffer()));
}

/// Encoded size of a zig-zag `varint`.
pub(crate) fn varint_len(v: i32) -> usize {
    encode::u32(zigzag32(v), &mut encode::u32_buffer()).len()
}

/// Encoded size of a zig-zag `varlong`.
pub(crate) fn varlong_len(v: i64) -> usize {
    encode::u64(zigzag64(v), &mut encode::u64_buffer()).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_kafka() {
        // Kafka protocol guide: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3.
        for (v, u) in [(0, 0), (-1, 1), (1, 2), (-2, 3), (i32::MAX, u32::MAX - 1)] {
            assert_eq!(zigzag32(v), u);
            assert_eq!(unzigzag32(u), v);
        }
        assert_eq!(unzigzag32(u32::MAX), i32::MIN);
        for v in [0, -1, 1, i64::MIN, i64::MAX, 1 << 40] {
            assert_eq!(unzigzag64(zigzag64(v)), v);
        }
    }

    #[test]
    fn round_trips_and_sizes() {
        for v in [0, 1, -1, 63, -64, 64, 300, -300, i32::MIN, i32::MAX] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            assert_eq!(decode_varint(&buf), Ok((v, buf.len())));
        }
        for v in [0, -1, i64::MIN, i64::MAX, 1 << 40] {
            let mut buf = BytesMut::new();
            put_varlong(&mut buf, v);
            assert_eq!(buf.len(), varlong_len(v));
            assert_eq!(decode_varlong(&buf), Ok((v, buf.len())));
        }
    }

    #[test]
    fn only_canonical_encodings_decode() {
        assert_eq!(decode_varint(&[0x80, 0x00]), Err(decode::Error::NotMinimal));
        assert_eq!(
            decode_varlong(&[0x81, 0x80, 0x00]),
            Err(decode::Error::NotMinimal)
        );
        assert_eq!(decode_varint(&[0x80]), Err(decode::Error::Insufficient));
        // Six bytes for a 32-bit varint, eleven for a varlong.
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x8f, 0x01]),
            Err(decode::Error::Overflow)
        );
        assert_eq!(decode_varlong(&[0xff; 11]), Err(decode::Error::Overflow));
        // Five bytes whose value passes 32 bits, ten whose value passes 64.
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(decode::Error::Overflow)
        );
        let mut long = [0xff; 10];
        long[9] = 0x02;
        assert_eq!(decode_varlong(&long), Err(decode::Error::Overflow));
        // The largest values still decode.
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Ok((i32::MIN, 5))
        );
        long[9] = 0x01;
        assert_eq!(decode_varlong(&long), Ok((i64::MIN, 10)));
    }
}
