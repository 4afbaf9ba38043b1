//! Kafka's sparse segment indexes, in Kafka's file layouts.
//!
//! - `.index` (`OffsetIndex`): 8-byte entries `relativeOffset int32, position int32`,
//!   big-endian. An entry `(o, p)` says the batch whose last offset is `base + o`
//!   starts at byte `p` of the `.log` file. Entries are added every
//!   `index.interval.bytes` of appended data.
//! - `.timeindex` (`TimeIndex`): 12-byte entries `timestamp int64, relativeOffset
//!   int32`. An entry `(t, o)` says the largest timestamp in the segment up to offset
//!   `base + o` is `t`; timestamps strictly increase from entry to entry.
//!
//! Kafka preallocates index files and trims them when a segment is closed; this crate
//! writes exactly the entries, which Kafka reads the same way.

use crate::Timestamp;

/// Bytes per `.index` entry.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_ENTRY_LEN: usize = 12;

/// Why index bytes cannot be used. The log rebuilds the index from the segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The file length is not a multiple of the entry size. Nothing changed; the log
    /// rebuilds the index.
    #[error("index length {len} is not a multiple of {entry}")]
    PartialEntry {
        /// File length.
        len: usize,
        /// Entry size.
        entry: usize,
    },
    /// Entries go backwards (offsets, positions or timestamps). Nothing changed; the
    /// log rebuilds the index.
    #[error("index entry {0} is out of order")]
    OutOfOrder(usize),
    /// An entry points past the end of the segment. Nothing changed; the log rebuilds
    /// the index.
    #[error("index entry {0} points past the end of the segment")]
    PastEnd(usize),
}

/// A position in a segment: the batch whose last offset is `base + relative_offset`
/// starts at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset relative to the segment's base offset.
    pub relative_offset: u32,
    /// Byte position in the `.log` file.
    pub position: u32,
}

/// A timestamp mark: the largest timestamp up to `base + relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp so far.
    pub timestamp: Timestamp,
    /// Offset relative to the segment's base offset.
    pub relative_offset: u32,
}

/// The offset index of one segment, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

impl OffsetIndex {
    /// Decodes an `.index` file, checking that offsets and positions strictly increase
    /// and that positions are inside a segment of `segment_len` bytes.
    pub fn decode(bytes: &[u8], segment_len: u64) -> Result<Self, IndexError> {
        if bytes.len() % OFFSET_ENTRY_LEN != 0 {
            return Err(IndexError::PartialEntry {
                len: bytes.len(),
                entry: OFFSET_ENTRY_LEN,
            });
        }
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_LEN);
        for (i, chunk) in bytes.chunks_exact(OFFSET_ENTRY_LEN).enumerate() {
            let relative_offset = i32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let position = i32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            if relative_offset < 0 || position < 0 {
                return Err(IndexError::OutOfOrder(i));
            }
            let entry = OffsetEntry {
                relative_offset: relative_offset as u32,
                position: position as u32,
            };
            if let Some(last) = entries.last().copied() {
                let last: OffsetEntry = last;
                if entry.relative_offset <= last.relative_offset || entry.position <= last.position
                {
                    return Err(IndexError::OutOfOrder(i));
                }
            }
            if entry.position as u64 >= segment_len {
                return Err(IndexError::PastEnd(i));
            }
            entries.push(entry);
        }
        Ok(OffsetIndex { entries })
    }

    /// Encodes entries `from..` in the `.index` layout.
    pub fn encode_from(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len().saturating_sub(from) * 8);
        for e in &self.entries[from.min(self.entries.len())..] {
            out.extend_from_slice(&(e.relative_offset as i32).to_be_bytes());
            out.extend_from_slice(&(e.position as i32).to_be_bytes());
        }
        out
    }

    /// Adds an entry; ignored unless it is after the last one.
    pub fn push(&mut self, entry: OffsetEntry) {
        match self.entries.last() {
            Some(last)
                if entry.relative_offset <= last.relative_offset
                    || entry.position <= last.position => {}
            _ => self.entries.push(entry),
        }
    }

    /// The entries.
    pub fn entries(&self) -> &[OffsetEntry] {
        &self.entries
    }

    /// Where to start scanning for `relative_offset`: the position of the last entry
    /// whose offset is below it (its batch ends before the target), or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        if i == 0 {
            return 0;
        }
        // Entry i-1 is a batch ending before the target: the next batch starts after it,
        // but the entry's own position is a safe, valid batch start.
        self.entries[i - 1].position
    }

    /// Drops entries at or after `position` (after truncating the segment).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|e| e.position < position);
        self.entries.truncate(keep);
    }
}

/// The time index of one segment, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    /// Decodes a `.timeindex` file, checking that timestamps and offsets increase.
    pub fn decode(bytes: &[u8]) -> Result<Self, IndexError> {
        if bytes.len() % TIME_ENTRY_LEN != 0 {
            return Err(IndexError::PartialEntry {
                len: bytes.len(),
                entry: TIME_ENTRY_LEN,
            });
        }
        let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_LEN);
        for (i, chunk) in bytes.chunks_exact(TIME_ENTRY_LEN).enumerate() {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let relative_offset = i32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            if relative_offset < 0 {
                return Err(IndexError::OutOfOrder(i));
            }
            let entry = TimeEntry {
                timestamp,
                relative_offset: relative_offset as u32,
            };
            if let Some(last) = entries.last() {
                if entry.timestamp <= last.timestamp || entry.relative_offset < last.relative_offset
                {
                    return Err(IndexError::OutOfOrder(i));
                }
            }
            entries.push(entry);
        }
        Ok(TimeIndex { entries })
    }

    /// Encodes entries `from..` in the `.timeindex` layout.
    pub fn encode_from(&self, from: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len().saturating_sub(from) * 12);
        for e in &self.entries[from.min(self.entries.len())..] {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&(e.relative_offset as i32).to_be_bytes());
        }
        out
    }

    /// Adds an entry; ignored unless its timestamp is larger than the last one's.
    pub fn push(&mut self, entry: TimeEntry) {
        match self.entries.last() {
            Some(last)
                if entry.timestamp <= last.timestamp
                    || entry.relative_offset < last.relative_offset => {}
            _ => self.entries.push(entry),
        }
    }

    /// The entries.
    pub fn entries(&self) -> &[TimeEntry] {
        &self.entries
    }

    /// The largest timestamp recorded, if any.
    pub fn max_timestamp(&self) -> Option<Timestamp> {
        self.entries.last().map(|e| e.timestamp)
    }

    /// Relative offset to start scanning from for the first record with a timestamp of
    /// at least `timestamp`: the offset after the last entry whose timestamp is below it.
    pub fn lookup(&self, timestamp: Timestamp) -> u32 {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].relative_offset.saturating_add(1)
        }
    }

    /// Drops entries whose offset is at or after `relative_offset`.
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        self.entries.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up() {
        let mut idx = OffsetIndex::default();
        idx.push(OffsetEntry {
            relative_offset: 9,
            position: 0,
        });
        idx.push(OffsetEntry {
            relative_offset: 19,
            position: 4096,
        });
        idx.push(OffsetEntry {
            relative_offset: 19,
            position: 5000,
        }); // ignored
        let bytes = idx.encode_from(0);
        assert_eq!(bytes.len(), 16);
        assert_eq!(OffsetIndex::decode(&bytes, 8192).expect("valid"), idx);
        assert_eq!(idx.lookup(5), 0);
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 0);
        assert_eq!(idx.lookup(20), 4096);
        assert!(OffsetIndex::decode(&bytes, 4096).is_err());
        assert!(OffsetIndex::decode(&bytes[..15], 8192).is_err());
    }

    #[test]
    fn time_index_lookup_skips_entries_below_the_target() {
        let mut idx = TimeIndex::default();
        idx.push(TimeEntry {
            timestamp: 100,
            relative_offset: 4,
        });
        idx.push(TimeEntry {
            timestamp: 200,
            relative_offset: 9,
        });
        idx.push(TimeEntry {
            timestamp: 150,
            relative_offset: 12,
        }); // ignored
        assert_eq!(TimeIndex::decode(&idx.encode_from(0)).expect("valid"), idx);
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(100), 0);
        assert_eq!(idx.lookup(101), 5);
        assert_eq!(idx.lookup(250), 10);
        assert_eq!(idx.max_timestamp(), Some(200));
    }
}
