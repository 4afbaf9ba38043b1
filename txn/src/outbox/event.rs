//! Events as the relay reads them back, their headers' byte encoding, and the
//! stable key-to-partition hash.

use crate::WallTime;

/// Most headers one event may carry.
pub const MAX_HEADERS: usize = 64;
/// Longest header name, in bytes.
pub const MAX_HEADER_NAME: usize = 256;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE: usize = 64 * 1024;

/// An event's identity: assigned by the outbox table when the event is
/// enqueued, unique for the life of that table and never reused (SQLite's
/// `AUTOINCREMENT`, PostgreSQL's identity column), even after retention has
/// deleted the row. The inbox deduplicates by it, so a consumer that reads
/// several outboxes keeps one inbox `consumer` name per outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EventId(pub u64);

impl core::fmt::Display for EventId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One header: a name and opaque bytes.
pub type Header = (String, Vec<u8>);

/// An event read back from the outbox table, as handed to a
/// [`Publisher`](super::Publisher).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The outbox-assigned identity (deduplicate by it).
    pub id: EventId,
    /// The ordering key: events of one key are published in `seq` order.
    pub key: Vec<u8>,
    /// The key's gapless sequence number, from 1, in the commit order of the
    /// transactions that enqueued them.
    pub seq: u64,
    /// The partition the key hashes to ([`partition_of`]).
    pub partition: u32,
    /// The caller's bytes.
    pub payload: Vec<u8>,
    /// The caller's headers, in the order given.
    pub headers: Vec<Header>,
    /// The `now` passed to `enqueue`.
    pub created_at: WallTime,
    /// Failed publish attempts so far (0 on the first try).
    pub attempts: u32,
}

/// The partition of `key` among `partitions`: CRC-32C (Castagnoli) of the key
/// bytes, modulo `partitions`. This is part of the on-disk contract (rows carry
/// their partition), so it never changes between versions or platforms; the
/// partition count is fixed when the outbox is migrated and checked on every
/// open. `partitions` of 0 is treated as 1.
///
/// ```
/// use dsys_txn::outbox::partition_of;
/// assert_eq!(partition_of(b"order-42", 16), partition_of(b"order-42", 16));
/// assert!(partition_of(b"order-42", 16) < 16);
/// ```
pub fn partition_of(key: &[u8], partitions: u32) -> u32 {
    crc32c::crc32c(key) % partitions.max(1)
}

/// Headers read back from disk that do not decode: the row was written by
/// something else or the bytes were damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderDecodeError {
    /// The bytes end inside a field.
    #[error("headers truncated")]
    Truncated,
    /// A count or length is over its bound.
    #[error("header {what} {len} exceeds the limit {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The length read.
        len: usize,
        /// Its bound.
        max: usize,
    },
    /// A header name is not UTF-8.
    #[error("header name is not UTF-8")]
    NotUtf8,
    /// Bytes follow the last header.
    #[error("{0} trailing bytes after the headers")]
    Trailing(usize),
}

/// Checks `headers` against the bounds; `Err` names the first offending field.
pub(crate) fn check_headers(headers: &[Header]) -> Result<(), HeaderDecodeError> {
    if headers.len() > MAX_HEADERS {
        return Err(HeaderDecodeError::TooLong {
            what: "count",
            len: headers.len(),
            max: MAX_HEADERS,
        });
    }
    for (name, value) in headers {
        if name.len() > MAX_HEADER_NAME {
            return Err(HeaderDecodeError::TooLong {
                what: "name",
                len: name.len(),
                max: MAX_HEADER_NAME,
            });
        }
        if value.len() > MAX_HEADER_VALUE {
            return Err(HeaderDecodeError::TooLong {
                what: "value",
                len: value.len(),
                max: MAX_HEADER_VALUE,
            });
        }
    }
    Ok(())
}

/// `u32` count, then per header a `u32` name length, the name, a `u32` value
/// length and the value (big-endian). Callers check the bounds first.
pub(crate) fn encode_headers(headers: &[Header]) -> Vec<u8> {
    if headers.is_empty() {
        return Vec::new();
    }
    let size: usize = headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    // The casts hold: check_headers bounds every length far below u32::MAX.
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// The inverse of [`encode_headers`]; strict (bounded lengths, no trailing
/// bytes), never allocating more than the input's length.
pub(crate) fn decode_headers(mut bytes: &[u8]) -> Result<Vec<Header>, HeaderDecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], HeaderDecodeError> {
        if bytes.len() < n {
            return Err(HeaderDecodeError::Truncated);
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Ok(head)
    }
    fn len(bytes: &mut &[u8], what: &'static str, max: usize) -> Result<usize, HeaderDecodeError> {
        let raw = take(bytes, 4)?;
        let n = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        if n > max {
            return Err(HeaderDecodeError::TooLong { what, len: n, max });
        }
        Ok(n)
    }
    let count = len(&mut bytes, "count", MAX_HEADERS)?;
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let n = len(&mut bytes, "name", MAX_HEADER_NAME)?;
        let name = core::str::from_utf8(take(&mut bytes, n)?)
            .map_err(|_| HeaderDecodeError::NotUtf8)?
            .to_owned();
        let n = len(&mut bytes, "value", MAX_HEADER_VALUE)?;
        headers.push((name, take(&mut bytes, n)?.to_vec()));
    }
    if !bytes.is_empty() {
        return Err(HeaderDecodeError::Trailing(bytes.len()));
    }
    Ok(headers)
}

/// Wall time as the signed 64-bit integer both databases store, saturating in
/// the year 2262.
pub(crate) fn time_to_db(t: WallTime) -> i64 {
    i64::try_from(t.as_nanos()).unwrap_or(i64::MAX)
}

/// The inverse of [`time_to_db`]; a negative value (not written by us) reads
/// as the epoch.
pub(crate) fn time_from_db(v: i64) -> WallTime {
    WallTime::from_nanos(u64::try_from(v).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn headers_round_trip(h in proptest::collection::vec(("[a-z-]{0,20}", proptest::collection::vec(any::<u8>(), 0..40)), 0..8)) {
            check_headers(&h).unwrap();
            prop_assert_eq!(decode_headers(&encode_headers(&h)).unwrap(), h);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_headers(&bytes);
        }
    }

    #[test]
    fn decode_rejects_damage() {
        let h = vec![("a".to_owned(), b"xyz".to_vec())];
        let enc = encode_headers(&h);
        assert_eq!(
            decode_headers(&enc[..enc.len() - 1]),
            Err(HeaderDecodeError::Truncated)
        );
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(decode_headers(&long), Err(HeaderDecodeError::Trailing(1)));
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_headers(&huge),
            Err(HeaderDecodeError::TooLong { what: "count", .. })
        ));
    }

    #[test]
    fn partition_hash_is_stable() {
        // Pinned values: rows on disk carry their partition, so this must not change.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(partition_of(b"123456789", 16), 0xe306_9283 % 16);
        assert_eq!(partition_of(b"k", 0), 0);
    }
}
