//! `dsys-log`: writes test data into dsys-log partition directories, dumps
//! segment and index files the way Kafka's `DumpLogSegments` does, and
//! verifies a directory of segments without changing it.
//!
//! ```text
//! dsys-log produce /tmp/t --partitions 4 --records 100000 --batch 200
//! dsys-log dump /tmp/t/test-0/00000000000000000000.log --records
//! dsys-log dump /tmp/t/test-0/00000000000000000000.index
//! dsys-log verify /tmp/t
//! ```
//!
//! Exit status: 0 when everything is valid, 1 when `dump` or `verify` found
//! damage (an invalid batch, an index entry that points nowhere), 2 for
//! usage and I/O errors.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use comfy_table::{CellAlignment, ContentArrangement};
use dsys_log::{
    AppendError, BatchBuilder, BatchHeader, Compression, HEADER_LEN, Log, LogConfig, NewRecord,
    OFFSET_ENTRY_LEN, OffsetIndex, ProducerStamp, RecordBatch, StdDir, TIME_ENTRY_LEN, TimeIndex,
    Timestamp, TimestampType, partition_for_key,
};

/// Write, dump and verify dsys-log partition directories (Kafka's segment
/// format: `<base offset>.log`, `.index`, `.timeindex`).
#[derive(Debug, Parser)]
#[command(name = "dsys-log", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append generated records to a partition directory, or to P partition
    /// directories `<DIR>/<TOPIC>-<p>`, and report offsets, bytes and time.
    Produce(ProduceArgs),
    /// Print the batches of .log files, the entries of .index and
    /// .timeindex files (as Kafka's DumpLogSegments does). Stops at the
    /// first invalid batch and exits 1.
    Dump(DumpArgs),
    /// Check every segment and index under a directory without changing
    /// anything: batches, CRCs, records, offsets, index entries. Exits 1 if
    /// anything is damaged.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// Partition directory (created if missing); with --partitions, the
    /// topic directory holding `<TOPIC>-<p>` subdirectories.
    dir: PathBuf,
    /// Records to append in all.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Records per batch (per partition).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Distinct keys, `key-0` ... `key-<K-1>`, cycled; 0 writes null keys
    /// (batches then go round-robin over the partitions).
    #[arg(long, default_value_t = 1_000)]
    key_space: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Write P partitions `<DIR>/<TOPIC>-0` ... `<DIR>/<TOPIC>-<P-1>`, keys
    /// placed by Kafka's murmur2 partitioner.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: Option<u32>,
    /// Topic name of the partition directories.
    #[arg(long, default_value = "test")]
    topic: String,
    /// Roll segments at this size (`segment.bytes`; default 1 GiB).
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Bytes between index entries (`index.interval.bytes`; default 4096).
    #[arg(long)]
    index_interval_bytes: Option<u64>,
    /// Timestamp of the first record, in Unix milliseconds (default: now);
    /// record i gets this plus i.
    #[arg(long)]
    timestamp: Option<Timestamp>,
    /// Idempotent producer id (default: a fresh one, the number of records
    /// already in the partitions).
    #[arg(long, conflicts_with = "no_idempotence")]
    producer_id: Option<i64>,
    /// Write batches without producer id, epoch and sequence.
    #[arg(long)]
    no_idempotence: bool,
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// Segment files: .log, .index or .timeindex.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also print every record of each batch (.log files).
    #[arg(long)]
    records: bool,
    /// Print at most this many bytes of each key and value.
    #[arg(long, default_value_t = 40)]
    max_bytes: usize,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Directory to check: a partition directory, or any directory above
    /// partition directories.
    dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Produce(args) => produce(&args).map(|()| true),
        Command::Dump(args) => dump(&args),
        Command::Verify(args) => verify(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

type Res<T = ()> = Result<T, Box<dyn Error>>;

/// `println!` that ends the program quietly when stdout is closed (as when
/// piped into `head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        if let Err(error) = writeln!(std::io::stdout(), $($arg)*) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(error.into());
        }
    }};
}

// --- Formatting --------------------------------------------------------------------------

/// A plain ASCII table, as the tour prints them: a `-+-` rule under the
/// header, ` | ` between columns.
struct Table(comfy_table::Table);

impl Table {
    fn new(header: &[&str], numeric: &[usize]) -> Self {
        let mut table = comfy_table::Table::new();
        table
            .load_preset("     -+ |          ")
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty()
            .set_header(header.to_vec());
        for &index in numeric {
            if let Some(column) = table.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        Table(table)
    }

    fn row<I>(&mut self, cells: I)
    where
        I: IntoIterator,
        I::Item: Display,
    {
        let cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        self.0.add_row(cells);
    }

    fn print(&self) -> Res {
        for line in self.0.lines() {
            out!("  {}", line.trim_end());
        }
        Ok(())
    }
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Up to `max` bytes of `bytes` as text: invalid UTF-8 replaced, control
/// characters escaped, `...` when cut.
fn show_bytes(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if cut {
        out.push_str("...");
    }
    out
}

/// The whole file; an error names the path.
fn read_file(path: &Path) -> Res<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

// --- Segment files -------------------------------------------------------------------------

const LOG_SUFFIX: &str = ".log";
const INDEX_SUFFIX: &str = ".index";
const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// The base offset in a Kafka segment file name (`00000000000000000042.log`).
fn base_offset_of(path: &Path, suffix: &str) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `path` with its extension replaced (`...42.log` to `...42.index`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}{suffix}"))
}

/// Checks the records of an intact batch without assuming the offset deltas
/// run 0, 1, 2...: compaction leaves gaps, so (as the log's own recovery
/// does) offsets must only increase inside the batch's range, and the count
/// must match `recordsCount`. Compressed batches pass (their records are not
/// decoded here).
fn check_records(batch: &RecordBatch) -> Result<(), String> {
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
enum Step {
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
struct Batches {
    bytes: Bytes,
    position: usize,
    done: bool,
}

impl Batches {
    fn new(bytes: Bytes) -> Self {
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

// --- produce -------------------------------------------------------------------------------

struct Partition {
    name: String,
    log: Log<StdDir>,
    builder: BatchBuilder,
    next_sequence: i32,
    first_offset: Option<u64>,
    last_offset: u64,
    records: u64,
    batches: u64,
    bytes: u64,
}

fn produce(args: &ProduceArgs) -> Res {
    let mut config = LogConfig::default();
    if let Some(bytes) = args.segment_bytes {
        config.segment_bytes = bytes;
    }
    if let Some(bytes) = args.index_interval_bytes {
        config.index_interval_bytes = bytes;
    }
    config.validate()?;
    let dirs: Vec<(String, PathBuf)> = match args.partitions {
        None => vec![(args.dir.display().to_string(), args.dir.clone())],
        Some(count) => (0..count)
            .map(|p| {
                let name = format!("{}-{p}", args.topic);
                (name.clone(), args.dir.join(name))
            })
            .collect(),
    };
    let mut partitions = Vec::new();
    for (name, dir) in dirs {
        let (log, recovery) = StdDir::open(&dir)
            .map_err(Box::<dyn Error>::from)
            .and_then(|storage| Ok(Log::open(storage, config.clone())?))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if recovery.truncated_bytes > 0 || recovery.deleted_segments > 0 {
            out!(
                "{name}: recovery cut {} damaged bytes and {} segments",
                recovery.truncated_bytes,
                recovery.deleted_segments
            );
        }
        partitions.push(Partition {
            name,
            log,
            builder: BatchBuilder::new(),
            next_sequence: 0,
            first_offset: None,
            last_offset: 0,
            records: 0,
            batches: 0,
            bytes: 0,
        });
    }
    let existing: u64 = partitions.iter().map(|p| p.log.next_offset()).sum();
    let producer = if args.no_idempotence {
        None
    } else {
        Some(args.producer_id.unwrap_or(existing as i64))
    };
    let start = args.timestamp.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    });
    out!(
        "producing {} records into {} partition(s): {} per batch, {}, {}-byte values, {}",
        thousands(args.records),
        partitions.len(),
        args.batch,
        if args.key_space == 0 {
            "null keys".to_owned()
        } else {
            format!("{} keys", thousands(args.key_space))
        },
        args.value_bytes,
        producer.map_or("no producer id".to_owned(), |id| format!(
            "producer id {id} epoch 0"
        )),
    );

    let count = partitions.len() as u32;
    let mut round_robin = 0u32;
    let mut value = Vec::with_capacity(args.value_bytes);
    let started = Instant::now();
    for i in 0..args.records {
        let key = (args.key_space > 0).then(|| format!("key-{}", i % args.key_space));
        let p = match &key {
            Some(key) => partition_for_key(key.as_bytes(), count),
            // Kafka's sticky partitioner for null keys: a whole batch to one partition.
            None => round_robin,
        } as usize;
        fill_value(&mut value, i, args.value_bytes);
        let timestamp = start.saturating_add(i as i64);
        let part = &mut partitions[p];
        part.builder.push(NewRecord::new(
            timestamp,
            key.as_deref().map(str::as_bytes),
            Some(&value),
        ));
        if part.builder.len() >= args.batch as usize {
            append(part, producer, timestamp)?;
            if key.is_none() {
                round_robin = (round_robin + 1) % count;
            }
        }
    }
    let end = start.saturating_add(args.records as i64);
    for part in &mut partitions {
        append(part, producer, end)?;
    }
    let appended = started.elapsed();

    let mut table = Table::new(
        &[
            "partition",
            "offsets",
            "records",
            "batches",
            "bytes",
            "segments",
            "next offset",
        ],
        &[2, 3, 4, 5, 6],
    );
    for part in &partitions {
        table.row([
            part.name.clone(),
            part.first_offset
                .map_or("-".to_owned(), |f| format!("{f}..{}", part.last_offset)),
            thousands(part.records),
            thousands(part.batches),
            thousands(part.bytes),
            part.log.segment_count().to_string(),
            part.log.next_offset().to_string(),
        ]);
    }
    let records: u64 = partitions.iter().map(|p| p.records).sum();
    let batches: u64 = partitions.iter().map(|p| p.batches).sum();
    let bytes: u64 = partitions.iter().map(|p| p.bytes).sum();
    let closing = Instant::now();
    for part in partitions {
        part.log.close()?;
    }
    let closed = closing.elapsed();
    table.print()?;
    let secs = appended.as_secs_f64().max(1e-9);
    out!(
        "appended {} records in {} batches, {} bytes, in {} ({} records/s, {:.1} MiB/s); \
         closed (fsync, indexes, checkpoint) in {}",
        thousands(records),
        thousands(batches),
        thousands(bytes),
        millis(appended),
        thousands((records as f64 / secs) as u64),
        bytes as f64 / secs / (1024.0 * 1024.0),
        millis(closed),
    );
    Ok(())
}

/// Value `i`: its number, then the alphabet over and over, `len` bytes.
fn fill_value(value: &mut Vec<u8>, i: u64, len: usize) {
    value.clear();
    value.extend(format!("value-{i} ").bytes().take(len));
    let mut letter = 0u8;
    while value.len() < len {
        value.push(b'a' + letter);
        letter = (letter + 1) % 26;
    }
}

/// Appends the partition's pending batch, if any.
fn append(part: &mut Partition, producer: Option<i64>, now: Timestamp) -> Res {
    let mut builder = std::mem::take(&mut part.builder);
    if builder.is_empty() {
        return Ok(());
    }
    let records = builder.len();
    if let Some(producer_id) = producer {
        builder = builder.producer(ProducerStamp {
            producer_id,
            producer_epoch: 0,
            base_sequence: part.next_sequence,
        });
        part.next_sequence = part.next_sequence.wrapping_add(records as i32) & i32::MAX;
    }
    let batch = builder.finish().ok_or("a batch with records")?;
    let size = batch.len() as u64;
    let appended = part.log.append(batch, now).map_err(|e| {
        let hint = if matches!(e, AppendError::Producer(_)) {
            " (this producer id wrote here before: pick another --producer-id)"
        } else {
            ""
        };
        format!("{}: {e}{hint}", part.name)
    })?;
    part.first_offset.get_or_insert(appended.base_offset);
    part.last_offset = appended.last_offset;
    part.records += records as u64;
    part.batches += 1;
    part.bytes += size;
    Ok(())
}

// --- dump ----------------------------------------------------------------------------------

/// Dumps every file; `Ok(false)` if any was invalid.
fn dump(args: &DumpArgs) -> Res<bool> {
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

fn dump_log(path: &Path, args: &DumpArgs) -> Res<bool> {
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
fn batch_line(h: &BatchHeader, position: u64, valid: bool) -> String {
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

fn dump_records(batch: &RecordBatch, max_bytes: usize) -> Res {
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
fn raw_entries(bytes: &[u8], entry: usize) -> (Vec<(i64, i32)>, usize) {
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

fn dump_offset_index(path: &Path) -> Res<bool> {
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

fn dump_time_index(path: &Path) -> Res<bool> {
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

// --- verify --------------------------------------------------------------------------------

/// What `verify` found in one segment.
#[derive(Default)]
struct SegmentCheck {
    batches: u64,
    records: u64,
    first_offset: Option<u64>,
    next_offset: Option<u64>,
    bytes: u64,
    index_entries: Option<usize>,
    time_entries: Option<usize>,
    /// Damage, each as a sentence naming the position.
    problems: Vec<String>,
}

fn verify(args: &VerifyArgs) -> Res<bool> {
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
fn collect_segments(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<(u64, PathBuf)>>) -> Res {
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
fn verify_segment(log: &Path, base: u64) -> Res<SegmentCheck> {
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
