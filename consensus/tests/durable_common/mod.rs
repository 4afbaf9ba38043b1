//! Helpers shared by the durable-storage tests.
#![allow(dead_code)]

use bytes::Bytes;
use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
use dsys_consensus::{Entry, MemStorage, Storage};
use std::path::Path;

/// A payload derived from the entry's place, with no 0x00 or 0xff bytes
/// (so a flipped byte never reads as an unwritten sector).
pub(crate) fn payload(index: u64, term: u64) -> Bytes {
    let len = 24 + (index % 33) as usize;
    let seed = index.wrapping_mul(31).wrapping_add(term.wrapping_mul(7));
    (0..len)
        .map(|i| b'a' + ((seed + i as u64) % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

pub(crate) fn entry(term: u64, index: u64) -> Entry<u64> {
    Entry::new(term, index, payload(index, term))
}

/// Small segments and a small cache, so tests cross segments and read
/// from disk.
pub(crate) fn small_config() -> DiskStorageConfig {
    let mut config = DiskStorageConfig::default();
    config.segment_bytes = DiskStorageConfig::MIN_SEGMENT_BYTES;
    config.cache_bytes = 512;
    config
}

/// Everything a reader sees through `Storage` is the same.
pub(crate) fn assert_same(disk: &DiskStorage<u64>, model: &MemStorage<u64>) {
    assert_eq!(disk.first_index(), model.first_index(), "first index");
    assert_eq!(disk.last_index(), model.last_index(), "last index");
    assert_eq!(disk.snapshot(), model.snapshot(), "snapshot");
    assert_eq!(disk.initial_state(), model.initial_state(), "initial state");
    for index in disk.first_index() - 1..=disk.last_index() {
        assert_eq!(disk.term(index), model.term(index), "term {index}");
    }
    let (low, high) = (disk.first_index(), disk.last_index() + 1);
    assert_eq!(
        disk.entries(low, high, u64::MAX),
        model.entries(low, high, u64::MAX)
    );
    assert_eq!(disk.entries(low, high, 200), model.entries(low, high, 200));
    assert_eq!(disk.term(high), model.term(high));
    if low > 1 {
        assert_eq!(disk.term(low - 2), model.term(low - 2));
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

/// The files of a storage directory, sorted by name.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A scratch directory for the many opens of the crash tests: on tmpfs
/// where there is one (fsync there costs nothing; what is tested is how
/// open reads damaged bytes, not the disk).
pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}
