//! The `dsys-log` tool end to end: produce into a temporary directory, dump
//! and verify what was written, then damage a segment's tail and check that
//! verify and dump report the damaged batch by position, without panicking
//! and without touching the files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the tool; never panics on a failing exit (the tests check it).
fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsys-log"))
        .args(args)
        .output()
        .expect("run the dsys-log binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("the tool prints UTF-8")
}

/// Runs the tool, checks it succeeded, and returns what it printed.
fn ok(args: &[&str]) -> String {
    let out = tool(args);
    assert!(
        out.status.success(),
        "dsys-log {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stdout(&out)
    );
    stdout(&out)
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("dsys-log-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    fn join(&self, path: &str) -> PathBuf {
        self.0.join(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// The `.log` files of a partition directory, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the partition")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// The value of `field: value` in a dump line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let at = line
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 2..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

#[test]
fn produce_dump_verify_and_find_a_damaged_tail() {
    let tmp = TempDir::new("damage");
    let topic = tmp.join("topic");
    let produced = ok(&[
        "produce",
        s(&topic),
        "--partitions",
        "2",
        "--records",
        "2000",
        "--batch",
        "50",
        "--segment-bytes",
        "40000",
        "--timestamp",
        "1700000000000",
    ]);
    assert!(produced.contains("test-0"), "{produced}");
    assert!(produced.contains("test-1"), "{produced}");
    assert!(produced.contains("appended 2,000 records"), "{produced}");
    let partition = topic.join("test-0");
    let logs = segments(&partition);
    assert!(logs.len() > 1, "segments rolled at 40,000 bytes: {logs:?}");

    // dump: one line per batch, every one valid, with Kafka's fields.
    let first = &logs[0];
    let dumped = ok(&["dump", s(first)]);
    let batches: Vec<&str> = dumped
        .lines()
        .filter(|l| l.starts_with("baseOffset: "))
        .collect();
    assert!(batches.len() > 1, "{dumped}");
    assert!(
        batches[0].starts_with("baseOffset: 0 lastOffset: "),
        "{dumped}"
    );
    for line in &batches {
        assert!(line.ends_with("isvalid: true"), "{line}");
        assert_eq!(field(line, "producerId"), "0", "{line}");
        assert_eq!(field(line, "magic"), "2", "{line}");
        assert!(field(line, "crc").parse::<u32>().is_ok(), "{line}");
        assert!(field(line, "CreateTime").starts_with("17000000"), "{line}");
    }
    assert_eq!(field(batches[0], "baseSequence"), "0");
    assert_eq!(field(batches[0], "position"), "0");
    // Positions advance by the batch sizes.
    let second_position: u64 = field(batches[1], "position").parse().unwrap();
    let first_size: u64 = field(batches[0], "size").parse().unwrap();
    assert_eq!(second_position, first_size);

    // dump --records: every record, key and value.
    let records = ok(&["dump", s(first), "--records", "--max-bytes", "12"]);
    let first_record = records
        .lines()
        .find(|l| l.starts_with("| offset: 0 "))
        .unwrap_or_else(|| panic!("no record line: {records}"));
    assert!(first_record.contains("key: key-"), "{first_record}");
    assert!(first_record.contains("payload: value-"), "{first_record}");
    assert!(first_record.ends_with("..."), "{first_record}");
    assert!(first_record.contains("sequence: 0 "), "{first_record}");

    // dump of the indexes.
    let index = ok(&["dump", s(&first.with_extension("index"))]);
    assert!(
        index
            .lines()
            .skip(1)
            .all(|l| l.starts_with("offset: ") && l.contains(" position: ")),
        "{index}"
    );
    let time_index = ok(&["dump", s(&first.with_extension("timeindex"))]);
    assert!(
        time_index
            .lines()
            .skip(1)
            .all(|l| l.starts_with("timestamp: ") && l.contains(" offset: ")),
        "{time_index}"
    );

    // verify: everything valid.
    let verified = ok(&["verify", s(&topic)]);
    assert!(verified.contains("all valid"), "{verified}");
    assert!(!verified.contains("DAMAGED"), "{verified}");

    // Flip a byte near the end of the newest segment: its last batch is damaged.
    let last = logs.last().unwrap();
    let before = ok(&["dump", s(last)]);
    let last_batch = before
        .lines()
        .rfind(|l| l.starts_with("baseOffset: "))
        .expect("the newest segment has batches");
    let position = field(last_batch, "position").to_owned();
    let mut bytes = std::fs::read(last).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    std::fs::write(last, &bytes).unwrap();

    let out = tool(&["verify", s(&topic)]);
    let report = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(
        report.contains(&format!(
            "invalid batch at position {position}: crc mismatch"
        )),
        "{report}"
    );
    // verify is read-only: the damage is still there, nothing was repaired.
    assert_eq!(std::fs::read(last).unwrap(), bytes);

    let out = tool(&["dump", s(last)]);
    let dumped = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{dumped}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        dumped.contains(&format!(
            "Invalid batch at position {position}: crc mismatch"
        )),
        "{dumped}"
    );
    assert!(dumped.contains("isvalid: false"), "{dumped}");
    // The batches before the damaged one are still dumped.
    assert_eq!(
        dumped
            .lines()
            .filter(|l| l.ends_with("isvalid: true"))
            .count(),
        before
            .lines()
            .filter(|l| l.starts_with("baseOffset: "))
            .count()
            - 1,
        "{dumped}"
    );
}

#[test]
fn verify_reports_a_torn_tail_and_an_index_pointing_nowhere() {
    let tmp = TempDir::new("torn");
    let dir = tmp.join("p");
    ok(&[
        "produce",
        s(&dir),
        "--records",
        "500",
        "--batch",
        "10",
        "--index-interval-bytes",
        "1",
        "--timestamp",
        "1700000000000",
    ]);
    let log = segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&log).unwrap().len();
    // A torn write: the file ends in the middle of its last batch.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 30)
        .unwrap();
    let out = tool(&["verify", s(&dir)]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("truncated batch"), "{report}");
    assert!(report.contains(".index entry"), "{report}");
}

#[test]
fn dump_and_verify_refuse_what_they_cannot_read() {
    let tmp = TempDir::new("refuse");
    let other = tmp.join("recovery.checkpoint");
    std::fs::write(&other, b"not a segment").unwrap();
    let out = tool(&["dump", s(&other)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("unsupported file"),
        "{}",
        stdout(&out)
    );

    let out = tool(&["verify", s(&tmp.0)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no segment files"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = tool(&["dump", s(&tmp.join("00000000000000000000.log"))]);
    assert_eq!(out.status.code(), Some(2));
}
