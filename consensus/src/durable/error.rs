//! The storage's configuration, and why opening or writing failed.

use std::io;
use std::path::PathBuf;

use crate::entry::Index;
use crate::storage::StorageError;

/// How a [`DiskStorage`](super::DiskStorage) lays out and caches its log.
/// Built from [`Default`] and set by assignment; [`validate`](Self::validate)
/// bounds every field and [`DiskStorage::open`](super::DiskStorage::open)
/// calls it.
///
/// ```
/// use dsys_consensus::durable::DiskStorageConfig;
///
/// let mut config = DiskStorageConfig::default();
/// config.segment_bytes = 16 << 20;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskStorageConfig {
    /// A segment file is sealed (fsynced, and a new one started) once it
    /// holds at least this many bytes. Compaction deletes whole segments,
    /// so this is also the granularity of reclaiming space. Between
    /// [`MIN_SEGMENT_BYTES`](Self::MIN_SEGMENT_BYTES) and
    /// [`MAX_SEGMENT_BYTES`](Self::MAX_SEGMENT_BYTES); default 64 MiB.
    pub segment_bytes: u64,
    /// The largest encoded entry accepted (payload plus about 30 bytes, or
    /// the membership of a configuration entry), and so the most a damaged
    /// length can make a read allocate. At most
    /// [`MAX_ENTRY_BYTES`](Self::MAX_ENTRY_BYTES); default 64 MiB.
    pub max_entry_bytes: u64,
    /// The newest entries are kept in memory up to this many bytes
    /// (counted by [`Entry::size`](crate::Entry::size)), so a leader sends
    /// and a node applies recent entries without reading them back; older
    /// ones are read from their segment. Default 16 MiB; 0 keeps none.
    pub cache_bytes: u64,
}

impl DiskStorageConfig {
    /// Smallest [`segment_bytes`](Self::segment_bytes): 4 KiB.
    pub const MIN_SEGMENT_BYTES: u64 = 4 << 10;
    /// Largest [`segment_bytes`](Self::segment_bytes): 1 GiB.
    pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
    /// Largest [`max_entry_bytes`](Self::max_entry_bytes): 1 GiB (a frame
    /// length is a `u32`).
    pub const MAX_ENTRY_BYTES: u64 = 1 << 30;

    /// Checks every field.
    ///
    /// # Errors
    /// The first [`DiskStorageConfigError`] found.
    pub fn validate(&self) -> Result<(), DiskStorageConfigError> {
        if !(Self::MIN_SEGMENT_BYTES..=Self::MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(DiskStorageConfigError::SegmentBytes(self.segment_bytes));
        }
        if !(64..=Self::MAX_ENTRY_BYTES).contains(&self.max_entry_bytes) {
            return Err(DiskStorageConfigError::MaxEntryBytes(self.max_entry_bytes));
        }
        Ok(())
    }
}

impl Default for DiskStorageConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_entry_bytes: 64 << 20,
            cache_bytes: 16 << 20,
        }
    }
}

/// Why a [`DiskStorageConfig`] was refused. Nothing was opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskStorageConfigError {
    /// `segment_bytes` is outside `MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES`.
    /// Nothing changed.
    #[error("segment_bytes {0} is outside 4 KiB..=1 GiB")]
    SegmentBytes(u64),
    /// `max_entry_bytes` is outside `64..=MAX_ENTRY_BYTES`. Nothing changed.
    #[error("max_entry_bytes {0} is outside 64..=1 GiB")]
    MaxEntryBytes(u64),
}

/// Why [`DiskStorage::open`](super::DiskStorage::open) failed. The
/// directory may have been partly recovered (a torn tail cut, an
/// interrupted compaction finished); opening again redoes what is left.
/// Nothing acknowledged was removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid; nothing was touched.
    #[error("invalid config: {0}")]
    Config(#[from] DiskStorageConfigError),
    /// The file system failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Another [`DiskStorage`](super::DiskStorage), in this process or
    /// another, holds the directory open (its lock file is locked). Opening
    /// it twice would let the two overwrite each other's acknowledged
    /// entries. Nothing was touched; open again once the other is dropped
    /// (or its process has exited: the system releases the lock then).
    #[error("{path} is locked: another storage has the directory open")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Bytes that were written whole are damaged (a checksum mismatch, a
    /// frame that does not decode, an entry out of place) somewhere a
    /// crash cannot leave a torn write: in a sealed segment, before intact
    /// records that were written after it was synced, or in a complete
    /// frame; or a state file with no intact record that is more than a
    /// new log's first write. Refused rather than cut, since
    /// cutting would drop acknowledged entries; restore the node from a
    /// replica (or remove the node and add it back empty).
    #[error("{file}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The files disagree with each other: segments that leave a gap, or a
    /// log that ends below the durable commit index (acknowledged entries
    /// are missing). Refused for the same reason as `Corrupt`.
    #[error("inconsistent log: {reason} (at index {index})")]
    Inconsistent {
        /// Where.
        index: Index,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why a write to a [`DiskStorage`](super::DiskStorage) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The request does not fit the log (an append that leaves a gap, a
    /// compaction past the snapshot, a snapshot of an entry the log does
    /// not hold). Nothing changed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An entry encodes to more than
    /// [`DiskStorageConfig::max_entry_bytes`]. Nothing changed.
    #[error("entry {index} encodes to {len} bytes, more than the {max} allowed")]
    EntryTooLarge {
        /// The entry's index.
        index: Index,
        /// Its encoded length.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// An index past 2^63 - 1, the most the files hold (an entry, a commit
    /// index, or a snapshot at 2^63 - 1 or past it, whose next entry would
    /// be): refused, as open would refuse or skip it. No log reaches it; a
    /// peer's bad message may. Nothing changed.
    #[error("index {index} is past the most the log holds (2^63 - 1)")]
    IndexTooLarge {
        /// The index.
        index: Index,
    },
    /// Writes are staged and not yet synced: call
    /// [`sync`](super::DiskStorage::sync) first (snapshots and compaction
    /// must follow every earlier batch). Nothing changed.
    #[error("staged writes must be synced first")]
    Unsynced,
    /// The file system failed. What was staged since the last successful
    /// sync may or may not be on disk, and the storage refuses every
    /// further write ([`WriteError::Failed`]): drop it and reopen it (the
    /// node restarts from what is durable), as after a crash. Reads still
    /// work.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// An earlier write failed with [`WriteError::Io`]; nothing changed.
    #[error("storage failed earlier; reopen it")]
    Failed,
}
