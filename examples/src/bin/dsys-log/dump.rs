//! `dump`: prints segment and index files the way Kafka's `DumpLogSegments`
//! does.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use dsys_log::{
    BatchHeader, Compression, OFFSET_ENTRY_LEN, OffsetIndex, RecordBatch, TIME_ENTRY_LEN,
    TimeIndex, TimestampType,
};

use super::{
    DumpArgs, Res,
    format::{read_file, show_bytes},
    segments::{
        Batches, INDEX_SUFFIX, LOG_SUFFIX, Step, TIME_INDEX_SUFFIX, base_offset_of, sibling,
    },
};

/// Dumps every file; `Ok(false)` if any was invalid.
pub(super) fn dump(args: &DumpArgs) -> Res<bool> {
    let mut all_valid = true;
    for (i, path) in args.files.iter().enumerate() {
        if i > 0 {
            out!();
        }
        out!("Dumping {}", path.display());
        let name = path.to_string_lossy();
        let valid = if name.ends_with(LOG_SUFFIX) {
            dump_log(path, args)?
        } else if name.ends_with(TIME_INDEX_SUFFIX) {
            dump_time_index(path)?
        } else if name.ends_with(INDEX_SUFFIX) {
            dump_offset_index(path)?
        } else {
            out!("unsupported file: expected a .log, .index or .timeindex file");
            false
        };
        all_valid &= valid;
    }
    Ok(all_valid)
}

pub(super) fn dump_log(path: &Path, args: &DumpArgs) -> Res<bool> {
    let bytes = Bytes::from(read_file(path)?);
    if let Some(base) = base_offset_of(path, LOG_SUFFIX) {
        out!("Log starting offset: {base}");
    }
    for step in Batches::new(bytes.clone()) {
        match step {
            Step::Batch { position, batch } => {
                out!("{}", batch_line(batch.header(), position, true));
                if args.records {
                    dump_records(&batch, args.max_bytes)?;
                }
            }
            Step::Invalid {
                position,
                header,
                error,
            } => {
                if let Some(header) = header {
                    out!("{}", batch_line(&header, position, false));
                }
                out!(
                    "Invalid batch at position {position}: {error} ({} bytes from there to the \
                     end of the file not dumped)",
                    bytes.len() as u64 - position
                );
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A batch in `DumpLogSegments`' words.
pub(super) fn batch_line(h: &BatchHeader, position: u64, valid: bool) -> String {
    let timestamp_type = match h.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    let codec = match h.compression() {
        Compression::None => "none",
        Compression::Other(1) => "gzip",
        Compression::Other(2) => "snappy",
        Compression::Other(3) => "lz4",
        Compression::Other(4) => "zstd",
        _ => "unknown",
    };
    let last_sequence = if h.base_sequence < 0 {
        -1
    } else {
        h.last_sequence()
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {last_sequence} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} deleteHorizonMs: {} position: {position} {timestamp_type}: {} size: {} \
         magic: 2 compresscodec: {codec} crc: {} isvalid: {valid}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        if h.has_delete_horizon() {
            h.base_timestamp.to_string()
        } else {
            "none".to_owned()
        },
        h.max_timestamp,
        h.total_len(),
        h.crc,
    )
}

pub(super) fn dump_records(batch: &RecordBatch, max_bytes: usize) -> Res {
    let h = batch.header();
    if let Compression::Other(codec) = h.compression() {
        out!("| (records compressed with codec {codec}: not decoded)");
        return Ok(());
    }
    let timestamp_type = match h.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    for record in batch.records() {
        // The batch passed `check_records`: every record decodes.
        let record = record?;
        let sequence = if h.base_sequence < 0 {
            -1
        } else {
            let delta = (record.offset - h.base_offset) as i64;
            ((h.base_sequence as i64 + delta) % (i32::MAX as i64 + 1)) as i32
        };
        let size = |v: &Option<Bytes>| v.as_ref().map_or(-1, |b| b.len() as i64);
        let header_keys: Vec<String> = record
            .headers
            .iter()
            .map(|h| String::from_utf8_lossy(&h.key).into_owned())
            .collect();
        let show = |v: &Option<Bytes>| {
            v.as_ref()
                .map_or("null".to_owned(), |b| show_bytes(b, max_bytes))
        };
        out!(
            "| offset: {} {timestamp_type}: {} keySize: {} valueSize: {} sequence: {sequence} \
             headerKeys: [{}] key: {} payload: {}",
            record.offset,
            record.timestamp,
            size(&record.key),
            size(&record.value),
            header_keys.join(","),
            show(&record.key),
            show(&record.value),
        );
    }
    Ok(())
}

/// The raw entries of an index file: (first field, second field) per
/// entry, and the length of a partial entry at the end.
pub(super) fn raw_entries(bytes: &[u8], entry: usize) -> (Vec<(i64, i32)>, usize) {
    let entries = bytes
        .chunks_exact(entry)
        .map(|c| {
            let (a, b) = c.split_at(entry - 4);
            let a = if a.len() == 8 {
                i64::from_be_bytes(a.try_into().expect("8 bytes"))
            } else {
                i64::from(i32::from_be_bytes(a.try_into().expect("4 bytes")))
            };
            (a, i32::from_be_bytes(b.try_into().expect("4 bytes")))
        })
        .collect();
    (entries, bytes.len() % entry)
}

pub(super) fn dump_offset_index(path: &Path) -> Res<bool> {
    let bytes = read_file(path)?;
    let base = base_offset_of(path, INDEX_SUFFIX).unwrap_or(0);
    let log = sibling(path, LOG_SUFFIX);
    let segment_len = std::fs::metadata(&log).map_or(u64::MAX, |m| m.len());
    let (entries, partial) = raw_entries(&bytes, OFFSET_ENTRY_LEN);
    for (relative, position) in &entries {
        out!("offset: {} position: {position}", base as i64 + relative);
    }
    if partial > 0 {
        out!("({partial} bytes of a partial entry at the end)");
    }
    match OffsetIndex::decode(&bytes, segment_len) {
        Ok(_) => Ok(true),
        Err(error) => {
            out!("Invalid index: {error}");
            Ok(false)
        }
    }
}

pub(super) fn dump_time_index(path: &Path) -> Res<bool> {
    let bytes = read_file(path)?;
    let base = base_offset_of(path, TIME_INDEX_SUFFIX).unwrap_or(0);
    let (entries, partial) = raw_entries(&bytes, TIME_ENTRY_LEN);
    for (timestamp, relative) in &entries {
        out!(
            "timestamp: {timestamp} offset: {}",
            base as i64 + i64::from(*relative)
        );
    }
    if partial > 0 {
        out!("({partial} bytes of a partial entry at the end)");
    }
    match TimeIndex::decode(&bytes) {
        Ok(_) => Ok(true),
        Err(error) => {
            out!("Invalid time index: {error}");
            Ok(false)
        }
    }
}
