//! Producer-state snapshots (Kafka's `ProducerStateManager` snapshot files): the
//! idempotent producers' state as of an offset, written when a segment rolls and at
//! a clean shutdown, so a restart remembers producers whose batches retention or
//! compaction have since removed.

use std::io;

use super::SegmentState;
use super::files::{read_small_file, remove_if_exists, write_file_atomic};
use crate::producer::ProducerTable;
use crate::segment::{ScanMode, file_name, parse_file_name, scan};
use crate::storage::Storage;

/// Suffix of producer-state snapshots.
const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// Writes the snapshot of `producers` at `offset` atomically.
pub(super) fn write<S: Storage>(dir: &S, offset: u64, producers: &ProducerTable) -> io::Result<()> {
    write_file_atomic(
        dir,
        &file_name(offset, SNAPSHOT_SUFFIX),
        &producers.encode(),
    )
}

/// Keeps the two newest producer snapshots.
pub(super) fn prune<S: Storage>(dir: &S) {
    let Ok(names) = dir.list() else { return };
    let mut snaps: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_file_name(n, SNAPSHOT_SUFFIX))
        .collect();
    snaps.sort_unstable();
    let keep_from = snaps.len().saturating_sub(2);
    for &s in &snaps[..keep_from] {
        let _ = dir.remove(&file_name(s, SNAPSHOT_SUFFIX));
    }
}

/// Restores producer state: the newest valid snapshot at or below `next_offset`, then
/// the headers of every batch after it.
pub(super) fn restore<S: Storage>(
    dir: &S,
    names: &[String],
    segments: &[SegmentState<S::File>],
    next_offset: u64,
) -> io::Result<ProducerTable> {
    let mut snaps: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_file_name(n, SNAPSHOT_SUFFIX))
        .collect();
    snaps.sort_unstable();
    let mut table = ProducerTable::default();
    let mut from = 0;
    for &s in snaps.iter().rev() {
        if s > next_offset {
            remove_if_exists(dir, &file_name(s, SNAPSHOT_SUFFIX))?;
            continue;
        }
        if let Some(t) = read_small_file(dir, &file_name(s, SNAPSHOT_SUFFIX))
            .and_then(|b| ProducerTable::decode(&b))
        {
            table = t;
            from = s;
            break;
        }
    }
    for seg in segments
        .iter()
        .filter(|s| s.next_offset > from && s.size > 0)
    {
        scan(
            &*seg.shared.file,
            seg.base_offset(),
            ScanMode::Headers,
            |_, h| {
                if h.base_offset >= from {
                    table.record(h);
                }
            },
        )?;
    }
    Ok(table)
}
