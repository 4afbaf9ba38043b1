//! The files of a log directory besides the segments' data: small files replaced
//! atomically (the checkpoint, producer snapshots) and the segments' index files,
//! which the log and the cleaner both write.

use std::io;

use super::SegmentState;
use crate::index::{OffsetIndex, TimeIndex};
use crate::loom::lock;
use crate::segment::{INDEX_SUFFIX, Indexes, TIME_INDEX_SUFFIX, TMP_SUFFIX, file_name};
use crate::storage::{Storage, StorageFile, read_full_at, write_all_at};

/// Reads a whole small file; `None` if it is missing or unreadable.
pub(super) fn read_small_file<S: Storage>(dir: &S, name: &str) -> Option<Vec<u8>> {
    let file = dir.open(name, false).ok()?;
    let len = usize::try_from(file.len().ok()?).ok()?;
    if len > 1 << 30 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let n = read_full_at(&file, &mut buf, 0).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Replaces `name` with `bytes` atomically (write a temporary file, fsync, rename).
pub(super) fn write_file_atomic<S: Storage>(dir: &S, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}{TMP_SUFFIX}");
    let file = dir.open(&tmp, true)?;
    file.set_len(0)?;
    write_all_at(&file, bytes, 0)?;
    file.sync_data()?;
    drop(file);
    dir.rename(&tmp, name)?;
    dir.sync_dir()
}

/// Replaces the contents of an index file with `bytes` (not fsynced: indexes are
/// rebuilt from the segment when they do not check out).
fn write_index_file<S: Storage>(dir: &S, name: &str, bytes: &[u8]) -> io::Result<()> {
    let file = dir.open(name, true)?;
    write_all_at(&file, bytes, 0)?;
    file.set_len(bytes.len() as u64)
}

/// Removes `name`; a file that is already gone is not an error.
pub(crate) fn remove_if_exists<S: Storage>(dir: &S, name: &str) -> io::Result<()> {
    match dir.remove(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Appends the active segment's new index entries to its index files.
pub(super) fn persist_new_index_entries<S: Storage>(
    dir: &S,
    active: &mut SegmentState<S::File>,
) -> io::Result<()> {
    let (offsets, times, counts) = {
        let indexes = lock(&active.shared.indexes);
        (
            indexes.offsets.encode_from(active.persisted.0),
            indexes.times.encode_from(active.persisted.1),
            (
                indexes.offsets.entries().len(),
                indexes.times.entries().len(),
            ),
        )
    };
    let b = active.base_offset();
    if !offsets.is_empty() {
        let f = dir.open(&file_name(b, INDEX_SUFFIX), true)?;
        write_all_at(&f, &offsets, active.persisted.0 as u64 * 8)?;
    }
    if !times.is_empty() {
        let f = dir.open(&file_name(b, TIME_INDEX_SUFFIX), true)?;
        write_all_at(&f, &times, active.persisted.1 as u64 * 12)?;
    }
    active.persisted = counts;
    Ok(())
}

/// Writes a segment's `.index` and `.timeindex` files in full, fsyncing them when
/// `sync` (sealed segments; an active segment's indexes are rebuilt on recovery).
pub(crate) fn write_indexes<S: Storage>(
    dir: &S,
    base: u64,
    indexes: &Indexes,
    sync: bool,
) -> io::Result<()> {
    for (suffix, bytes) in [
        (INDEX_SUFFIX, indexes.offsets.encode_from(0)),
        (TIME_INDEX_SUFFIX, indexes.times.encode_from(0)),
    ] {
        let name = file_name(base, suffix);
        write_index_file(dir, &name, &bytes)?;
        if sync {
            dir.open(&name, false)?.sync_data()?;
        }
    }
    Ok(())
}

/// Loads and checks a sealed segment's index files; `None` when either is missing or
/// fails its checks (the caller rebuilds both).
pub(super) fn load_indexes<S: Storage>(dir: &S, base: u64, segment_len: u64) -> Option<Indexes> {
    let offsets = read_small_file(dir, &file_name(base, INDEX_SUFFIX))?;
    let times = read_small_file(dir, &file_name(base, TIME_INDEX_SUFFIX))?;
    let offsets = OffsetIndex::decode(&offsets, segment_len).ok()?;
    let times = TimeIndex::decode(&times).ok()?;
    Some(Indexes { offsets, times })
}
