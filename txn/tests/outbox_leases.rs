//! Relays share partitions through leases: fair shares, takeover after a
//! relay dies, fencing of a relay whose lease was taken, and publishing that
//! stops before the lease can expire. Runs on SQLite and PostgreSQL.

mod outbox_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dsys_clocks::{ManualClock, PhysicalClock};
use dsys_txn::outbox::{Event, Fenced, MemPublisher, OutboxStore, PublishError, Publisher, Relay};
use outbox_common::*;

fn relays_split_partitions_fairly<D: Db>(db: D) {
    let clock = ManualClock::new(T0);
    let (mut s1, mut s2) = (db.store(), db.store());
    let mut r1 = Relay::new("r1", db.config()).unwrap();
    let mut r2 = Relay::new("r2", db.config()).unwrap();
    let mut p = MemPublisher::new();
    // r1 alone takes everything; r2 joins; r1 gives up the excess.
    r1.run_pass(&mut s1, &mut p, &clock).unwrap();
    assert_eq!(r1.held_partitions().count(), 4);
    for _ in 0..3 {
        clock.advance(Duration::from_millis(10));
        r2.run_pass(&mut s2, &mut p, &clock).unwrap();
        r1.run_pass(&mut s1, &mut p, &clock).unwrap();
    }
    let h1: BTreeSet<u32> = r1.held_partitions().collect();
    let h2: BTreeSet<u32> = r2.held_partitions().collect();
    assert_eq!((h1.len(), h2.len()), (2, 2), "{h1:?} {h2:?}");
    assert!(h1.is_disjoint(&h2));
    // r1 dies; after its lease and heartbeat expire r2 takes all.
    clock.advance(db.config().lease_duration + Duration::from_millis(1));
    r2.run_pass(&mut s2, &mut p, &clock).unwrap();
    assert_eq!(r2.held_partitions().count(), 4);
}

fn a_taken_lease_fences_its_old_holder<D: Db>(db: D) {
    let ids = db.enqueue(&[(b"k", b"1")], true, T0);
    let mut store = db.store();
    let now = T0;
    let until = now + Duration::from_secs(10);
    let old = store.acquire(0, "old", until, now).unwrap().unwrap();
    assert!(
        store.acquire(0, "new", until, now).unwrap().is_none(),
        "held"
    );
    let renewed = store.acquire(0, "old", until, now).unwrap().unwrap();
    assert_eq!(renewed.epoch, old.epoch, "renewal keeps the epoch");
    let later = until + Duration::from_millis(1);
    let new = store
        .acquire(0, "new", later + Duration::from_secs(10), later)
        .unwrap()
        .unwrap();
    assert_eq!(new.epoch, old.epoch + 1);
    // The old holder wakes up and tries to mark: refused, row stays pending.
    let partition = dsys_txn::outbox::partition_of(b"k", db.config().partitions);
    let mut stale = old.clone();
    stale.partition = partition;
    let mut fresh = new.clone();
    fresh.partition = partition;
    if partition != 0 {
        // Put the same story on the event's partition.
        let o = store
            .acquire(partition, "old", until, now)
            .unwrap()
            .unwrap();
        let n = store
            .acquire(partition, "new", later + Duration::from_secs(10), later)
            .unwrap()
            .unwrap();
        stale = o;
        fresh = n;
    }
    assert_eq!(
        store.mark_published(&stale, &ids, later).unwrap(),
        Fenced::LeaseLost
    );
    assert_eq!(store.backlog().unwrap(), 1);
    assert_eq!(
        store.mark_published(&fresh, &ids, later).unwrap(),
        Fenced::Written
    );
    assert_eq!(store.backlog().unwrap(), 0);
    // Released leases go at once, to a new epoch.
    store.release(&fresh).unwrap();
    let again = store
        .acquire(partition, "third", later + Duration::from_secs(1), later)
        .unwrap()
        .unwrap();
    assert_eq!(again.epoch, fresh.epoch + 1);
}

/// A publisher whose every call takes a second of the (manual) clock.
struct Slow {
    clock: Arc<ManualClock>,
    inner: MemPublisher,
}

impl Publisher for Slow {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        self.clock.advance(Duration::from_secs(1));
        self.inner.publish(event)
    }
}

fn publishing_stops_before_the_lease_ends<D: Db>(db: D) {
    // lease 10 s, margin 2 s: at most 8 one-second publishes per pass.
    let events: Vec<(Vec<u8>, Vec<u8>)> = (0..20)
        .map(|i| (b"k".to_vec(), format!("{i}").into_bytes()))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = events.iter().map(|(k, p)| (&k[..], &p[..])).collect();
    db.enqueue(&refs, true, T0);
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = db.store();
    let mut relay = Relay::new("r1", db.config()).unwrap();
    let mut p = Slow {
        clock: clock.clone(),
        inner: MemPublisher::new(),
    };
    let start = clock.now();
    let report = relay.run_pass(&mut store, &mut p, &*clock).unwrap();
    assert_eq!(report.published, 8);
    assert!(report.more);
    let lease = store
        .leases()
        .unwrap()
        .into_iter()
        .find(|l| l.owner == "r1" && l.partition == dsys_txn::outbox::partition_of(b"k", 4))
        .unwrap();
    assert!(clock.now() <= lease.until, "no publish ran past the lease");
    assert_eq!(lease.until, start + db.config().lease_duration);
    let report = relay.run_pass(&mut store, &mut p, &*clock).unwrap();
    assert_eq!(report.published, 8);
    relay.run_pass(&mut store, &mut p, &*clock).unwrap();
    assert_eq!(p.inner.delivered().len(), 20);
    assert_in_order(p.inner.delivered());
}

fn graceful_release_hands_over_at_once<D: Db>(db: D) {
    let clock = ManualClock::new(T0);
    let (mut s1, mut s2) = (db.store(), db.store());
    let mut r1 = Relay::new("r1", db.config()).unwrap();
    let mut r2 = Relay::new("r2", db.config()).unwrap();
    let mut p = MemPublisher::new();
    r1.run_pass(&mut s1, &mut p, &clock).unwrap();
    r1.release_all(&mut s1).unwrap();
    r2.run_pass(&mut s2, &mut p, &clock).unwrap();
    // r1's heartbeat still counts it alive, so r2 takes its share (2 of 4).
    assert_eq!(r2.held_partitions().count(), 2);
}

both!(
    relays_split_partitions_fairly,
    a_taken_lease_fences_its_old_holder,
    publishing_stops_before_the_lease_ends,
    graceful_release_hands_over_at_once
);
