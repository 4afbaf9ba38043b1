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
//!
//! This file holds the command line and `main`; each subcommand lives in
//! `dsys-log/` beside it (`produce.rs`, `dump.rs`, `verify.rs`), with the
//! segment-file walk they share (`segments.rs`) and the output formatting
//! (`format.rs`). The `[[bin]]` target names this file, so the modules are
//! declared with `#[path]`.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dsys_log::Timestamp;

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

use dump::dump;
use produce::produce;
use verify::verify;

#[path = "dsys-log/dump.rs"]
mod dump;
#[path = "dsys-log/format.rs"]
mod format;
#[path = "dsys-log/produce.rs"]
mod produce;
#[path = "dsys-log/segments.rs"]
mod segments;
#[path = "dsys-log/verify.rs"]
mod verify;
