//! InstallSnapshot of a 64 MiB snapshot to a follower that needs it, end to
//! end through the public API, against raft-rs 0.7 (one `MsgSnapshot`
//! carrying the whole snapshot) and the physical floor, in the same run.
//!
//! Three nodes in one thread, a perfect in-memory network. Node 1 leads;
//! node 3 is cut off while 100 entries commit on nodes 1 and 2; the leader's
//! application then writes a 64 MiB snapshot of its state machine to a file
//! (page cache), records it, and compacts its log, so node 3 can only be
//! caught up by snapshot. Timing starts when node 3 is reachable again and
//! ends when node 3 has restored the snapshot and the leader counts it as
//! holding the snapshot's index. Nothing ticks while messages are in
//! flight; when the network is quiet the leader ticks once (a heartbeat
//! round, one tick = one `heartbeat_tick`), as its timer would.
//!
//! The applications do the same I/O on both sides: the leader's reads the
//! snapshot from its file (dsys: each `Output::ReadSnapshot` into a fresh
//! buffer of that chunk's size, handed to `snapshot_chunk`; raft-rs: the
//! whole file into one buffer when raft-rs asks `Storage::snapshot`), the
//! follower's writes what it receives to a staging file (dsys: each
//! `Output::SnapshotChunk` at its offset; raft-rs: the snapshot's data at
//! `Ready::snapshot`), then restores (`MemStorage::apply_snapshot` on both).
//!
//! Peak heap is measured with a counting global allocator: the highest heap
//! above what was allocated when timing started. The snapshot itself lives
//! in files, so what dsys shows is what chunking keeps in memory
//! (`snapshot_chunk_size` × `max_snapshot_chunks_in_flight`, plus the chunk
//! being read); raft-rs holds the whole snapshot in one buffer (in one
//! process the leader's message and the follower's received copy are the
//! same `Bytes`; across a network each side holds its own).
//!
//! Floors: a `memcpy` of 64 MiB between two buffers already in memory, and
//! copying the snapshot file to a fresh file in 1 MiB reads and writes (the
//! least I/O either application does here).
//!
//! ```text
//! cargo bench --manifest-path bench/Cargo.toml --bench install_snapshot
//! ```

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;

mod snapshot_transfer;

use snapshot_transfer::{dsys::DsysTransfer, raft_rs::RaftRsTransfer};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// The snapshot's size.
const SNAPSHOT_LEN: usize = 64 << 20;

/// Transfers (and floor copies) per case; every one is reported.
const RUNS: usize = 5;

/// (chunk size, chunks in flight) for dsys.
const CHUNKINGS: [(u64, usize); 5] = [
    (64 << 10, 4),
    (256 << 10, 4),
    (1 << 20, 1),
    (1 << 20, 4),
    (4 << 20, 4),
];

/// One measured transfer: wall time, peak heap above the start, and the
/// minor page faults the process took meanwhile (fresh memory being mapped
/// in: large buffers the allocator got from, or gave back to, the kernel).
pub(crate) struct Measure {
    pub(crate) time: Duration,
    pub(crate) peak_heap: usize,
    pub(crate) page_faults: u64,
}

/// This process's minor page faults so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    after
        .split(' ')
        .nth(7)
        .and_then(|f| f.parse().ok())
        .expect("minflt")
}

/// Runs `transfer` (already set up), measuring time and peak heap.
pub(crate) fn measure(transfer: impl FnOnce()) -> Measure {
    let base = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let faults = minor_faults();
    let start = Instant::now();
    transfer();
    let time = start.elapsed();
    Measure {
        time,
        peak_heap: HEAP.peak_usage().saturating_sub(base),
        page_faults: minor_faults() - faults,
    }
}

/// Writes the leader's snapshot file: `SNAPSHOT_LEN` deterministic bytes.
fn write_snapshot(path: &Path) {
    let mut data = vec![0u8; SNAPSHOT_LEN];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for word in data.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, &data).expect("write the snapshot file");
}

/// CRC-32C of a whole file, to check a staged copy.
fn file_crc(path: &Path) -> u32 {
    crc32c::crc32c(&std::fs::read(path).expect("read back"))
}

fn report(name: &str, runs: &[Measure]) {
    let mut times: Vec<f64> = runs.iter().map(|m| m.time.as_secs_f64() * 1e3).collect();
    let all: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    times.sort_by(f64::total_cmp);
    let mut peaks: Vec<usize> = runs.iter().map(|m| m.peak_heap).collect();
    peaks.sort_unstable();
    let mut faults: Vec<u64> = runs.iter().map(|m| m.page_faults).collect();
    faults.sort_unstable();
    println!(
        "{name:<28} median {:>7.1} ms  ({:>6.0} MiB/s)  runs [{}] ms  peak heap median {:>8.2} MiB (max {:.2} MiB)  \
         minor faults median {}",
        times[times.len() / 2],
        64.0 / (times[times.len() / 2] / 1e3),
        all.join(", "),
        peaks[peaks.len() / 2] as f64 / f64::from(1 << 20),
        peaks[peaks.len() - 1] as f64 / f64::from(1 << 20),
        faults[faults.len() / 2],
    );
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let dir: PathBuf =
        std::env::temp_dir().join(format!("dsys-install-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let snapshot = dir.join("snapshot");
    let staging = dir.join("staging");
    write_snapshot(&snapshot);
    let want_crc = file_crc(&snapshot);
    println!(
        "InstallSnapshot of {} MiB, {RUNS} runs per case",
        SNAPSHOT_LEN >> 20
    );

    if wanted("floor-memcpy") {
        let src = vec![1u8; SNAPSHOT_LEN];
        let mut dst = vec![0u8; SNAPSHOT_LEN];
        let runs: Vec<Measure> = (0..RUNS)
            .map(|_| measure(|| dst.copy_from_slice(black_box(&src))))
            .collect();
        black_box(&dst);
        report("floor-memcpy", &runs);
    }
    if wanted("floor-file-copy") {
        let runs: Vec<Measure> = (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&staging);
                let from = File::open(&snapshot).expect("open");
                let to = File::create(&staging).expect("create");
                measure(|| {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut offset = 0;
                    while offset < SNAPSHOT_LEN as u64 {
                        from.read_exact_at(&mut buf, offset).expect("read");
                        to.write_all_at(&buf, offset).expect("write");
                        offset += buf.len() as u64;
                    }
                })
            })
            .collect();
        assert_eq!(file_crc(&staging), want_crc);
        report("floor-file-copy-1MiB", &runs);
    }
    for (chunk, in_flight) in CHUNKINGS {
        let name = format!("dsys-chunk-{}KiB-x{in_flight}", chunk >> 10);
        if !wanted(&name) {
            continue;
        }
        let runs: Vec<Measure> = (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&staging);
                let mut transfer = DsysTransfer::new(&snapshot, &staging, chunk, in_flight);
                let m = measure(|| transfer.run());
                transfer.check();
                m
            })
            .collect();
        assert_eq!(file_crc(&staging), want_crc, "{name}: the staged copy");
        report(&name, &runs);
        println!(
            "{:<28} bound: chunk × in flight = {:.2} MiB (+ one chunk being read = {:.2} MiB)",
            "",
            (chunk as usize * in_flight) as f64 / f64::from(1 << 20),
            (chunk as usize * (in_flight + 1)) as f64 / f64::from(1 << 20),
        );
    }
    if wanted("raft-rs") {
        let runs: Vec<Measure> = (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&staging);
                let mut transfer = RaftRsTransfer::new(&snapshot, &staging);
                let m = measure(|| transfer.run());
                transfer.check();
                m
            })
            .collect();
        assert_eq!(file_crc(&staging), want_crc, "raft-rs: the staged copy");
        report("raft-rs-one-message", &runs);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
