//! Kafka segment files: names, sibling index files, and a walk over a `.log`
//! file's batches that stops at the first invalid one.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use dsys_log::{BatchHeader, Compression, RecordBatch};

pub(super) const LOG_SUFFIX: &str = ".log";
pub(super) const INDEX_SUFFIX: &str = ".index";
pub(super) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// The base offset in a Kafka segment file name (`00000000000000000042.log`).
pub(super) fn base_offset_of(path: &Path, suffix: &str) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `path` with its extension replaced (`...42.log` to `...42.index`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}{suffix}"))
}

/// Checks the records of an intact batch without assuming the offset deltas
/// run 0, 1, 2...: compaction leaves gaps, so (as the log's own recovery
/// does) offsets must only increase inside the batch's range, and the count
/// must match `recordsCount`. Compressed batches pass (their records are not
/// decoded here).
pub(super) fn check_records(batch: &RecordBatch) -> Result<(), String> {
    let header = batch.header();
    if header.compression() != Compression::None {
        return Ok(());
    }
    let mut count = 0u32;
    let mut last: Option<u64> = None;
    for record in batch.records() {
        let record = record.map_err(|e| e.to_string())?;
        if last.is_some_and(|l| record.offset <= l) || record.offset > header.last_offset() {
            return Err(format!(
                "record offset {} out of order (batch {}..={})",
                record.offset,
                header.base_offset,
                header.last_offset()
            ));
        }
        last = Some(record.offset);
        count += 1;
    }
    if count != header.records_count || count == 0 {
        return Err(format!(
            "{count} records, but recordsCount says {}",
            header.records_count
        ));
    }
    Ok(())
}

/// One batch of a `.log` file, or where and why the file stops being valid.
pub(super) enum Step {
    Batch {
        position: u64,
        batch: RecordBatch,
    },
    Invalid {
        position: u64,
        header: Option<BatchHeader>,
        error: String,
    },
}

/// Walks the batches of a `.log` file's bytes in order, stopping after the
/// first invalid one.
pub(super) struct Batches {
    pub(super) bytes: Bytes,
    pub(super) position: usize,
    pub(super) done: bool,
}

impl Batches {
    pub(super) fn new(bytes: Bytes) -> Self {
        Batches {
            bytes,
            position: 0,
            done: false,
        }
    }
}

impl Iterator for Batches {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.done || self.position >= self.bytes.len() {
            return None;
        }
        let position = self.position as u64;
        let rest = self.bytes.slice(self.position..);
        let header = BatchHeader::decode(&rest).ok();
        let invalid = |error: String| Step::Invalid {
            position,
            header,
            error,
        };
        let step = match RecordBatch::decode(rest) {
            Ok(batch) => match check_records(&batch) {
                Ok(()) => {
                    self.position += batch.len();
                    return Some(Step::Batch { position, batch });
                }
                Err(error) => invalid(error),
            },
            Err(error) => invalid(error.to_string()),
        };
        self.done = true;
        Some(step)
    }
}
