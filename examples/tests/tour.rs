//! The tour binary end to end: deterministic output (measured timings
//! aside), chapter selection, a clear error for an unknown chapter, and a
//! quiet exit when the reader of stdout goes away.

use std::process::{Command, Output};

fn tour(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsys-examples"))
        .args(args)
        .output()
        .expect("run the tour binary")
}

/// Runs one chapter, checks it succeeded, and returns what it printed.
fn chapter(name: &str) -> String {
    let out = tour(&[name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("the tour prints UTF-8");
    assert!(text.starts_with("====="), "{text}");
    text
}

/// `text` with every measured time (`12.3 ns`, right-aligned in a table
/// cell) replaced by `<t> ns`: the only numbers that may differ between runs.
fn without_timings(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find(" ns") {
            let (head, tail) = rest.split_at(at);
            let number = head.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            if number.len() < head.len() {
                out.push_str(number.trim_end());
                out.push_str(" <t>");
            } else {
                out.push_str(head);
            }
            out.push_str(" ns");
            rest = &tail[" ns".len()..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

#[test]
fn timings_are_masked_and_nothing_else() {
    assert_eq!(
        without_timings("a |   9.8 ns\nb |  10.25 ns\n3 nodes, 2 ns"),
        "a | <t> ns\nb | <t> ns\n3 nodes, <t> ns\n"
    );
    assert_eq!(without_timings("x ns, 5 nsx"), "x ns, <t> nsx\n");
    assert_eq!(without_timings("no timing 1.5"), "no timing 1.5\n");
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
    assert!(second.status.success());
    // Measured timings (the ring chapter's lookup costs) differ; nothing else may.
    let first = without_timings(&String::from_utf8(first.stdout).unwrap());
    let second = without_timings(&String::from_utf8(second.stdout).unwrap());
    assert_eq!(first, second);
}

#[test]
fn one_chapter_runs_alone() {
    let text = chapter("clocks");
    assert!(text.contains("clocks: "));
    assert!(text.contains("[2,3,2]"));
    assert!(text.contains("Lamport orders them, but they are concurrent"));
}

#[test]
fn raft_chapter_replays_figure_7_and_figure_8() {
    let text = chapter("raft");
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
fn ring_chapter_places_the_seeds_keys_and_reports_quality() {
    let text = chapter("ring");
    assert!(text.contains("ring: placing keys on nodes"), "{text}");
    // Section 1: the seeds' four keys, each with three replicas in three zones.
    for key in ["user:1001", "order:5555", "product:abc", "session:xyz"] {
        let row = text
            .lines()
            .find(|line| line.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no row for {key}: {text}"));
        assert!(row.contains("cassandra-node-"), "{row}");
        let zone_aware = row.rsplit('|').next().unwrap();
        let mut zones: Vec<&str> = zone_aware.split_whitespace().collect();
        zones.sort_unstable();
        assert_eq!(zones, ["a", "b", "c"], "{row}");
    }
    assert!(
        text.contains("cassandra-node-4 | zone-b |    150 |"),
        "{text}"
    );
    // Section 2: the join moves keys only to the newcomer; mod N moves ~5/6.
    assert!(text.contains("cassandra-node-5 joins"), "{text}");
    assert!(text.contains("between old nodes"), "{text}");
    assert!(text.contains("hash mod N       |     83,"), "{text}");
    // Section 3: the seeds' picture.
    assert!(
        text.contains("(90 deg, 135 deg] moves from B to E: 12.5% of the ring"),
        "{text}"
    );
    // Section 4: the quality table, its measured column marked as such.
    assert!(text.contains("(MEASURED: varies"), "{text}");
    assert!(text.contains("by run, machine)"), "{text}");
    for algorithm in [
        "ring, 150 hashed vnodes",
        "ring, 150 balanced vnodes",
        "jump",
        "rendezvous",
        "maglev, 65,537 slots",
        "hash mod N",
        "range, split on join",
        "bounded loads, eps = 0.1",
    ] {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(algorithm) && line.ends_with(" ns")),
            "no quality row for {algorithm}: {text}"
        );
    }
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
    assert_eq!(names, ["clocks", "raft", "ring"], "{text}");
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
    assert!(
        stderr.contains("valid chapters: clocks, raft, ring"),
        "{stderr}"
    );
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
