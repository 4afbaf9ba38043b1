//! The [`SnapshotStore`] for [`DiskStorage`] (features `tokio` and
//! `durable`): snapshot bytes in files of their own, the meta in the
//! storage's state file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::SnapshotStore;
use crate::NodeId;
use crate::codec::IdCodec;
use crate::durable::{DiskStorage, WriteError};
use crate::entry::Index;
use crate::snapshot::SnapshotMeta;
use crate::storage::Storage;

/// The first bytes of a snapshot file.
const MAGIC: &[u8; 8] = b"DSYSSNP1";
/// Magic, index, term, length and CRC-32C.
const HEADER: usize = 8 + 8 + 8 + 8 + 4;
const TMP: &str = "snapshot.tmp";

/// The [`SnapshotStore`] for [`DiskStorage`]: each snapshot's bytes go to
/// a file of their own in a directory of the store's (not the storage's),
/// `snapshot-<index>.snap`, behind a header (index, term, length and a
/// CRC-32C of the bytes). A file is written to a temporary name, fsynced,
/// renamed and its directory fsynced before the storage records the
/// snapshot, so a crash leaves either the old snapshot in force or the new
/// one with its bytes; older files go once the storage has recorded the
/// new one. [`load`](SnapshotStore::load) reads the file of the snapshot
/// the storage reports and refuses one whose header or checksum does not
/// match.
///
/// Snapshots and compaction need the storage to hold no staged write
/// (`WriteError::Unsynced`): the store answers "not now"
/// ([`io::ErrorKind::WouldBlock`]) then, and the driver tries again later.
/// With `DiskPersister`, which syncs every batch before it returns, that
/// does not happen.
#[derive(Debug, Clone)]
pub struct DiskSnapshots {
    dir: PathBuf,
}

impl DiskSnapshots {
    /// A store in `dir`, created if missing (keep it apart from the
    /// storage's directory).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory the snapshot files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, index: Index) -> PathBuf {
        self.dir.join(format!("snapshot-{index:020}.snap"))
    }

    fn write<N>(&self, meta: &SnapshotMeta<N>, data: &Bytes) -> io::Result<()> {
        let tmp = self.dir.join(TMP);
        let mut file = File::create(&tmp)?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&meta.index.to_be_bytes());
        header.extend_from_slice(&meta.term.to_be_bytes());
        header.extend_from_slice(&(data.len() as u64).to_be_bytes());
        header.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        file.write_all(&header)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.path(meta.index))?;
        File::open(&self.dir)?.sync_all()
    }

    /// Removes the files of snapshots older than `index`.
    fn remove_older(&self, index: Index) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let older = name
                .to_str()
                .and_then(|n| n.strip_prefix("snapshot-")?.strip_suffix(".snap"))
                .and_then(|digits| digits.parse::<Index>().ok())
                .is_some_and(|i| i < index);
            if older {
                fs::remove_file(self.dir.join(name))?;
            }
        }
        Ok(())
    }

    fn read(&self, index: Index, term: u64) -> io::Result<Bytes> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("snapshot file of index {index}: {what}"),
            )
        };
        let mut file = File::open(self.path(index))?;
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header)?;
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        if &header[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        if word(8) != index || word(16) != term {
            return Err(bad("another snapshot's header"));
        }
        let len = word(24);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&header[32..36]);
        let on_disk = file.metadata()?.len();
        if on_disk != (HEADER as u64).saturating_add(len) {
            return Err(bad("length does not match the file"));
        }
        let mut data = Vec::with_capacity(usize::try_from(len).map_err(|_| bad("too large"))?);
        file.read_to_end(&mut data)?;
        if crc32c::crc32c(&data) != u32::from_be_bytes(crc) {
            return Err(bad("checksum mismatch"));
        }
        Ok(Bytes::from(data))
    }
}

fn io_error(e: WriteError) -> io::Error {
    match e {
        WriteError::Unsynced => io::Error::new(io::ErrorKind::WouldBlock, e),
        WriteError::Io(e) => e,
        WriteError::Storage(_) => io::Error::new(io::ErrorKind::InvalidData, e),
        e => io::Error::other(e),
    }
}

impl<N: NodeId + IdCodec + Send + 'static> SnapshotStore<DiskStorage<N>> for DiskSnapshots {
    fn save(
        &mut self,
        storage: &mut DiskStorage<N>,
        meta: &SnapshotMeta<N>,
        data: &Bytes,
    ) -> io::Result<()> {
        self.write(meta, data)?;
        storage.set_snapshot(meta.clone()).map_err(io_error)?;
        self.remove_older(meta.index)
    }

    fn compact(&mut self, storage: &mut DiskStorage<N>, index: Index) -> io::Result<()> {
        storage.compact(index).map_err(io_error)
    }

    fn install(
        &mut self,
        storage: &mut DiskStorage<N>,
        meta: &SnapshotMeta<N>,
        data: &Bytes,
    ) -> io::Result<()> {
        self.write(meta, data)?;
        storage.apply_snapshot(meta.clone()).map_err(io_error)?;
        self.remove_older(meta.index)
    }

    fn load(&mut self, storage: &DiskStorage<N>) -> io::Result<Option<Bytes>> {
        let Some(meta) = storage.snapshot() else {
            return Ok(None);
        };
        match self.read(meta.index, meta.term) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
