//! dsys-log against the `commitlog` crate (0.2) and against the raw file system on the
//! same workloads, in the same run: append, fsync'd append, sequential read, and
//! open / recovery of a 1 GiB log.
//!
//! Records: 1 KiB values (64 distinct pseudo-random values, no key, no headers), 64
//! per write. dsys-log encodes them as one Kafka record batch v2 (61-byte header,
//! 1,033 bytes per record: 66,173 bytes per batch); commitlog as a `MessageBuf` of 64
//! messages (20-byte header each: 66,816 bytes). Every group counts **payload
//! bytes** in [`Throughput::Bytes`] (64 KiB per write), so the bandwidths criterion
//! prints are comparable across contenders with different framings.
//!
//! Groups, contenders named `group/contender` as `.ci/bench-ratios` expects (peers
//! start with `commitlog`; `raw-*` are the physical ceilings):
//! - `append/1KiBx64`: one iteration appends one 64-record batch, page cache only
//!   (no fsync). `dsys` builds the batch inside the timing
//!   (`BatchBuilder::with_capacity` + 64 `push` + `finish`: encoding and the CRC-32C
//!   are part of appending) and appends it with [`FlushPolicy::os`] (the default
//!   config: 1 GiB segments). `commitlog` fills a `MessageBuf` inside the timing too
//!   (64 `push`, each with its CRC-32C; the buffer is `clear`ed and reused, the
//!   peer's cheapest way, as in its own benches) and appends it (default options: 1 GB
//!   segments, an 8-byte index entry per message). `raw-write` is
//!   `File::write_all` of a pre-built dsys batch (the same 66,173 bytes dsys writes),
//!   sequentially into one file: the cost of the bytes alone.
//! - `append-fsync-1MiB/1KiBx64`: the same, made durable every 1 MiB. `dsys` uses
//!   `FlushPolicy::every_bytes(1 MiB)` (an fsync once more than 1 MiB is unflushed:
//!   every 16 batches); `raw-write` calls `sync_data` by the same rule; `commitlog`
//!   calls `CommitLog::flush` by the same rule on its own bytes (also every 16
//!   batches). commitlog 0.2's `flush` does **not** fsync the segment (it is
//!   `File::flush`, a no-op, plus an `msync` of the index pages), so
//!   `commitlog-fsync` adds `sync_data` on a second handle of the active segment file
//!   (fsync works on the inode): the durable equivalent.
//! - `read/sequential`: one iteration reads a pre-written 128 MiB-payload log front
//!   to back (page cache warm). `dsys` loops `Log::read(offset, 1 MiB)` and decodes
//!   every record, summing value lengths (dsys trusts batches it validated at
//!   recovery and does not re-check CRCs on reads); `commitlog` loops
//!   `CommitLog::read(offset, ReadLimit::max_bytes(1 MiB))` and sums payload lengths
//!   (its read re-checks every message's CRC-32C); `raw-read` reads the dsys segment
//!   file with 1 MiB `read_at` calls into one reused buffer.
//! - `open/1GiB`: a log of 1 GiB payload (16,384 batches of 64 × 1 KiB), written
//!   once per implementation before the group (and fsynced, so writeback does not
//!   run during the measurements). `dsys-clean` opens after `close()` (clean
//!   checkpoint: index files are loaded, no batch is read); `dsys-recovery` opens with
//!   `recovery.checkpoint` deleted, so every batch of every segment is validated
//!   (length, CRC-32C, record framing) as after a crash; `commitlog` is
//!   `CommitLog::new` (it validates nothing on open: the figure is for reference);
//!   `raw-read` reads the dsys segment files sequentially (1 MiB `read_at`, one
//!   buffer) and `raw-read-crc32c` also computes their CRC-32C: the ceiling for a
//!   validating recovery. What each open changes on disk is put back outside the
//!   timing (the clean checkpoint's bytes rewritten, or the checkpoint deleted again).
//!
//! Appends run in chunks of [`CHUNK_BATCHES`] batches (64 MiB payload): each chunk
//! gets a fresh directory and a freshly opened log or file, and only the appends
//! are timed (`iter_custom`). Directories are deleted between chunks, outside the
//! timing, so files never grow past one chunk and dirty pages never reach the disk
//! in the page-cache group. All files live under [`std::env::temp_dir`] (or
//! `$DSYS_LOG_BENCH_DIR`) and are deleted when each group ends.
//!
//! Run (about 2 min on 2 cores; 2.3 GB of disk at most, in the open group):
//!
//! ```sh
//! cargo bench -p dsys-log --bench append
//! python3 .ci/bench-ratios --peer commitlog append/ append-fsync read/ open/
//! python3 .ci/bench-ratios --peer raw append/ append-fsync read/ open/
//! ```
//!
//! A ratio (peer time / dsys time) above 1 means dsys is faster; against `raw-*`
//! it is the fraction of the raw bandwidth dsys reaches.

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use dsys_log::{BatchBuf, BatchBuilder, FlushPolicy, Log, LogConfig, NewRecord, StdDir};

/// Bytes of every record value.
const VALUE_BYTES: usize = 1024;
/// Records per write (one batch / one `MessageBuf`).
const RECORDS_PER_BATCH: usize = 64;
/// Payload bytes per write: the unit of every group's throughput.
const PAYLOAD_PER_BATCH: u64 = (VALUE_BYTES * RECORDS_PER_BATCH) as u64;
/// Capacity handed to `BatchBuilder::with_capacity`. Each record takes 1,033 bytes
/// (66,112 for 64), but `push` reserves 5 bytes more than a record's body before
/// writing it, so an exact capacity grows the buffer at the last record; 16 bytes of
/// slack per record keep every batch in one allocation.
const BATCH_CAPACITY: usize = RECORDS_PER_BATCH * (VALUE_BYTES + 16);
/// Batches appended into one fresh directory (64 MiB of payload).
const CHUNK_BATCHES: u64 = 1024;
/// Bytes between fsyncs in the `append-fsync-1MiB` group.
const FSYNC_BYTES: u64 = 1 << 20;
/// Batches of the log read in `read/sequential` (128 MiB of payload).
const READ_BATCHES: u64 = 2048;
/// Batches of the log opened in `open/1GiB` (1 GiB of payload).
const OPEN_BATCHES: u64 = 16384;
/// Bytes per read call in the read and raw-read contenders.
const READ_CHUNK: usize = 1 << 20;
/// Record timestamp and the appender's clock (2026-01-01T00:00:00Z): constant, so
/// no segment rolls by time and every timestamp delta is one byte.
const NOW_MS: i64 = 1_767_225_600_000;
/// Name of commitlog's first segment file.
const COMMITLOG_FIRST_SEGMENT: &str = "00000000000000000000.log";
/// dsys-log's recovery checkpoint (see `Log::open`).
const CHECKPOINT_FILE: &str = "recovery.checkpoint";

/// A directory deleted on drop (also when a contender panics).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let root = std::env::var_os("DSYS_LOG_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = root.join(format!("dsys-log-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch directory");
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// When the append contenders make their writes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Never inside the timing (page cache).
    Os,
    /// An fsync once more than [`FSYNC_BYTES`] are unsynced.
    Fsync1MiB,
    /// commitlog only: `CommitLog::flush` by the same rule (which does not fsync).
    PeerFlushOnly,
}

/// 64 distinct pseudo-random 1 KiB values (xorshift64).
fn values() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..RECORDS_PER_BATCH)
        .map(|_| {
            (0..VALUE_BYTES)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// Encodes one dsys batch of `values`.
fn dsys_batch(values: &[Vec<u8>]) -> BatchBuf {
    let mut builder = BatchBuilder::with_capacity(BATCH_CAPACITY);
    for value in values {
        builder.push(NewRecord::new(NOW_MS, None, Some(value)));
    }
    builder.finish().expect("64 records")
}

fn dsys_config(durability: Durability) -> LogConfig {
    let mut config = LogConfig::default();
    config.flush = match durability {
        Durability::Os => FlushPolicy::os(),
        Durability::Fsync1MiB | Durability::PeerFlushOnly => FlushPolicy::every_bytes(FSYNC_BYTES),
    };
    config
}

/// Runs `iters` appends as chunks of at most [`CHUNK_BATCHES`], each in a fresh
/// directory under `scratch`; returns the sum of the chunks' timed parts.
fn chunked(scratch: &Path, iters: u64, mut chunk: impl FnMut(&Path, u64) -> Duration) -> Duration {
    let dir = scratch.join("chunk");
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK_BATCHES);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create chunk directory");
        total += chunk(&dir, n);
        left -= n;
    }
    let _ = fs::remove_dir_all(&dir);
    total
}

fn dsys_append_chunk(dir: &Path, values: &[Vec<u8>], n: u64, durability: Durability) -> Duration {
    let storage = StdDir::open(dir).expect("dir");
    let (mut log, _) = Log::open(storage, dsys_config(durability)).expect("open");
    let start = Instant::now();
    for _ in 0..n {
        black_box(log.append(dsys_batch(values), NOW_MS).expect("append"));
    }
    let elapsed = start.elapsed();
    assert_eq!(log.next_offset(), n * RECORDS_PER_BATCH as u64);
    if durability == Durability::Fsync1MiB && n >= 16 {
        assert!(log.durable_offset() > 0, "the flush policy fsynced");
    }
    elapsed
}

fn commitlog_append_chunk(
    dir: &Path,
    values: &[Vec<u8>],
    n: u64,
    durability: Durability,
) -> Duration {
    let mut log = CommitLog::new(LogOptions::new(dir)).expect("open");
    // A second handle on the active segment, to fsync what `flush` leaves unsynced.
    let segment = File::open(dir.join(COMMITLOG_FIRST_SEGMENT)).expect("segment file");
    let mut buf = MessageBuf::default();
    let mut unsynced = 0u64;
    let start = Instant::now();
    for _ in 0..n {
        buf.clear();
        for value in values {
            buf.push(value).expect("push");
        }
        unsynced += buf.bytes().len() as u64;
        black_box(log.append(&mut buf).expect("append"));
        if durability != Durability::Os && unsynced > FSYNC_BYTES {
            log.flush().expect("flush");
            if durability == Durability::Fsync1MiB {
                segment.sync_data().expect("fsync");
            }
            unsynced = 0;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(log.next_offset(), n * RECORDS_PER_BATCH as u64);
    elapsed
}

fn raw_write_chunk(dir: &Path, batch: &[u8], n: u64, durability: Durability) -> Duration {
    let mut file = File::create(dir.join("raw.log")).expect("create");
    let mut unsynced = 0u64;
    let start = Instant::now();
    for _ in 0..n {
        file.write_all(black_box(batch)).expect("write");
        unsynced += batch.len() as u64;
        if durability == Durability::Fsync1MiB && unsynced > FSYNC_BYTES {
            file.sync_data().expect("fsync");
            unsynced = 0;
        }
    }
    start.elapsed()
}

fn append_group(c: &mut Criterion, name: &str, durability: Durability) {
    let values = values();
    let encoded = dsys_batch(&values).as_slice().to_vec();
    let scratch = Scratch::new(name.split('/').next().expect("group name"));
    let dir = scratch.path();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(PAYLOAD_PER_BATCH));
    group.bench_function("dsys", |b| {
        b.iter_custom(|iters| {
            chunked(dir, iters, |d, n| {
                dsys_append_chunk(d, &values, n, durability)
            })
        });
    });
    let peer_flush = match durability {
        Durability::Os => Durability::Os,
        _ => Durability::PeerFlushOnly,
    };
    group.bench_function("commitlog", |b| {
        b.iter_custom(|iters| {
            chunked(dir, iters, |d, n| {
                commitlog_append_chunk(d, &values, n, peer_flush)
            })
        });
    });
    if durability == Durability::Fsync1MiB {
        group.bench_function("commitlog-fsync", |b| {
            b.iter_custom(|iters| {
                chunked(dir, iters, |d, n| {
                    commitlog_append_chunk(d, &values, n, durability)
                })
            });
        });
    }
    group.bench_function("raw-write", |b| {
        b.iter_custom(|iters| {
            chunked(dir, iters, |d, n| {
                raw_write_chunk(d, &encoded, n, durability)
            })
        });
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    append_group(c, "append/1KiBx64", Durability::Os);
}

fn append_fsync(c: &mut Criterion) {
    append_group(c, "append-fsync-1MiB/1KiBx64", Durability::Fsync1MiB);
}

/// Writes `batches` dsys batches into `dir` and closes the log cleanly (fsynced).
fn write_dsys_log(dir: &Path, values: &[Vec<u8>], batches: u64) {
    let (mut log, _) =
        Log::open(StdDir::open(dir).expect("dir"), LogConfig::default()).expect("open");
    for _ in 0..batches {
        log.append(dsys_batch(values), NOW_MS).expect("append");
    }
    log.close().expect("close");
}

/// Writes `batches` commitlog message sets into `dir` and fsyncs its files.
fn write_commitlog(dir: &Path, values: &[Vec<u8>], batches: u64) {
    let mut log = CommitLog::new(LogOptions::new(dir)).expect("open");
    let mut buf = MessageBuf::default();
    for _ in 0..batches {
        buf.clear();
        for value in values {
            buf.push(value).expect("push");
        }
        log.append(&mut buf).expect("append");
    }
    log.flush().expect("flush");
    drop(log);
    for entry in fs::read_dir(dir).expect("list") {
        File::open(entry.expect("entry").path())
            .expect("open")
            .sync_all()
            .expect("fsync");
    }
}

/// The `.log` files of a dsys log directory, in offset order.
fn dsys_segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Reads `files` front to back with 1 MiB `read_at` calls into `buf`; returns the
/// bytes read, and their CRC-32C when `crc` is set.
fn raw_read(files: &[PathBuf], buf: &mut [u8], crc: bool) -> (u64, u32) {
    let mut total = 0u64;
    let mut sum = 0u32;
    for path in files {
        let file = File::open(path).expect("open");
        let mut pos = 0u64;
        loop {
            let n = file.read_at(buf, pos).expect("read");
            if n == 0 {
                break;
            }
            if crc {
                sum = crc32c::crc32c_append(sum, &buf[..n]);
            }
            pos += n as u64;
        }
        total += pos;
    }
    (total, sum)
}

fn read(c: &mut Criterion) {
    let values = values();
    let scratch = Scratch::new("read");
    let dsys_dir = scratch.path().join("dsys");
    let peer_dir = scratch.path().join("commitlog");
    write_dsys_log(&dsys_dir, &values, READ_BATCHES);
    write_commitlog(&peer_dir, &values, READ_BATCHES);
    let (log, _) =
        Log::open(StdDir::open(&dsys_dir).expect("dir"), LogConfig::default()).expect("open");
    let peer = CommitLog::new(LogOptions::new(&peer_dir)).expect("open");
    let segments = dsys_segment_files(&dsys_dir);
    let payload = READ_BATCHES * PAYLOAD_PER_BATCH;
    let mut buf = vec![0u8; READ_CHUNK];

    let mut group = c.benchmark_group("read/sequential");
    group.throughput(Throughput::Bytes(payload));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("dsys", |b| {
        b.iter(|| {
            let mut offset = 0u64;
            let mut sum = 0u64;
            loop {
                let batches = log.read(offset, READ_CHUNK).expect("read");
                let Some(last) = batches.last() else { break };
                offset = last.last_offset() + 1;
                for batch in &batches {
                    for record in batch.records() {
                        sum += record.expect("record").value.map_or(0, |v| v.len() as u64);
                    }
                }
            }
            assert_eq!(sum, payload);
        });
    });
    group.bench_function("commitlog", |b| {
        b.iter(|| {
            let mut offset = 0u64;
            let mut sum = 0u64;
            loop {
                let messages = peer
                    .read(offset, ReadLimit::max_bytes(READ_CHUNK))
                    .expect("read");
                let mut last = None;
                for message in messages.iter() {
                    sum += message.payload().len() as u64;
                    last = Some(message.offset());
                }
                match last {
                    Some(l) => offset = l + 1,
                    None => break,
                }
            }
            assert_eq!(sum, payload);
        });
    });
    group.bench_function("raw-read", |b| {
        b.iter(|| black_box(raw_read(&segments, &mut buf, false)));
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let values = values();
    let scratch = Scratch::new("open");
    let dsys_dir = scratch.path().join("dsys");
    let peer_dir = scratch.path().join("commitlog");
    write_dsys_log(&dsys_dir, &values, OPEN_BATCHES);
    write_commitlog(&peer_dir, &values, OPEN_BATCHES);
    let checkpoint = dsys_dir.join(CHECKPOINT_FILE);
    let clean_checkpoint = fs::read(&checkpoint).expect("clean checkpoint");
    let records = OPEN_BATCHES * RECORDS_PER_BATCH as u64;
    let segments = dsys_segment_files(&dsys_dir);
    let mut buf = vec![0u8; READ_CHUNK];

    let mut group = c.benchmark_group("open/1GiB");
    group.throughput(Throughput::Bytes(OPEN_BATCHES * PAYLOAD_PER_BATCH));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("dsys-clean", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fs::write(&checkpoint, &clean_checkpoint).expect("restore checkpoint");
                let start = Instant::now();
                let storage = StdDir::open(&dsys_dir).expect("dir");
                let (log, report) = Log::open(storage, LogConfig::default()).expect("open");
                total += start.elapsed();
                assert!(report.clean_shutdown && report.validated_segments == 0);
                assert_eq!(report.next_offset, records);
                drop(log);
            }
            total
        });
    });
    group.bench_function("dsys-recovery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = fs::remove_file(&checkpoint);
                let start = Instant::now();
                let storage = StdDir::open(&dsys_dir).expect("dir");
                let (log, report) = Log::open(storage, LogConfig::default()).expect("open");
                total += start.elapsed();
                assert_eq!(report.validated_segments, report.segments);
                assert_eq!(report.truncated_at, None);
                assert_eq!(report.next_offset, records);
                drop(log);
            }
            total
        });
    });
    group.bench_function("commitlog", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let log = CommitLog::new(LogOptions::new(&peer_dir)).expect("open");
                total += start.elapsed();
                assert_eq!(log.next_offset(), records);
                drop(log);
            }
            total
        });
    });
    group.bench_function("raw-read", |b| {
        b.iter(|| black_box(raw_read(&segments, &mut buf, false)));
    });
    group.bench_function("raw-read-crc32c", |b| {
        b.iter(|| black_box(raw_read(&segments, &mut buf, true)));
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = append, append_fsync, read, open
}
criterion_main!(benches);
