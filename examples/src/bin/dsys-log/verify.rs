//! `verify`: checks a directory of segments without changing it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dsys_log::{HEADER_LEN, OffsetIndex, TimeIndex, Timestamp};

use super::{
    Res, VerifyArgs,
    format::{Table, read_file, thousands},
    segments::{
        Batches, INDEX_SUFFIX, LOG_SUFFIX, Step, TIME_INDEX_SUFFIX, base_offset_of, sibling,
    },
};

/// What `verify` found in one segment.
#[derive(Default)]
pub(super) struct SegmentCheck {
    pub(super) batches: u64,
    pub(super) records: u64,
    pub(super) first_offset: Option<u64>,
    pub(super) next_offset: Option<u64>,
    pub(super) bytes: u64,
    pub(super) index_entries: Option<usize>,
    pub(super) time_entries: Option<usize>,
    /// Damage, each as a sentence naming the position.
    pub(super) problems: Vec<String>,
}

pub(super) fn verify(args: &VerifyArgs) -> Res<bool> {
    let mut partitions: BTreeMap<PathBuf, Vec<(u64, PathBuf)>> = BTreeMap::new();
    collect_segments(&args.dir, &mut partitions)?;
    if partitions.is_empty() {
        return Err(format!(
            "no segment files (<20 digits>.log) under {}",
            args.dir.display()
        )
        .into());
    }
    let mut table = Table::new(
        &[
            "segment",
            "batches",
            "records",
            "offsets",
            "bytes",
            ".index",
            ".timeindex",
            "status",
        ],
        &[1, 2, 4, 5, 6],
    );
    let mut problems = Vec::new();
    let (mut segments, mut batches, mut records, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for mut files in partitions.into_values() {
        files.sort();
        let mut previous_next: Option<u64> = None;
        for (base, log) in files {
            let shown = log
                .strip_prefix(&args.dir)
                .unwrap_or(&log)
                .display()
                .to_string();
            let shown = if shown.is_empty() {
                log.display().to_string()
            } else {
                shown
            };
            let mut check = verify_segment(&log, base)?;
            if let (Some(prev), Some(first)) = (previous_next, check.first_offset) {
                if first < prev {
                    check.problems.push(format!(
                        "first offset {first} overlaps the previous segment, which ends at {}",
                        prev - 1
                    ));
                }
            }
            if base < previous_next.unwrap_or(0) {
                check.problems.push(format!(
                    "base offset {base} is below the previous segment's end {}",
                    previous_next.unwrap_or(0)
                ));
            }
            previous_next = check.next_offset.or(previous_next).or(Some(base));
            segments += 1;
            batches += check.batches;
            records += check.records;
            bytes += check.bytes;
            let entries = |n: Option<usize>| n.map_or("missing".to_owned(), |n| n.to_string());
            table.row([
                shown.clone(),
                thousands(check.batches),
                thousands(check.records),
                match (check.first_offset, check.next_offset) {
                    (Some(first), Some(next)) => format!("{first}..{}", next - 1),
                    _ => "-".to_owned(),
                },
                thousands(check.bytes),
                entries(check.index_entries),
                entries(check.time_entries),
                if check.problems.is_empty() {
                    "ok".to_owned()
                } else {
                    "DAMAGED".to_owned()
                },
            ]);
            problems.extend(check.problems.into_iter().map(|p| format!("{shown}: {p}")));
        }
    }
    table.print()?;
    out!();
    if problems.is_empty() {
        out!(
            "ok: {segments} segment(s), {} batches, {} records, {} bytes, all valid",
            thousands(batches),
            thousands(records),
            thousands(bytes)
        );
        Ok(true)
    } else {
        out!("DAMAGED: {} problem(s)", problems.len());
        for problem in &problems {
            out!("  {problem}");
        }
        Ok(false)
    }
}

/// Every `<20 digits>.log` under `dir`, grouped by directory.
pub(super) fn collect_segments(
    dir: &Path,
    out: &mut BTreeMap<PathBuf, Vec<(u64, PathBuf)>>,
) -> Res {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_segments(&path, out)?;
        } else if let Some(base) = base_offset_of(&path, LOG_SUFFIX) {
            out.entry(dir.to_path_buf()).or_default().push((base, path));
        }
    }
    Ok(())
}

/// Checks one segment and its indexes, reading only.
pub(super) fn verify_segment(log: &Path, base: u64) -> Res<SegmentCheck> {
    let bytes = Bytes::from(read_file(log)?);
    let mut check = SegmentCheck {
        bytes: bytes.len() as u64,
        ..SegmentCheck::default()
    };
    // Batch start position -> (last offset, running max timestamp after it).
    let mut starts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut by_last_offset: BTreeMap<u64, i64> = BTreeMap::new();
    let mut max_timestamp: Option<Timestamp> = None;
    let mut valid_len = 0u64;
    for step in Batches::new(bytes.clone()) {
        match step {
            Step::Batch { position, batch } => {
                let h = batch.header();
                if h.base_offset < base {
                    check.problems.push(format!(
                        "batch at position {position} starts at offset {}, below the segment's \
                         base offset {base}",
                        h.base_offset
                    ));
                    break;
                }
                if let Some(next) = check.next_offset {
                    if h.base_offset < next {
                        check.problems.push(format!(
                            "batch at position {position} starts at offset {}, not after the \
                             previous batch's last offset {}",
                            h.base_offset,
                            next - 1
                        ));
                        break;
                    }
                }
                if h.last_offset() - base > i32::MAX as u64 {
                    check.problems.push(format!(
                        "batch at position {position} ends at offset {}, too far from the base \
                         offset {base} for 32-bit relative offsets",
                        h.last_offset()
                    ));
                    break;
                }
                check.first_offset.get_or_insert(h.base_offset);
                check.next_offset = Some(h.next_offset());
                check.batches += 1;
                check.records += u64::from(h.records_count);
                let max = max_timestamp.map_or(h.max_timestamp, |m| m.max(h.max_timestamp));
                max_timestamp = Some(max);
                starts.insert(position, h.last_offset());
                by_last_offset.insert(h.last_offset(), max);
                valid_len = position + batch.len() as u64;
            }
            Step::Invalid {
                position, error, ..
            } => {
                let hint = if bytes.len() as u64 - position < HEADER_LEN as u64 {
                    " (a torn tail?)"
                } else {
                    ""
                };
                check.problems.push(format!(
                    "invalid batch at position {position}: {error}{hint}"
                ));
            }
        }
    }

    let index = sibling(log, INDEX_SUFFIX);
    if index.exists() {
        let raw = read_file(&index)?;
        match OffsetIndex::decode(&raw, bytes.len() as u64) {
            Err(error) => check.problems.push(format!(".index: {error}")),
            Ok(index) => {
                check.index_entries = Some(index.entries().len());
                for (i, e) in index.entries().iter().enumerate() {
                    let offset = base + u64::from(e.relative_offset);
                    let position = u64::from(e.position);
                    if position >= valid_len {
                        check.problems.push(format!(
                            ".index entry {i} (offset {offset}, position {position}) points past \
                             the last valid batch"
                        ));
                        continue;
                    }
                    match starts.get(&position) {
                        None => check.problems.push(format!(
                            ".index entry {i} (offset {offset}, position {position}): no batch \
                             starts at that position"
                        )),
                        Some(&last) if last != offset => check.problems.push(format!(
                            ".index entry {i} (offset {offset}, position {position}): the batch \
                             there ends at offset {last}"
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    let time_index = sibling(log, TIME_INDEX_SUFFIX);
    if time_index.exists() {
        let raw = read_file(&time_index)?;
        match TimeIndex::decode(&raw) {
            Err(error) => check.problems.push(format!(".timeindex: {error}")),
            Ok(index) => {
                check.time_entries = Some(index.entries().len());
                for (i, e) in index.entries().iter().enumerate() {
                    let offset = base + u64::from(e.relative_offset);
                    match by_last_offset.get(&offset) {
                        None => check.problems.push(format!(
                            ".timeindex entry {i} (timestamp {}, offset {offset}): no valid batch \
                             ends at that offset",
                            e.timestamp
                        )),
                        Some(&max) if max != e.timestamp => check.problems.push(format!(
                            ".timeindex entry {i} (timestamp {}, offset {offset}): the largest \
                             timestamp up to that offset is {max}",
                            e.timestamp
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    Ok(check)
}
