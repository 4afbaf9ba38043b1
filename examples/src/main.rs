//! The dsys tour: runnable chapters that put each dsys crate to work on a
//! problem from the seed articles.
//!
//! ```text
//! cargo run --release -p dsys-examples              # every chapter
//! cargo run --release -p dsys-examples -- clocks    # one chapter
//! cargo run --release -p dsys-examples -- --list    # what there is
//! ```
//!
//! Every chapter but one is deterministic (simulated clocks, no threads),
//! so its output is the same on every run. Timings are the exception: the
//! few numbers measured with a real clock (the `ring` chapter's lookup
//! costs) are marked as measured, and vary from run to run and machine to
//! machine. Chapter `service` is the other exception: it runs a real
//! cluster (tokio tasks, TCP on 127.0.0.1, fsyncs in a temporary
//! directory), so which node leads and how long things take vary; what it
//! checks holds on every run.
//!
//! To add a chapter: write `src/<name>/mod.rs` with
//! `pub(crate) fn run() -> Result<(), Box<dyn Error>>`, printing through
//! [`report`], and append it to [`CHAPTERS`]. `mod.rs` tells the story (what
//! is shown, explained and printed, in reading order); the machinery that
//! drives it (a simulated network, drivers, formatting) lives in sibling
//! files, so a reader can follow either without the other.

mod clocks;
mod crdt;
mod detect;
mod log;
mod raft;
mod report;
mod ring;
mod service;
mod txn;

use std::error::Error;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

/// One chapter of the tour.
pub(crate) struct Chapter {
    /// What to type on the command line: lowercase, one word.
    pub(crate) name: &'static str,
    /// A short headline for the banner and `--list`.
    pub(crate) title: &'static str,
    /// Prints the chapter; an error (a crate disagreeing with the story the
    /// chapter tells) stops the tour with a non-zero exit.
    pub(crate) run: fn() -> Result<(), Box<dyn Error>>,
}

/// Every chapter, in tour order.
pub(crate) const CHAPTERS: &[Chapter] = &[
    Chapter {
        name: "clocks",
        title: "ordering events without a shared clock (dsys-clocks)",
        run: clocks::run,
    },
    Chapter {
        name: "raft",
        title: "log replication: election, crash, catch-up, reads, Figures 7 and 8, membership, snapshots (dsys-consensus)",
        run: raft::run,
    },
    Chapter {
        name: "service",
        title: "a real 3-node Raft cluster on loopback: tokio driver, TCP, fsync, a leader crash (dsys-consensus)",
        run: service::run,
    },
    Chapter {
        name: "ring",
        title: "placing keys on nodes: consistent hashing, replicas, joins (dsys-hashring)",
        run: ring::run,
    },
    Chapter {
        name: "log",
        title: "an ordered, durable event log with consumer groups (dsys-log)",
        run: log::run,
    },
    Chapter {
        name: "detect",
        title: "who is alive? heartbeats, phi accrual and SWIM with Lifeguard (dsys-detect)",
        run: detect::run,
    },
    Chapter {
        name: "crdt",
        title: "counting without coordination: G-Counter replicas through a partition (dsys-crdt)",
        run: crdt::run,
    },
    Chapter {
        name: "txn",
        title: "transactions across services: the order saga, two-phase commit, the outbox (dsys-txn)",
        run: txn::run,
    },
];

/// The dsys tour: each chapter puts a dsys crate to work on a problem from
/// the seed articles. With no arguments, runs every chapter.
#[derive(Debug, Parser)]
#[command(name = "dsys-examples", version)]
struct Cli {
    /// Chapters to run, in the order given (default: all; see --list).
    #[arg(value_name = "CHAPTER")]
    chapters: Vec<String>,

    /// List the chapters and exit.
    #[arg(short, long, conflicts_with = "chapters")]
    list: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        print_list();
        return ExitCode::SUCCESS;
    }
    let selected = match select(&cli.chapters) {
        Ok(selected) => selected,
        Err(unknown) => {
            let valid: Vec<&str> = CHAPTERS.iter().map(|c| c.name).collect();
            Cli::command()
                .error(
                    ErrorKind::InvalidValue,
                    format!(
                        "unknown chapter '{unknown}'\n\nvalid chapters: {}",
                        valid.join(", ")
                    ),
                )
                .exit()
        }
    };
    for (i, chapter) in selected.iter().enumerate() {
        if i > 0 {
            report::out!();
            report::out!();
        }
        report::chapter(chapter.name, chapter.title);
        if let Err(error) = (chapter.run)() {
            eprintln!("error: chapter '{}' failed: {error}", chapter.name);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The chapters named, in order, or every chapter when none is; `Err` with
/// the first unknown name.
fn select(names: &[String]) -> Result<Vec<&'static Chapter>, String> {
    if names.is_empty() {
        return Ok(CHAPTERS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            CHAPTERS
                .iter()
                .find(|chapter| chapter.name == name.as_str())
                .ok_or_else(|| name.clone())
        })
        .collect()
}

fn print_list() {
    let width = CHAPTERS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    report::out!("Chapters (run one with `dsys-examples <CHAPTER>`, all with no argument):");
    for chapter in CHAPTERS {
        report::out!("  {:width$}  {}", chapter.name, chapter.title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn chapter_names_are_unique_single_words() {
        for (i, chapter) in CHAPTERS.iter().enumerate() {
            assert!(
                chapter
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                chapter.name
            );
            assert!(
                CHAPTERS[..i].iter().all(|c| c.name != chapter.name),
                "duplicate chapter {}",
                chapter.name
            );
        }
    }

    #[test]
    fn select_keeps_order_and_rejects_unknown_names() {
        assert_eq!(select(&[]).unwrap().len(), CHAPTERS.len());
        let one = select(&["clocks".to_owned()]).unwrap();
        assert_eq!(one[0].name, "clocks");
        assert_eq!(
            select(&["clocks".to_owned(), "nope".to_owned()]).err(),
            Some("nope".to_owned())
        );
    }

    /// Every chapter's own checks pass (its output goes to the captured stdout).
    #[test]
    fn every_chapter_runs() {
        for chapter in CHAPTERS {
            if let Err(error) = (chapter.run)() {
                panic!("chapter {} failed: {error}", chapter.name);
            }
        }
    }
}
