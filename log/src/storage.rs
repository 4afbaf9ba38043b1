//! The file interface the log is written against: one directory per partition, files
//! read and written at explicit positions. [`StdDir`] uses `std::fs`; [`MemDir`] keeps
//! files in memory and injects the failures disks produce (torn and short writes,
//! failed fsyncs, crashes that lose whatever was not synced).

use std::io;
use std::path::{Path, PathBuf};

use crate::loom::{Arc, Mutex, lock};

/// A directory of files: the storage of one partition.
///
/// Implementations MUST make `rename` atomic (the file is either under its old or its
/// new name after a crash) and make directory changes durable by `sync_dir`.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// An open file.
    type File: StorageFile;
    /// Opens `name` for reading and writing, creating it when `create` is true.
    fn open(&self, name: &str, create: bool) -> io::Result<Self::File>;
    /// Names of the files in the directory, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Deletes `name`. Open handles stay readable, as on POSIX.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, removals and renames durable.
    fn sync_dir(&self) -> io::Result<()>;
}

/// A file read and written at explicit positions, shared by one writer and many readers.
// `len` is a file length from metadata; an `is_empty` would only invite a second syscall.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + std::fmt::Debug + 'static {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `pos`; fewer at the end of the file.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `pos`; may write fewer (a short write).
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable. After an error, nothing written since the last
    /// successful sync may be assumed durable, not even after a later sync succeeds.
    fn sync_data(&self) -> io::Result<()>;
}

/// Writes all of `buf` at `pos`, continuing after short writes.
pub(crate) fn write_all_at<F: StorageFile + ?Sized>(
    file: &F,
    mut buf: &[u8],
    mut pos: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, pos) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => {
                buf = &buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` at `pos` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at<F: StorageFile + ?Sized>(
    file: &F,
    buf: &mut [u8],
    pos: u64,
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A partition directory on the local file system.
#[derive(Debug, Clone)]
pub struct StdDir {
    path: PathBuf,
}

impl StdDir {
    /// Uses `path` as the partition directory, creating it (and its parents) if needed.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(path.as_ref())?;
        Ok(StdDir {
            path: path.as_ref().to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A file of a [`StdDir`].
#[derive(Debug)]
pub struct StdFile(std::fs::File);

impl Storage for StdDir {
    type File = StdFile;

    fn open(&self, name: &str, create: bool) -> io::Result<StdFile> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.path.join(name))?;
        Ok(StdFile(file))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        std::fs::File::open(&self.path)?.sync_all()
    }
}

impl StorageFile for StdFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, pos)
    }

    #[cfg(windows)]
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.0, buf, pos)
    }

    #[cfg(unix)]
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.0, buf, pos)
    }

    #[cfg(windows)]
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_write(&self.0, buf, pos)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Failures a [`MemDir`] injects; set through [`MemDir::faults`].
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct MemFaults {
    /// The next this-many `sync_data` calls fail; what was written since the last
    /// successful sync is not durable.
    pub fail_syncs: u32,
    /// Every write writes at most this many bytes (short writes), when set.
    pub max_write: Option<usize>,
    /// After this many more bytes are written, writes fail; the write that crosses the
    /// limit writes its first part (a torn write) and then reports an error.
    pub write_budget: Option<u64>,
}

#[derive(Debug, Default)]
struct MemFileData {
    /// What a reader sees now.
    data: Vec<u8>,
    /// What survives a crash: the contents at the last successful sync.
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemState {
    files: std::collections::BTreeMap<String, Arc<Mutex<MemFileData>>>,
    faults: MemFaults,
    syncs: u64,
}

/// An in-memory partition directory for tests, with fault injection and crash
/// simulation. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemDir {
    state: Arc<Mutex<MemState>>,
}

/// A file of a [`MemDir`].
#[derive(Debug, Clone)]
pub struct MemFile {
    data: Arc<Mutex<MemFileData>>,
    state: Arc<Mutex<MemState>>,
}

impl MemDir {
    /// An empty directory without faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the injected faults.
    pub fn faults(&self, change: impl FnOnce(&mut MemFaults)) {
        change(&mut lock(&self.state).faults);
    }

    /// Successful `sync_data` calls so far.
    pub fn sync_count(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// A copy of a file's current contents.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state.files.get(name).map(|f| lock(f).data.clone())
    }

    /// Replaces a file's contents (current and durable), creating it if needed: the
    /// tool for cutting and corrupting files in crash tests.
    pub fn write_file(&self, name: &str, bytes: &[u8]) {
        let mut state = lock(&self.state);
        let file = state.files.entry(name.to_string()).or_default();
        let mut f = lock(file);
        f.data = bytes.to_vec();
        f.durable = bytes.to_vec();
    }

    /// File names, sorted.
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.state).files.keys().cloned().collect()
    }

    /// Simulates power loss: every file goes back to its contents at its last
    /// successful sync, and injected faults are cleared. Directory operations are
    /// treated as durable at once. Handles opened before the crash keep working on
    /// the post-crash contents, so drop the log before reopening it.
    pub fn crash(&self) {
        let mut state = lock(&self.state);
        state.faults = MemFaults::default();
        for file in state.files.values() {
            let mut f = lock(file);
            f.data = f.durable.clone();
        }
    }
}

impl Storage for MemDir {
    type File = MemFile;

    fn open(&self, name: &str, create: bool) -> io::Result<MemFile> {
        let mut state = lock(&self.state);
        let data = match state.files.get(name) {
            Some(d) => d.clone(),
            None if create => {
                let d = Arc::new(Mutex::new(MemFileData::default()));
                state.files.insert(name.to_string(), d.clone());
                d
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        };
        Ok(MemFile {
            data,
            state: self.state.clone(),
        })
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match lock(&self.state).files.remove(name) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = lock(&self.state);
        let file = state
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_string()))?;
        state.files.insert(to.to_string(), file);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
}

impl StorageFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.data).data.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let f = lock(&self.data);
        let Ok(pos) = usize::try_from(pos) else {
            return Ok(0);
        };
        if pos >= f.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(f.data.len() - pos);
        buf[..n].copy_from_slice(&f.data[pos..pos + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        let mut n = buf.len();
        let mut fail_after = false;
        {
            let mut state = lock(&self.state);
            if let Some(max) = state.faults.max_write {
                n = n.min(max.max(1));
            }
            if let Some(budget) = state.faults.write_budget.as_mut() {
                if (n as u64) > *budget {
                    n = *budget as usize;
                    fail_after = true;
                }
                *budget -= n as u64;
            }
        }
        let pos = usize::try_from(pos)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "position"))?;
        let mut f = lock(&self.data);
        if f.data.len() < pos + n {
            f.data.resize(pos + n, 0);
        }
        f.data[pos..pos + n].copy_from_slice(&buf[..n]);
        drop(f);
        if fail_after {
            return Err(io::Error::other("injected write failure (torn write)"));
        }
        Ok(n)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length"))?;
        lock(&self.data).data.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        let mut f = lock(&self.data);
        if state.faults.fail_syncs > 0 {
            state.faults.fail_syncs -= 1;
            return Err(io::Error::other("injected fsync failure"));
        }
        f.durable = f.data.clone();
        state.syncs += 1;
        Ok(())
    }
}
