//! The order saga choreographed: no orchestrator, each service reacts to the
//! previous event, and a failure flows back through the compensations
//! (OrderCreated -> InventoryReserved -> PaymentFailed -> InventoryReleased
//! -> OrderCancelled). Delivery is at least once; every participant's inbox
//! dedupes by event id, so redelivered events (all of them, in any order)
//! apply nothing twice.
//!
//! `DSYS_TXN_SAGA_SEEDS` also sets the number of redelivery seeds here
//! (default 200).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dsys_txn::saga::{Choreography, Event, Participant, SagaId};

/// The services' state: effects applied, per (saga, what).
#[derive(Default, Debug)]
struct State {
    effects: BTreeMap<(SagaId, &'static str), u32>,
    stock: i64,
}

type Shared = Arc<Mutex<State>>;

fn effect(state: &Shared, saga: SagaId, what: &'static str) {
    *state
        .lock()
        .unwrap()
        .effects
        .entry((saga, what))
        .or_default() += 1;
}

fn ev(kind: &str) -> Vec<(String, Bytes)> {
    vec![(kind.to_owned(), Bytes::new())]
}

/// Payload of OrderPlaced: "qty,card" where card "bad" is declined.
fn order_saga(state: &Shared) -> Choreography {
    let (s1, s2, s3, s4, s5, s6, s7) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let orders = Participant::new("orders")
        .on("OrderPlaced", move |e| {
            effect(&s1, e.saga, "order created");
            vec![("OrderCreated".into(), e.payload.clone())]
        })
        .on("PaymentCompleted", move |e| {
            effect(&s2, e.saga, "order approved");
            ev("OrderApproved")
        })
        .on("InventoryReleased", move |e| {
            effect(&s3, e.saga, "order cancelled");
            ev("OrderCancelled")
        })
        .on("InventoryFailed", move |e| {
            effect(&s7, e.saga, "order cancelled");
            ev("OrderCancelled")
        });
    let inventory = Participant::new("inventory")
        .on("OrderCreated", move |e| {
            let text = String::from_utf8(e.payload.to_vec()).unwrap();
            let qty: i64 = text.split(',').next().unwrap().parse().unwrap();
            let mut s = s4.lock().unwrap();
            if s.stock < qty {
                return ev("InventoryFailed");
            }
            s.stock -= qty;
            *s.effects.entry((e.saga, "inventory reserved")).or_default() += 1;
            vec![("InventoryReserved".into(), e.payload.clone())]
        })
        .on("PaymentFailed", move |e| {
            // The compensation: put the stock back.
            let text = String::from_utf8(e.payload.to_vec()).unwrap();
            let qty: i64 = text.split(',').next().unwrap().parse().unwrap();
            let mut s = s5.lock().unwrap();
            s.stock += qty;
            *s.effects.entry((e.saga, "inventory released")).or_default() += 1;
            ev("InventoryReleased")
        });
    let payments = Participant::new("payments").on("InventoryReserved", move |e| {
        let text = String::from_utf8(e.payload.to_vec()).unwrap();
        if text.ends_with(",bad") {
            return vec![("PaymentFailed".into(), e.payload.clone())];
        }
        effect(&s6, e.saga, "payment charged");
        ev("PaymentCompleted")
    });
    Choreography::new()
        .participant(orders)
        .participant(inventory)
        .participant(payments)
}

fn place(c: &mut Choreography, saga: u64, payload: &'static str) {
    c.publish(Event::new(
        format!("order-{saga}"),
        SagaId(saga),
        "OrderPlaced",
        Bytes::from_static(payload.as_bytes()),
    ));
}

fn kinds(c: &Choreography, saga: SagaId) -> Vec<String> {
    c.history()
        .iter()
        .filter(|e| e.saga == saga)
        .map(|e| e.kind.clone())
        .collect()
}

#[test]
fn payment_failure_flows_back_through_the_compensations() {
    let state = Shared::default();
    state.lock().unwrap().stock = 10;
    let mut c = order_saga(&state);
    place(&mut c, 1, "3,bad");
    c.run(1000);
    assert_eq!(
        kinds(&c, SagaId(1)),
        [
            "OrderPlaced",
            "OrderCreated",
            "InventoryReserved",
            "PaymentFailed",
            "InventoryReleased",
            "OrderCancelled"
        ]
    );
    let s = state.lock().unwrap();
    assert_eq!(s.stock, 10, "the reservation was compensated");
    assert!(!s.effects.contains_key(&(SagaId(1), "payment charged")));
}

#[test]
fn happy_path_and_out_of_stock() {
    let state = Shared::default();
    state.lock().unwrap().stock = 5;
    let mut c = order_saga(&state);
    place(&mut c, 1, "4,good");
    place(&mut c, 2, "4,good");
    c.run(1000);
    assert_eq!(
        kinds(&c, SagaId(1)),
        [
            "OrderPlaced",
            "OrderCreated",
            "InventoryReserved",
            "PaymentCompleted",
            "OrderApproved"
        ]
    );
    assert_eq!(
        kinds(&c, SagaId(2)),
        [
            "OrderPlaced",
            "OrderCreated",
            "InventoryFailed",
            "OrderCancelled"
        ]
    );
    assert_eq!(state.lock().unwrap().stock, 1);
}

#[test]
fn redelivered_events_apply_nothing_twice() {
    let seeds: u64 = std::env::var("DSYS_TXN_SAGA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        let mut rng = fastrand::Rng::with_seed(seed);
        let state = Shared::default();
        state.lock().unwrap().stock = 100;
        let mut c = order_saga(&state);
        let payloads = ["3,bad", "2,good", "1,bad", "5,good"];
        for (i, p) in payloads.iter().enumerate() {
            place(&mut c, i as u64, p);
        }
        // Deliver, redelivering random earlier events along the way.
        let mut delivered: Vec<Event> = vec![];
        for _ in 0..10_000 {
            if rng.u32(0..3) == 0 && !delivered.is_empty() {
                let e = delivered[rng.usize(0..delivered.len())].clone();
                c.publish(e);
            }
            match c.deliver_next() {
                Some(e) => delivered.push(e),
                None => break,
            }
        }
        assert_eq!(c.pending(), 0, "seed {seed}: the bus did not drain");
        // Then everything once more.
        for e in c.history().to_vec() {
            c.publish(e);
        }
        c.run(10_000);
        let s = state.lock().unwrap();
        for ((saga, what), n) in &s.effects {
            assert_eq!(*n, 1, "seed {seed}: saga {saga} {what} applied {n} times");
        }
        assert_eq!(
            s.stock,
            100 - 2 - 5,
            "seed {seed}: only the paid orders keep stock"
        );
        let dups: u64 = c
            .participants()
            .iter()
            .map(|p| p.inbox().duplicates())
            .sum();
        assert!(dups > 0, "seed {seed}: nothing was redelivered");
        for (i, p) in payloads.iter().enumerate() {
            let last = kinds(&c, SagaId(i as u64)).last().cloned().unwrap();
            let want = if p.ends_with("bad") {
                "OrderCancelled"
            } else {
                "OrderApproved"
            };
            assert_eq!(last, want, "seed {seed}: saga {i}");
        }
    }
}

#[test]
fn emitted_ids_derive_from_their_cause() {
    let mut p = Participant::new("p").on("A", |_| {
        vec![("B".into(), Bytes::new()), ("B".into(), Bytes::new())]
    });
    let e = Event::new("e1", SagaId(1), "A", Bytes::new());
    let out = p.handle(&e);
    assert_eq!(
        out.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e1>p:B", "e1>p:B#1"]
    );
    assert!(p.handle(&e).is_empty(), "a redelivery is ignored");
    assert_eq!(p.inbox().duplicates(), 1);
    assert!(
        p.handle(&Event::new("x", SagaId(1), "Z", Bytes::new()))
            .is_empty()
    );
    assert_eq!(p.inbox().len(), 1, "unsubscribed kinds are not recorded");
}
