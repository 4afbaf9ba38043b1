//! Crash tests of `durable::DiskStorage` (DESIGN.md, testing layer 6):
//! every file cut at every byte and every byte flipped, then opened; and a
//! real process killed with SIGKILL while it appends. Opening either
//! recovers everything acknowledged (and nothing altered) or refuses with a
//! typed error; it never panics.
#![cfg(feature = "durable")]

mod durable_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use dsys_consensus::durable::{DiskStorage, OpenError, SyncTicket};
use dsys_consensus::{Entry, HardState, Membership, Persist, SnapshotMeta, Storage};
use durable_common::{copy_dir, entry, files, payload, scratch_dir, small_config};
use proptest::prelude::*;

fn voters() -> Membership<u64> {
    Membership::from_voters([1, 2, 3])
}

/// What a test log holds once written: every entry, and every hard state
/// in the order written (the last is the final one).
struct Written {
    entries: BTreeMap<u64, Entry<u64>>,
    hard_states: Vec<HardState<u64>>,
    snapshot: Option<SnapshotMeta<u64>>,
    first_index: u64,
}

/// A log over several segments, with a suffix replaced, a snapshot and a
/// compaction, and hard states along the way.
fn write_log(dir: &Path) -> Written {
    let mut disk = DiskStorage::open(dir, voters(), small_config()).unwrap();
    let mut entries = BTreeMap::new();
    let mut hard_states = Vec::new();
    let mut id = 0;
    let mut batch = |disk: &mut DiskStorage<u64>, batch: Vec<Entry<u64>>, hs: HardState<u64>| {
        id += 1;
        entries.split_off(&batch[0].index);
        for e in &batch {
            entries.insert(e.index, e.clone());
        }
        disk.write(&Persist {
            id,
            hard_state: Some(hs.clone()),
            entries: batch,
        })
        .unwrap();
        hard_states.push(hs);
    };
    for start in (1..=150).step_by(10) {
        let term = 1 + start / 50;
        let hs = HardState {
            term,
            vote: Some(1),
            commit: start.saturating_sub(20),
        };
        batch(
            &mut disk,
            (start..start + 10).map(|i| entry(term, i)).collect(),
            hs,
        );
    }
    // A new leader replaces 145.. (above the commit index, 120).
    let hs = HardState {
        term: 5,
        vote: Some(2),
        commit: 120,
    };
    batch(&mut disk, (145..=170).map(|i| entry(5, i)).collect(), hs);
    let snapshot = SnapshotMeta {
        index: 100,
        term: disk.term(100).unwrap(),
        membership: Membership::new([1, 2, 3], [4]),
    };
    disk.set_snapshot(snapshot.clone()).unwrap();
    disk.compact(90).unwrap();
    let hs = HardState {
        term: 5,
        vote: Some(2),
        commit: 140,
    };
    batch(&mut disk, (171..=175).map(|i| entry(5, i)).collect(), hs);
    assert!(disk.recovery().segments <= 1);
    let written = Written {
        first_index: disk.first_index(),
        entries: entries.split_off(&disk.first_index()),
        hard_states,
        snapshot: Some(snapshot),
    };
    assert!(files(dir).len() >= 3, "{:?}", files(dir));
    written
}

/// Where each frame of a file ends (frames are `len`, `!len`, crc, payload).
fn frame_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 12 + len;
        ends.push(pos);
    }
    ends
}

fn is_typed_refusal(error: &OpenError) -> bool {
    matches!(
        error,
        OpenError::Corrupt { .. } | OpenError::Inconsistent { .. }
    )
}

/// Every entry the open storage reports is the one written at that index.
fn check_no_wrong_data(disk: &DiskStorage<u64>, written: &Written) {
    let (low, high) = (disk.first_index(), disk.last_index() + 1);
    for e in disk.entries(low, high, u64::MAX).unwrap() {
        assert_eq!(Some(&e), written.entries.get(&e.index), "entry {}", e.index);
        assert_eq!(disk.term(e.index), Ok(e.term));
    }
}

#[test]
fn cut_every_file_at_every_byte() {
    let source = tempfile::tempdir().unwrap();
    let written = write_log(source.path());
    let names = files(source.path());
    let active = names.iter().rfind(|n| n.ends_with(".seg")).unwrap().clone();
    let final_hs = written.hard_states.last().unwrap().clone();
    let (mut cuts, mut recovered, mut refused) = (0u64, 0u64, 0u64);
    for name in &names {
        let bytes = std::fs::read(source.path().join(name)).unwrap();
        let ends = frame_ends(&bytes);
        for cut in 0..bytes.len() {
            cuts += 1;
            let scratch = scratch_dir();
            copy_dir(source.path(), scratch.path());
            std::fs::write(scratch.path().join(name), &bytes[..cut]).unwrap();
            let opened = DiskStorage::<u64>::open(scratch.path(), voters(), small_config());
            // The frames wholly before the cut were acknowledged; the one
            // the cut falls in was being written.
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            match opened {
                Ok(disk) => {
                    recovered += 1;
                    check_no_wrong_data(&disk, &written);
                    if *name == active {
                        let base: u64 = name[..20].parse().unwrap();
                        let kept = (base + whole as u64).saturating_sub(1);
                        assert_eq!(disk.last_index(), kept.max(disk.first_index() - 1));
                        assert_eq!(disk.hard_state(), &final_hs, "cut {name} at {cut}");
                    } else if name == "state" {
                        assert!(written.hard_states.contains(disk.hard_state()));
                        assert_eq!(disk.last_index(), *written.entries.keys().last().unwrap());
                    } else {
                        panic!("a cut sealed segment {name} at {cut} was accepted");
                    }
                }
                Err(error) => {
                    refused += 1;
                    assert!(is_typed_refusal(&error), "cut {name} at {cut}: {error}");
                    if *name == active {
                        // Only a cut below the durable commit index is refused.
                        let base: u64 = name[..20].parse().unwrap();
                        let kept = (base + whole as u64).saturating_sub(1);
                        assert!(kept < final_hs.commit, "cut {name} at {cut}: {error}");
                    }
                }
            }
        }
    }
    println!("cuts: {cuts} ({recovered} recovered, {refused} refused with a typed error)");
    assert!(recovered > 0 && refused > 0);
    assert!(written.first_index > 1 && written.snapshot.is_some());
}

#[test]
fn flip_every_byte_of_every_file() {
    let source = tempfile::tempdir().unwrap();
    let written = write_log(source.path());
    let (mut flips, mut refused) = (0u64, 0u64);
    for name in files(source.path()) {
        let bytes = std::fs::read(source.path().join(&name)).unwrap();
        for at in 0..bytes.len() {
            flips += 1;
            let scratch = scratch_dir();
            copy_dir(source.path(), scratch.path());
            let mut bad = bytes.clone();
            bad[at] ^= 0xff;
            std::fs::write(scratch.path().join(&name), &bad).unwrap();
            match DiskStorage::<u64>::open(scratch.path(), voters(), small_config()) {
                Ok(disk) => {
                    // Accepted only if nothing it reports changed.
                    check_no_wrong_data(&disk, &written);
                    assert_eq!(disk.last_index(), *written.entries.keys().last().unwrap());
                    assert_eq!(disk.first_index(), written.first_index);
                    assert_eq!(Some(disk.hard_state()), written.hard_states.last());
                    assert_eq!(disk.snapshot(), written.snapshot);
                }
                Err(error) => {
                    refused += 1;
                    assert!(is_typed_refusal(&error), "flip {name} at {at}: {error}");
                }
            }
        }
    }
    println!("flips: {flips} ({refused} refused with a typed error)");
    assert_eq!(refused, flips, "every flipped byte is caught");
}

// ---------------------------------------------------------------------
// SIGKILL: a child process appends with fsync and prints each index it
// has acknowledged; the parent kills it at random moments and checks that
// every acknowledged entry is on disk, intact.

const CHILD_DIR: &str = "DSYS_DURABLE_KILL_DIR";
const CHILD_SEED: &str = "DSYS_DURABLE_KILL_SEED";

/// The child's body: runs only when the parent starts this test binary
/// with `CHILD_DIR` set, and appends until killed.
#[test]
fn sigkill_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut config = small_config();
    config.segment_bytes = 64 << 10;
    let mut disk = DiskStorage::open(&dir, voters(), config).unwrap();
    // The entries may be durable ahead of the hard state of their batch
    // (entries first, then the hard state): a leader's term is at least
    // its last entry's.
    let last_term = disk.term(disk.last_index()).unwrap();
    let mut term = disk.hard_state().term.max(last_term).max(1);
    let mut id = 0;
    if rng.bool() {
        pipelined_child(disk, term, &mut rng);
    }
    loop {
        if rng.u8(..8) == 0 {
            term += 1;
        }
        let last = disk.last_index();
        let count = rng.u64(1..20);
        let entries: Vec<_> = (last + 1..=last + count).map(|i| entry(term, i)).collect();
        id += 1;
        // Commit what was acknowledged before this batch.
        let hard_state = HardState {
            term,
            vote: Some(1),
            commit: last,
        };
        let persist = Persist {
            id,
            hard_state: Some(hard_state),
            entries,
        };
        disk.stage(&persist).unwrap();
        let mut acked_last = last + count;
        // Group commit, sometimes with a conflicting suffix: a second
        // batch, staged before the sync, replaces part of the first in a
        // new term (§5.3), so the durable cut of unsynced entries and the
        // crash can meet.
        if rng.u8(..4) == 0 {
            term += 1;
            let from = last + 1 + rng.u64(..count);
            let more = rng.u64(1..10);
            id += 1;
            disk.stage(&Persist {
                id,
                hard_state: None,
                entries: (from..from + more).map(|i| entry(term, i)).collect(),
            })
            .unwrap();
            acked_last = from + more - 1;
        }
        assert_eq!(disk.sync().unwrap(), Some(id));
        println!("{acked_last} {term}");
        if id % 64 == 0 && last > 0 {
            let meta = SnapshotMeta {
                index: last,
                term: disk.term(last).unwrap(),
                membership: voters(),
            };
            disk.set_snapshot(meta).unwrap();
            disk.compact(last).unwrap();
        }
    }
}

/// Half the children sync in the background (`sync_in_background`), up
/// to three requests in flight, and print a batch only once its ticket
/// resolves. A conflicting suffix may now cut entries whose sync is in
/// flight (never one printed): the tickets of the batches it replaced
/// print nothing (as the node ignores an acknowledgement of entries it no
/// longer holds), and the replacing batch prints its own last entry.
/// Hard states commit only what was printed before (the node's rule), so
/// they go to the syncer beside the entries, except a term change, which
/// is synced at once.
fn pipelined_child(mut disk: DiskStorage<u64>, mut term: u64, rng: &mut fastrand::Rng) -> ! {
    // Everything on disk may have been printed by an earlier child.
    let mut printed = disk.last_index();
    let mut in_flight: std::collections::VecDeque<(SyncTicket, Option<(u64, u64)>)> =
        std::collections::VecDeque::new();
    let mut id = 0;
    let finish = |ticket: SyncTicket, line: Option<(u64, u64)>, printed: &mut u64| {
        ticket.wait().unwrap();
        if let Some((index, term)) = line {
            println!("{index} {term}");
            *printed = (*printed).max(index);
        }
    };
    loop {
        if rng.u8(..8) == 0 {
            term += 1;
        }
        let last = disk.last_index();
        let count = rng.u64(1..20);
        id += 1;
        disk.stage(&Persist {
            id,
            hard_state: Some(HardState {
                term,
                vote: Some(1),
                commit: printed,
            }),
            entries: (last + 1..=last + count).map(|i| entry(term, i)).collect(),
        })
        .unwrap();
        let mut line = (last + count, term);
        if rng.u8(..3) == 0 {
            // A new leader replaces entries not yet printed, some of them
            // perhaps being synced right now.
            term += 1;
            let from = printed + 1 + rng.u64(..last + count - printed);
            let more = rng.u64(1..10);
            id += 1;
            disk.stage(&Persist {
                id,
                hard_state: None,
                entries: (from..from + more).map(|i| entry(term, i)).collect(),
            })
            .unwrap();
            for (_, line) in &mut in_flight {
                *line = None;
            }
            line = (from + more - 1, term);
        }
        in_flight.push_back((disk.sync_in_background().unwrap(), Some(line)));
        let keep = rng.usize(..4);
        while in_flight.len() > keep {
            let (ticket, line) = in_flight.pop_front().unwrap();
            finish(ticket, line, &mut printed);
        }
        if id % 64 == 0 && printed > disk.first_index() {
            while let Some((ticket, line)) = in_flight.pop_front() {
                finish(ticket, line, &mut printed);
            }
            assert_eq!(disk.sync().unwrap(), None);
            let meta = SnapshotMeta {
                index: printed,
                term: disk.term(printed).unwrap(),
                membership: voters(),
            };
            disk.set_snapshot(meta).unwrap();
            disk.compact(printed).unwrap();
        }
    }
}

#[test]
fn sigkill_while_appending_loses_nothing_acknowledged() {
    let kills: u64 = std::env::var("DSYS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("DSYS_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(17);
    println!("sigkill: {kills} kills, seed {seed} (DSYS_KILLS, DSYS_KILL_SEED)");
    let mut rng = fastrand::Rng::with_seed(seed);
    // A SIGKILL keeps the page cache: what it tests is that nothing is
    // acknowledged before it is written, in order, whatever the disk.
    let dir = scratch_dir();
    let started = std::time::Instant::now();
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut acked_total = 0u64;
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_SEED, rng.u64(..).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = rng.usize(..40);
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        for _ in 0..lines {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let mut parts = line.split_whitespace().map(|p| p.parse::<u64>());
            let (Some(Ok(index)), Some(Ok(term))) = (parts.next(), parts.next()) else {
                continue; // the test harness's own lines
            };
            acked.insert(index, term);
            acked_total += 1;
        }
        if rng.bool() {
            std::thread::sleep(std::time::Duration::from_micros(rng.u64(..2000)));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let disk = DiskStorage::<u64>::open(dir.path(), voters(), small_config())
            .unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        let (&last_acked, _) = acked.last_key_value().unwrap_or((&0, &0));
        assert!(
            disk.last_index() >= last_acked,
            "kill {kill}: lost acknowledged entries"
        );
        for (&index, &term) in acked.range(disk.first_index()..) {
            assert_eq!(disk.term(index), Ok(term), "kill {kill}: entry {index}");
        }
        let (low, high) = (disk.first_index(), disk.last_index() + 1);
        for e in disk.entries(low, high, u64::MAX).unwrap() {
            assert_eq!(
                e.data,
                payload(e.index, e.term),
                "kill {kill}: entry {}",
                e.index
            );
        }
        // Forget what is compacted: the map stays small.
        acked = acked.split_off(&disk.first_index());
    }
    println!(
        "sigkill: {kills} kills, {acked_total} acknowledged batches checked in {:?}",
        started.elapsed()
    );
    assert!(
        acked_total > kills,
        "the children acknowledged too little to test"
    );
}

// ---------------------------------------------------------------------
// Random damage: several bytes changed, a file cut, garbage appended or a
// garbage segment added. Open never panics, and what it accepts is right.

fn base() -> &'static (tempfile::TempDir, Written) {
    static BASE: OnceLock<(tempfile::TempDir, Written)> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = scratch_dir();
        let written = write_log(dir.path());
        (dir, written)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn open_never_panics_on_damaged_files(
        edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of((any::<usize>(), any::<usize>())),
        garbage in proptest::option::of((any::<usize>(), proptest::collection::vec(any::<u8>(), 1..300))),
        stray_segment in proptest::option::of((0u64..400, proptest::collection::vec(any::<u8>(), 0..200))),
    ) {
        let (source, written) = base();
        let scratch = scratch_dir();
        copy_dir(source.path(), scratch.path());
        let names = files(scratch.path());
        let path = |pick: usize| scratch.path().join(&names[pick % names.len()]);
        for (pick, at, value) in edits {
            let mut bytes = std::fs::read(path(pick)).unwrap();
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = value;
                std::fs::write(path(pick), &bytes).unwrap();
            }
        }
        if let Some((pick, at)) = cut {
            let bytes = std::fs::read(path(pick)).unwrap();
            std::fs::write(path(pick), &bytes[..at % (bytes.len() + 1)]).unwrap();
        }
        if let Some((pick, extra)) = garbage {
            let mut bytes = std::fs::read(path(pick)).unwrap();
            bytes.extend_from_slice(&extra);
            std::fs::write(path(pick), &bytes).unwrap();
        }
        if let Some((base, bytes)) = stray_segment {
            std::fs::write(scratch.path().join(format!("{base:020}.seg")), bytes).unwrap();
        }
        match DiskStorage::<u64>::open(scratch.path(), voters(), small_config()) {
            Ok(disk) => check_no_wrong_data(&disk, written),
            Err(error) => prop_assert!(is_typed_refusal(&error), "{error}"),
        }
    }
}
