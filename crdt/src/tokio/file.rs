//! A [`Persister`] that keeps the record in a file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{PersistFuture, Persister, Record};
use crate::codec::{Decode, DecodeError, Encode, get_u8, get_uvarint, put_uvarint};

/// The first byte of a record file: the format's version.
const FORMAT: u8 = 1;

/// A [`Persister`] that writes the record to one file, atomically: the new
/// record goes to `<path>.tmp`, which is fsynced and renamed over `path`, and
/// then the directory is fsynced. A crash leaves the previous record or the
/// new one, never a mix (the persistence contract's rule 1). The write runs
/// on tokio's blocking pool.
///
/// The file holds a format byte, the incarnation (a varint) and the state in
/// the [`codec`](crate::codec) format. [`load`](Self::load) reads it back on
/// restart, for [`Replica::restore`](crate::Replica::restore).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use dsys_crdt::tokio::FilePersister;
/// use dsys_crdt::{GCounter, Replica, SyncConfig};
///
/// let persister = FilePersister::new("data/replica-1.crdt");
/// let replica = match persister.load::<GCounter<u64>>()? {
///     Some(record) => Replica::restore(1, record.state, record.incarnation, SyncConfig::default())?,
///     None => Replica::new(1, GCounter::new(), SyncConfig::default())?,
/// };
/// // spawn(replica, persister, transport, DriverConfig::default())
/// # let _ = replica;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FilePersister {
    path: PathBuf,
}

/// Why [`FilePersister::load`] could not read the record. Nothing was
/// changed on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file exists but could not be read. Nothing changed.
    #[error("reading the record failed: {0}")]
    Io(#[from] io::Error),
    /// The file does not hold a record of this format and type (a
    /// different type, or a damaged file). Nothing changed; do not start
    /// the replica with [`Replica::new`](crate::Replica::new) in its place.
    #[error("the record does not decode: {0}")]
    Decode(#[from] DecodeError),
}

impl FilePersister {
    /// A persister for the record file at `path`; nothing is touched until
    /// the first write or [`load`](Self::load).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The record file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last record written, or `None` if no record was ever written
    /// (first start: use [`Replica::new`](crate::Replica::new)).
    ///
    /// # Errors
    /// [`LoadError`] if the file cannot be read or does not decode.
    pub fn load<S: Decode>(&self) -> Result<Option<Record<S>>, LoadError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(decode_record(&bytes)?))
    }
}

fn decode_record<S: Decode>(mut input: &[u8]) -> Result<Record<S>, DecodeError> {
    let input = &mut input;
    if get_u8(input)? != FORMAT {
        return Err(DecodeError::Invalid("unknown record format"));
    }
    let incarnation = get_uvarint(input)?;
    let state = S::from_bytes(input)?;
    Ok(Record { state, incarnation })
}

impl<S: Encode> Persister<S> for FilePersister {
    fn persist(&mut self, state: &S, incarnation: u64) -> PersistFuture {
        let mut bytes = vec![FORMAT];
        put_uvarint(&mut bytes, incarnation);
        state.encode(&mut bytes);
        let path = self.path.clone();
        Box::pin(async move {
            ::tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
                .await
                .map_err(io::Error::other)?
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // The rename is durable once the directory is.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GSet;

    #[test]
    fn records_round_trip_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("dsys-crdt-file-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let persister = FilePersister::new(dir.join("record"));
        assert!(matches!(persister.load::<GSet<u32>>(), Ok(None)));
        let mut set = GSet::new();
        let _ = set.insert(7u32);
        let mut bytes = vec![FORMAT];
        put_uvarint(&mut bytes, 3);
        set.encode(&mut bytes);
        write_atomically(persister.path(), &bytes).expect("written");
        let record = persister
            .load::<GSet<u32>>()
            .expect("decodes")
            .expect("some");
        assert_eq!(
            record,
            Record {
                state: set,
                incarnation: 3
            }
        );
        fs::write(persister.path(), [9, 0]).expect("written");
        assert!(matches!(
            persister.load::<GSet<u32>>(),
            Err(LoadError::Decode(_))
        ));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
