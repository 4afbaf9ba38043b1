//! The checksummed frame every record on disk is written in, and the rule
//! that tells a torn write at the end of a file from corruption.
//!
//! ```text
//! offset  field     type
//!      0  len       u32 LE   bytes of payload
//!      4  len_inv   u32 LE   !len: a flipped length is caught, never read as a tear
//!      8  crc       u32 LE   CRC-32C (Castagnoli) of the payload
//!     12  payload   len bytes
//! ```
//!
//! A write that a crash interrupts leaves the file short (it ends inside the
//! frame) or leaves whole sectors of the frame unwritten, which read back
//! as zeros (the file grew but the page never reached the disk); etcd's WAL
//! calls the second a torn entry and checks it the same way. A frame that
//! is complete, has no zero sector and still fails its checks was written
//! and then damaged: corruption, never silently dropped.

/// Bytes before the payload.
pub(crate) const FRAME_HEADER: usize = 12;
/// The sector size torn writes are judged by (the smallest a disk writes).
const SECTOR: u64 = 512;
/// The fewest zero bytes inside a file that count as an unwritten sector.
const MIN_ZERO_RUN: usize = 8;

/// Appends one frame holding `payload` to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload lengths are bounded by the config");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at a position of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A valid frame: its payload and the position after it.
    Valid { payload: &'a [u8], end: usize },
    /// The end of the file.
    End,
    /// A write cut short by a crash: the file is to be cut here.
    Torn,
    /// Bytes that were written whole and are damaged.
    Corrupt(&'static str),
}

/// Reads the frame at `pos` of `file` (the whole file, from its start), of
/// at most `max_len` payload bytes.
pub(crate) fn read_frame(file: &[u8], pos: usize, max_len: u64) -> Frame<'_> {
    let rest = &file[pos..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < FRAME_HEADER {
        return Frame::Torn;
    }
    let word = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
    let (len, len_inv, crc) = (word(0), word(4), word(8));
    if len != !len_inv {
        return if has_zero_sector(file, pos, pos + FRAME_HEADER) {
            Frame::Torn
        } else {
            Frame::Corrupt("frame length and its complement disagree")
        };
    }
    if u64::from(len) > max_len {
        return Frame::Corrupt("frame longer than the configured maximum");
    }
    let end = FRAME_HEADER + len as usize;
    if rest.len() < end {
        // The length is intact (its complement agrees): the write was cut.
        return Frame::Torn;
    }
    let payload = &rest[FRAME_HEADER..end];
    if crc32c::crc32c(payload) != crc {
        // The header was written (its length checks out); judge the rest.
        return if has_zero_sector(file, pos + FRAME_HEADER, pos + end) {
            Frame::Torn
        } else {
            Frame::Corrupt("checksum mismatch")
        };
    }
    Frame::Valid {
        payload,
        end: pos + end,
    }
}

/// Whether some sector's share of `file[from..to]` is all zeros: what a
/// write that never reached the disk leaves in a file that grew. A share
/// shorter than [`MIN_ZERO_RUN`] counts only at the end of the file, so a
/// few zero bytes of an intact frame that happen to sit alone in a sector
/// (an index's high bytes) are not taken for a tear.
fn has_zero_sector(file: &[u8], from: usize, to: usize) -> bool {
    let mut start = from as u64;
    let to = to as u64;
    while start < to {
        let end = ((start / SECTOR + 1) * SECTOR).min(to);
        let share = &file[start as usize..end as usize];
        let long_enough = share.len() >= MIN_ZERO_RUN || end == file.len() as u64;
        if long_enough && share.iter().all(|&b| b == 0) {
            return true;
        }
        start = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_frame(&mut out, payload);
        out
    }

    #[test]
    fn valid_then_end() {
        let file = frame(b"hello");
        assert_eq!(
            read_frame(&file, 0, 100),
            Frame::Valid {
                payload: b"hello",
                end: file.len()
            }
        );
        assert_eq!(read_frame(&file, file.len(), 100), Frame::End);
    }

    #[test]
    fn short_is_torn() {
        let file = frame(b"hello");
        for cut in 1..file.len() {
            assert_eq!(read_frame(&file[..cut], 0, 100), Frame::Torn, "cut {cut}");
        }
    }

    #[test]
    fn flipped_bytes_are_corrupt() {
        let file = frame(b"hello");
        for at in 0..file.len() {
            let mut bad = file.clone();
            bad[at] ^= 0xff;
            assert!(
                matches!(read_frame(&bad, 0, 100), Frame::Corrupt(_)),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn zeroed_sector_is_torn() {
        let mut file = frame(&[7u8; 2000]);
        file[512..1024].fill(0);
        assert_eq!(read_frame(&file, 0, 4096), Frame::Torn);
        let zeros = vec![0u8; 40];
        assert_eq!(read_frame(&zeros, 0, 4096), Frame::Torn);
    }

    #[test]
    fn oversized_is_corrupt() {
        let file = frame(&[1u8; 50]);
        assert!(matches!(read_frame(&file, 0, 49), Frame::Corrupt(_)));
    }
}
