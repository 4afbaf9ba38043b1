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

/// `text` without chapter `service`, which runs a real cluster on real time
/// (its leader, terms, indexes and sizes vary between runs), from its
/// banner to the next chapter's.
fn without_service(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let banner = |i: usize| lines[i].starts_with("=====");
    let Some(title) = lines.iter().position(|l| l.starts_with("service: ")) else {
        return text.to_owned();
    };
    let start = title.saturating_sub(1);
    let end = (title + 2..lines.len())
        .find(|&i| banner(i) && i + 2 < lines.len() && banner(i + 2))
        .unwrap_or(lines.len());
    let mut kept: Vec<&str> = lines[..start].to_vec();
    kept.extend_from_slice(&lines[end..]);
    kept.join("\n") + "\n"
}

#[test]
fn service_is_cut_out_and_nothing_else() {
    let text = "=====\nraft: r\n=====\nx\n=====\nservice: s\n=====\n1 2\n=====\nring: g\n=====\ny";
    assert_eq!(
        without_service(text),
        "=====\nraft: r\n=====\nx\n=====\nring: g\n=====\ny\n"
    );
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
    // Measured timings (the ring chapter's lookup costs) and the real
    // cluster of chapter `service` differ; nothing else may.
    let first = String::from_utf8(first.stdout).unwrap();
    assert!(
        first.contains("\nservice: "),
        "the tour runs chapter service"
    );
    let first = without_timings(&without_service(&first));
    let second = without_timings(&without_service(&String::from_utf8(second.stdout).unwrap()));
    assert_eq!(first, second);
}

#[test]
fn service_chapter_loses_no_acknowledged_write() {
    let text = chapter("service");
    // Its own checks (every write on every node, equal maps) stop it with an
    // error when they fail; these lines say they ran.
    for expected in [
        "1. Three nodes on loopback elect a leader",
        "held all 300 keys",
        "3. The leader crashes; the others go on",
        "4. The crashed node restarts from its directory",
        "Every node holds all 500 keys with the same values",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
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
    // The membership part: 3 voters become 5 (a promotion refused first),
    // the leader removes itself, a follower is restored by snapshot.
    assert!(text.contains("refused: NotCaughtUp (0 of 9)"), "{text}");
    assert!(text.contains("| 1 2 3 4 5 | -"), "{text}");
    assert!(text.contains("proposes Remove(2) at index 12"), "{text}");
    assert!(
        text.contains("transfer to node 5 ends: installed"),
        "{text}"
    );
    assert!(
        text.contains("9. The membership changes in one table"),
        "{text}"
    );
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
fn log_chapter_produces_consumes_and_resumes_at_the_committed_offsets() {
    let text = chapter("log");
    assert!(
        text.contains("log: an ordered, durable event log with consumer groups"),
        "{text}"
    );
    // Section 1: the seeds' delivery reports, ORD-0000 first; the retry.
    let delivered: Vec<&str> = text
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with("Message delivered to orders ["))
        .collect();
    assert!(delivered[0].contains("ORD-0000"), "{text}");
    assert_eq!(delivered.len(), 25, "{text}");
    assert!(text.contains("duplicate of @ 11: not written"), "{text}");
    assert!(text.contains("written again @ 1"), "{text}");
    // Section 2: the seeds' diagram, P0, P1 / P2, P3.
    assert!(
        text.contains("| consumer-1 | SyncGroup (gen 2)        | P0, P1"),
        "{text}"
    );
    assert!(
        text.contains("| consumer-2 | SyncGroup (gen 2)        | P2, P3"),
        "{text}"
    );
    // Section 3: five consumers, exactly one idle; the late commit refused.
    let idle: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("(none): idle"))
        .collect();
    assert_eq!(idle.len(), 1, "{text}");
    assert!(idle[0].contains("consumer-5"), "{}", idle[0]);
    assert!(
        text.contains("ILLEGAL_GENERATION (now 3): refused"),
        "{text}"
    );
    // Section 4: every partition resumes at its committed offset.
    let header = text
        .lines()
        .position(|line| line.contains("| committed before the stop |"))
        .unwrap_or_else(|| panic!("no resume table: {text}"));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(header + 2)
        .take_while(|line| !line.trim().is_empty())
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    for row in &rows {
        let (committed, first_read) = (row[2], row[3]);
        assert!(first_read == committed || first_read == "-", "{row:?}");
    }
    assert_eq!(rows[3], ["P3", "consumer-4", "11", "11", "ORD-0019"]);
    assert!(text.contains("25 orders, 26 processings"), "{text}");
    // Deterministic: a second run prints the same.
    assert_eq!(chapter("log"), text);
}

#[test]
fn detect_chapter_plots_phi_and_tells_who_suspected_whom() {
    /// The trimmed cells of a table row.
    fn cells(line: &str) -> Vec<&str> {
        line.split('|').map(str::trim).collect()
    }
    let text = chapter("detect");
    assert!(text.contains("detect: who is alive?"), "{text}");
    // Section 1: the plot. The fixed timeout fires at 3 s while phi is still
    // 0; phi passes the seed's levels and the threshold within the plot.
    let row = |start: &str| {
        text.lines()
            .find(|line| line.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no row {start}: {text}"))
    };
    let three = row("3.00 s |");
    assert_eq!(cells(three)[1], "0.00", "{three}");
    assert_eq!(cells(three)[5], "DOWN", "{three}");
    assert!(three.ends_with("<- the timeout fires"), "{three}");
    assert!(row("0.00 s |").contains("| alive"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.contains("| DOWN") && line.contains(": gives up")),
        "{text}"
    );
    assert!(row("Akka, normal model").ends_with(" s"), "{text}");
    assert!(row("fixed 3.00 s timeout").ends_with(" 3.00 s"), "{text}");
    // Section 2: phi never cried wolf; the tight timeout did, on the jittery
    // network only.
    let alarms = cells(row("false alarms: phi = 8 / 1.2 s timeout"));
    assert_eq!(alarms[1], "0 / 0", "{alarms:?}");
    assert!(
        alarms[2].starts_with("0 / ") && alarms[2] != "0 / 0",
        "{alarms:?}"
    );
    // Section 3: the crash is detected by all, the slow member refutes and
    // stays Alive for everyone.
    assert!(text.contains(">> node 7 crashes"), "{text}");
    assert!(text.contains("7 suspected by "), "{text}");
    assert!(text.contains("7 declared Down, first by "), "{text}");
    assert!(text.contains("13 refutes: incarnation "), "{text}");
    let end = text
        .lines()
        .find(|line| line.trim_start().starts_with("at ") && line.contains(" of 19"))
        .unwrap_or_else(|| panic!("no final states: {text}"));
    assert!(end.contains("| Down for 19 of 19"), "{end}");
    assert!(end.contains("| Alive for 18 of 18"), "{end}");
    // Deterministic: a second run prints the same.
    assert_eq!(chapter("detect"), text);
}

#[test]
fn crdt_chapter_counts_through_a_partition_and_converges() {
    /// The trimmed cells of the first row whose first cell is `first`.
    fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
        text.lines()
            .map(|line| line.split('|').map(str::trim).collect::<Vec<_>>())
            .find(|cells| cells.len() > 1 && cells[0] == first)
            .unwrap_or_else(|| panic!("no row {first}: {text}"))
    }
    let text = chapter("crdt");
    assert!(
        text.contains("crdt: counting without coordination"),
        "{text}"
    );
    // Section 1: the sides diverge in the partition, then all read the total.
    let cut = row(&text, "4 sync, virginia cut off");
    assert_eq!(
        cut[1..],
        ["415 / 410 / 545", "1,370", "920", "920", "1,000"],
        "{cut:?}"
    );
    let healed = row(&text, "5 sync");
    assert_eq!(
        healed[1..],
        ["475 / 480 / 625", "1,580", "1,580", "1,580", "1,580"],
        "{healed:?}"
    );
    // Section 2: only the G-Counter is exact; the retrying adder counts the
    // duplicate twice at tokyo.
    let crdt = row(&text, "G-Counter (dsys-crdt)");
    assert_eq!(crdt[1..4], ["1,580", "1,580", "1,580"], "{crdt:?}");
    let retry = row(&text, "send +n, retry until acked");
    assert_eq!(retry[1..4], ["1,580", "1,710 (+130)", "1,580"], "{retry:?}");
    assert!(row(&text, "last write wins")[1].contains("(-"), "{text}");
    // Section 3: the delta stays 17 bytes while the whole state grows.
    assert_eq!(row(&text, "3,000")[1..3], ["36,006 B", "17 B"], "{text}");
    // Section 4: the PN-Counter converges to likes minus unlikes.
    assert_eq!(
        row(&text, "2 sync")[3..],
        ["36", "36", "36", "36"],
        "{text}"
    );
    // Section 6: written but unshipped, the pen survives tokyo's crash; the unwritten
    // lamp does not; tokyo comes back as incarnation 1.
    let healed = text
        .lines()
        .find(|line| line.contains("healed; the same cart everywhere"))
        .unwrap_or_else(|| panic!("no healed row: {text}"));
    assert_eq!(healed.matches("book, mug, pen").count(), 3, "{healed}");
    assert!(!healed.contains("lamp"), "{healed}");
    let tokyo_disk = text
        .lines()
        .map(|line| line.split('|').map(str::trim).collect::<Vec<_>>())
        .find(|cells| cells[0] == "tokyo" && cells.len() > 2 && cells[2].starts_with("incarnation"))
        .unwrap_or_else(|| panic!("no record row for tokyo: {text}"));
    assert_eq!(tokyo_disk[1], "1", "{tokyo_disk:?}");
    // Deterministic: a second run prints the same.
    assert_eq!(chapter("crdt"), text);
}

#[test]
fn txn_chapter_compensates_in_reverse_terminates_cooperatively_and_dead_letters() {
    /// The trimmed cells of every table row.
    fn rows(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .filter(|line| line.contains(" | "))
            .map(|line| line.split('|').map(str::trim).collect())
            .collect()
    }
    let text = chapter("txn");
    assert!(text.contains("txn: transactions across services"), "{text}");
    let rows = rows(&text);
    // Section 1: saga 1's compensations, in reverse, after the declined card.
    let saga_1: Vec<&str> = rows
        .iter()
        .filter(|r| r.len() == 6 && r[3].starts_with("1/"))
        .map(|r| r[1])
        .collect();
    assert_eq!(
        saga_1,
        [
            "create_order",
            "deduct_inventory",
            "process_payment",
            "restore_inventory",
            "cancel_order"
        ],
        "{text}"
    );
    // Saga 2: the timed-out payment is refunded, first.
    let saga_2: Vec<&str> = rows
        .iter()
        .filter(|r| r.len() == 6 && r[3].ends_with("/compensation") && r[3].starts_with("2/"))
        .map(|r| r[1])
        .collect();
    assert_eq!(
        saga_2,
        ["refund_payment", "restore_inventory", "cancel_order"],
        "{text}"
    );
    assert!(
        text.contains("StepFailed process_payment (timed out): effect unknown, compensate it too"),
        "{text}"
    );
    // Saga 4: after the crash the restore is invoked again and applies nothing.
    assert!(
        rows.iter().any(|r| r.len() == 6
            && r[3] == "4/1/compensation"
            && r[4] == "seen key: nothing applied"),
        "{text}"
    );
    // Saga 5: stuck, then the operator's retry (attempt 4) restores the stock.
    assert!(
        text.contains("compensation failed after 3 attempts: unavailable"),
        "{text}"
    );
    assert!(
        rows.iter().any(|r| r.len() == 6
            && r[1] == "restore_inventory"
            && r[2] == "4"
            && r[4] == "stock 8 -> 10"),
        "{text}"
    );
    // Section 2 (a): payments aborts durably on a peer's request and answers Abort.
    let decides = |shard: &str, outcome: &str| {
        rows.iter()
            .filter(|r| r.len() == 5 && r[1] == shard && r[3] == format!("DECIDES {outcome}"))
            .count()
    };
    assert!(
        rows.iter()
            .any(|r| r.len() == 5 && r[1] == "payments" && r[3] == "logs Aborted (forced)"),
        "{text}"
    );
    assert!(
        rows.iter().any(|r| r.len() == 5
            && r[1] == "payments"
            && r[2] == "inventory"
            && r[3] == "DecisionReply Abort"),
        "{text}"
    );
    assert!(text.contains("is not waiting for a vote"), "{text}");
    // (b) the shards learn Commit from inventory; (c) blocked until the restart.
    assert!(
        rows.iter().any(|r| r.len() == 5
            && r[1] == "inventory"
            && r[2] == "orders"
            && r[3] == "DecisionReply Commit"),
        "{text}"
    );
    assert!(text.contains("every answer Unknown: blocked"), "{text}");
    assert!(text.contains("RESTARTS: empty log"), "{text}");
    for shard in ["inventory", "orders", "payments"] {
        assert_eq!(decides(shard, "Commit"), 1, "{shard}: {text}");
        assert_eq!(decides(shard, "Abort"), 2, "{shard}: {text}");
    }
    // Section 3: the redeliveries dropped, the poison event dead-lettered and
    // its key parked, every key in order.
    let dropped = rows
        .iter()
        .filter(|r| r.last() == Some(&"seen: dropped"))
        .count();
    assert_eq!(dropped, 4, "{text}");
    assert!(
        rows.iter().any(|r| r.len() == 6
            && r[1] == "order-1002"
            && r[4] == "poison: schema registry: unknown schema v2"
            && r[5] == "yes"),
        "{text}"
    );
    let order_1002 = rows
        .iter()
        .find(|r| r.len() == 2 && r[0] == "order-1002")
        .unwrap_or_else(|| panic!("no per-key row: {text}"));
    assert_eq!(
        order_1002[1],
        "1: OrderCreated, 2: OrderPaid, 3: OrderRefunded, 4: OrderClosed"
    );
    // Deterministic: a second run prints the same.
    assert_eq!(chapter("txn"), text);
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
    assert_eq!(
        names,
        [
            "clocks", "raft", "service", "ring", "log", "detect", "crdt", "txn"
        ],
        "{text}"
    );
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
        stderr.contains("valid chapters: clocks, raft, service, ring, log"),
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
