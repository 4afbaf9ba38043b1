//! The tour binary end to end: deterministic output, chapter selection,
//! a clear error for an unknown chapter, and a quiet exit when the reader
//! of stdout goes away.

use std::process::{Command, Output};

fn tour(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsys-examples"))
        .args(args)
        .output()
        .expect("run the tour binary")
}

#[test]
fn full_tour_succeeds_and_is_identical_on_every_run() {
    let first = tour(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(first.stderr.is_empty());
    let second = tour(&[]);
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn one_chapter_runs_alone() {
    let out = tour(&["clocks"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("====="));
    assert!(text.contains("clocks: "));
    assert!(text.contains("[2,3,2]"));
    assert!(text.contains("Lamport orders them, but they are concurrent"));
}

#[test]
fn raft_chapter_replays_figure_7_and_figure_8() {
    let out = tour(&["raft"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("====="));
    assert!(text.contains("raft: log replication"));
    // The Figure 7 table: its header, the leader's log and follower (f).
    assert!(
        text.contains(
            "follower | log terms               | diverged | round trips | round trips | entries"
        ),
        "{text}"
    );
    assert!(text.contains("leader   | 1 1 1 4 4 5 5 6 6 6 8 "), "{text}");
    assert!(text.contains("(f)      | 1 1 1 2 2 2 3 3 3 3 3 "), "{text}");
    assert!(text.contains("maybe_commit(2, 4) = false"), "{text}");
    assert!(text.contains("maybe_commit(3, 4) = true"), "{text}");
    // The election, crash and catch-up story, and the follower read.
    assert!(text.contains("Identical logs, entry by entry"), "{text}");
    assert!(text.contains("node 3 answers P1=B3"), "{text}");
}

#[test]
fn list_names_every_chapter() {
    let out = tour(&["--list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(names, ["clocks", "raft"], "{text}");
}

#[test]
fn unknown_chapter_fails_and_lists_valid_names() {
    let out = tour(&["no-such-chapter"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("unknown chapter 'no-such-chapter'"),
        "{stderr}"
    );
    assert!(stderr.contains("valid chapters: clocks, raft"), "{stderr}");
}

/// `dsys-examples | head` must not panic: a reader that stops reading ends
/// the tour quietly.
#[test]
fn closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dsys-examples"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the tour binary");
    // Close the read end before the tour writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for the tour");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
