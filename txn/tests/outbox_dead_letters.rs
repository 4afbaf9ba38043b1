//! A poison event is dead-lettered without blocking other keys; its key is
//! parked until an operator replays or purges it (or, under `Skip`, goes
//! on). Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::time::Duration;

use dsys_clocks::{ManualClock, PhysicalClock};
use dsys_txn::outbox::{DeadLetterPolicy, MemPublisher, OutboxStore, Relay};
use outbox_common::*;

fn poison_parks_its_key_only<D: Db>(db: D) {
    let a = db.enqueue(&[(b"a", b"a1"), (b"a", b"a2")], true, T0);
    db.enqueue(&[(b"b", b"b1")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.poison(a[0]);
    let report = relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(report.dead_lettered, 1, "poison is dead-lettered at once");
    assert_eq!(payloads(&p), ["b1"]);
    // More events for both keys: b flows, a stays parked, for as long as we look.
    db.enqueue(&[(b"a", b"a3"), (b"b", b"b2")], true, T0);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        relay.run_pass(&mut store, &mut p, &clock).unwrap();
    }
    assert_eq!(payloads(&p), ["b1", "b2"]);
    let dead = store.dead_letters(None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event.id, a[0]);
    assert!(dead[0].parks_key);
    assert!(dead[0].error.contains("poison"), "{}", dead[0].error);
    // The operator fixes the consumer and replays: a1 goes first, then the rest.
    p.heal(a[0]);
    assert!(store.replay_dead_letter(a[0]).unwrap());
    assert!(!store.replay_dead_letter(a[0]).unwrap(), "no longer dead");
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(payloads(&p), ["b1", "b2", "a1", "a2", "a3"]);
    assert!(store.dead_letters(None, 10).unwrap().is_empty());
}

fn retries_exhausted_then_dead_letter<D: Db>(db: D) {
    // max_attempts = 3 in the test config.
    let a = db.enqueue(&[(b"a", b"a1"), (b"a", b"a2")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.fail_always(a[0]);
    let mut dead = 0;
    for _ in 0..10 {
        db.enqueue(&[(b"other", b"x")], true, clock.now());
        let report = relay.run_pass(&mut store, &mut p, &clock).unwrap();
        dead += report.dead_lettered;
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(dead, 1);
    assert_eq!(
        p.attempts() - p.delivered().len() as u64,
        3,
        "exactly max_attempts tries"
    );
    assert!(p.delivered().iter().all(|e| e.key == b"other"));
    assert_eq!(p.delivered().len(), 10, "the other key never waited");
    // Purging unparks the key: a2 goes, a1 is gone.
    assert!(store.purge_dead_letter(a[0]).unwrap());
    assert!(!store.purge_dead_letter(a[0]).unwrap());
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(p.delivered().last().unwrap().payload, b"a2");
    assert_eq!(store.backlog().unwrap(), 0);
}

fn skip_policy_lets_the_key_go_on<D: Db>(db: D) {
    let db = db.with_config(|c| c.dead_letter_policy = DeadLetterPolicy::Skip);
    let a = db.enqueue(&[(b"a", b"a1"), (b"a", b"a2")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    p.poison(a[0]);
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(payloads(&p), ["a2"]);
    let dead = store.dead_letters(None, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert!(!dead[0].parks_key);
    assert_eq!(
        store.backlog().unwrap(),
        0,
        "a skipped dead letter is not backlog"
    );
}

fn dead_letters_are_listed_in_pages<D: Db>(db: D) {
    let ids = db.enqueue(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], true, T0);
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    for id in &ids {
        p.poison(*id);
    }
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    let first = store.dead_letters(None, 2).unwrap();
    assert_eq!(first.len(), 2);
    let rest = store.dead_letters(Some(first[1].event.id), 2).unwrap();
    assert_eq!(rest.len(), 1);
    let mut all: Vec<_> = first.iter().chain(&rest).map(|d| d.event.id).collect();
    all.sort();
    assert_eq!(all, ids);
}

/// A row whose stored headers do not decode (damaged, or written by
/// something else) is dead-lettered, not retried forever, and blocks no
/// other key.
fn corrupt_row_is_dead_lettered<D: Db>(db: D) {
    let a = db.enqueue(&[(b"a", b"a1"), (b"a", b"a2"), (b"b", b"b1")], true, T0);
    let (bad, empty) = match db.name() {
        "sqlite" => ("x'ffffffff'", "x''"),
        _ => ("'\\xffffffff'::bytea", "''::bytea"),
    };
    db.exec(&format!(
        "UPDATE {}outbox_events SET headers = {bad} WHERE id = {}",
        db.prefix(),
        a[0].0
    ));
    let clock = ManualClock::new(T0);
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = MemPublisher::new();
    let report = relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(relay.counters().corrupt, 1);
    assert_eq!(
        payloads(&p),
        ["b1"],
        "never published, key a parked, b goes on"
    );
    let dead = store.dead_letters(None, 10).unwrap();
    assert_eq!(dead[0].event.id, a[0]);
    assert!(
        dead[0].error.contains("corrupt headers"),
        "{}",
        dead[0].error
    );
    // The operator repairs the row and replays it.
    db.exec(&format!(
        "UPDATE {}outbox_events SET headers = {empty} WHERE id = {}",
        db.prefix(),
        a[0].0
    ));
    assert!(store.replay_dead_letter(a[0]).unwrap());
    relay.run_pass(&mut store, &mut p, &clock).unwrap();
    assert_eq!(payloads(&p), ["b1", "a1", "a2"]);
}

both!(
    corrupt_row_is_dead_lettered,
    poison_parks_its_key_only,
    retries_exhausted_then_dead_letter,
    skip_policy_lets_the_key_go_on,
    dead_letters_are_listed_in_pages
);
