//! Chapter `clocks`: dsys-clocks on the seed articles' problems.
//!
//! 1. Causality: the seed's three-process run, stamped by vector, Lamport and
//!    hybrid logical clocks; only the vector clock tells concurrent events.
//! 2. HLC against skewed physical clocks, and the max-offset guard.
//! 3. A Dynamo/Riak shopping cart with dotted version vectors: concurrent
//!    writes become siblings, superseded ones go away.
//! 4. Spanner's commit wait with a TrueTime-style interval clock.
//!
//! Physical time is simulated with `ManualClock`s, so every number printed
//! is the same on every run.
//!
//! This file is the story: what each section does, checks and prints, in
//! reading order. The machinery it uses lives beside it: `process.rs` (a
//! process of the seed run with its clocks, and the stamped events),
//! `seed.rs` (the seed run replayed and checked against the seed's vectors),
//! `cart.rs` (the cart's values and how a client resolves siblings) and
//! `units.rs` (printing times in milliseconds).

mod cart;
mod process;
mod seed;
mod units;

use std::cmp::Ordering;
use std::time::Duration;

use dsys_clocks::{
    CausalOrder, Hlc, IntervalClock, ManualClock, PhysicalClock, Siblings, Uncertainty,
    UpdateError, VectorClock, VersionVector, WallTime,
};

use crate::report::{self, Res, Table, check, check_eq};
use cart::{Cart, resolve, show_versions};
use process::{max_skew_ms, says, seed_vector};
use seed::SeedRun;
use units::{ms_of, since};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let mut seed = SeedRun::replay()?;
    causality(&seed)?;
    hlc_vs_physical(&mut seed)?;
    shopping_cart()?;
    commit_wait()?;
    Ok(())
}

// --- 1. Causality -----------------------------------------------------------

fn causality(run: &SeedRun) -> Res {
    report::section("1. Causality: the seed's three processes");
    report::note(
        "Each process keeps a vector clock, a Lamport clock and an HLC. m1 goes A -> B, m2 B -> C.",
    );
    let mut table = Table::new(&[
        "event",
        "process",
        "description",
        "vector [A,B,C]",
        "Lamport",
        "HLC (l,c)",
    ])
    .numeric(&[4, 5]);
    for e in &run.events {
        table.row([
            e.name.to_owned(),
            e.process.to_owned(),
            e.description.to_owned(),
            seed_vector(&e.vector),
            e.lamport.to_string(),
            e.hlc.to_string(),
        ]);
    }
    table.print();

    report::note("Every pair of events on different processes, as each clock sees it:");
    let mut pairs = Table::new(&["pair", "vector", "Lamport says", "HLC says", "verdict"]);
    let (mut total, mut concurrent, mut lamport_misorders, mut hlc_misorders) = (0, 0, 0, 0);
    for (i, x) in run.events.iter().enumerate() {
        for y in run.events[i + 1..]
            .iter()
            .filter(|y| y.process != x.process)
        {
            total += 1;
            let order = x.vector.compare(&y.vector);
            let lamport = x.lamport.cmp(&y.lamport);
            let hlc = x.hlc.cmp(&y.hlc);
            let verdict = match order {
                CausalOrder::Before | CausalOrder::After => {
                    // The clock condition: happened-before implies smaller stamps.
                    let expected = order.to_ordering();
                    check(
                        &format!("Lamport and HLC respect {} vs {}", x.name, y.name),
                        Some(lamport) == expected && Some(hlc) == expected,
                    )?;
                    let (first, second) = match order {
                        CausalOrder::Before => (x.name, y.name),
                        _ => (y.name, x.name),
                    };
                    format!("{first} -> {second}: all three agree")
                }
                CausalOrder::Concurrent => {
                    concurrent += 1;
                    lamport_misorders += usize::from(lamport != Ordering::Equal);
                    hlc_misorders += usize::from(hlc != Ordering::Equal);
                    match (lamport, hlc) {
                        (Ordering::Equal, Ordering::Equal) => "concurrent; both tie".to_owned(),
                        (Ordering::Equal, _) => "HLC orders them, but they are concurrent".into(),
                        _ => "Lamport orders them, but they are concurrent".into(),
                    }
                }
                CausalOrder::Equal => "the same point in causal history".to_owned(),
            };
            pairs.row([
                format!("{} vs {}", x.name, y.name),
                order.to_string(),
                says(x, y, x.lamport, y.lamport),
                says(x, y, x.hlc, y.hlc),
                verdict,
            ]);
        }
    }
    pairs.print();
    report::note(&format!(
        "{concurrent} of {total} pairs are concurrent; Lamport puts one first in \
         {lamport_misorders} of them, the HLC in {hlc_misorders}."
    ));

    // The seeds' quiz.
    let v1 = VectorClock::from_entries([("A", 2), ("B", 3), ("C", 1)]);
    let v2 = VectorClock::from_entries([("A", 3), ("B", 2), ("C", 1)]);
    let quiz = v1.compare(&v2);
    check_eq(
        "seed quiz [2,3,1] vs [3,2,1]",
        &quiz,
        &CausalOrder::Concurrent,
    )?;
    report::note(&format!(
        "Seed quiz: V1 = {} vs V2 = {} -> {quiz} (V1 is ahead on B, V2 on A).",
        seed_vector(&v1),
        seed_vector(&v2)
    ));

    report::takeaway(
        "Lamport and HLC respect happened-before but cannot detect concurrency; vector clocks can.",
    );
    Ok(())
}

// --- 2. HLC vs skewed physical clocks ---------------------------------------

fn hlc_vs_physical(run: &mut SeedRun) -> Res {
    report::section("2. Hybrid logical clocks over skewed physical clocks");
    report::note("Physical clocks: B runs 40 ms behind A, C 25 ms ahead. Same run as above:");
    let mut table = Table::new(&[
        "event",
        "process",
        "skew vs A",
        "physical pt (ms)",
        "HLC (l,c)",
        "l - pt (ms)",
    ])
    .numeric(&[2, 3, 4, 5]);
    let mut max_drift = 0;
    for e in &run.events {
        let skew = run
            .processes
            .iter()
            .find(|p| p.name == e.process)
            .map_or(0, |p| p.skew_ms);
        let drift = e.hlc.millis().abs_diff(e.physical_ms);
        max_drift = max_drift.max(drift);
        table.row([
            e.name.to_owned(),
            e.process.to_owned(),
            format!("{skew:+} ms"),
            e.physical_ms.to_string(),
            e.hlc.to_string(),
            drift.to_string(),
        ]);
    }
    table.print();

    let mut messages = Table::new(&[
        "message",
        "route",
        "send pt",
        "recv pt",
        "recv - send",
        "HLC send",
        "HLC recv",
        "HLC order",
    ])
    .numeric(&[2, 3, 4, 5, 6]);
    for (name, route, send, receive) in [("m1", "A -> B", "a2", "b2"), ("m2", "B -> C", "b3", "c2")]
    {
        let (send, receive) = (run.event(send)?, run.event(receive)?);
        check(
            &format!("HLC stamps {name}'s receive after its send"),
            receive.hlc > send.hlc,
        )?;
        let raw_gap = i128::from(receive.physical_ms) - i128::from(send.physical_ms);
        messages.row([
            name.to_owned(),
            route.to_owned(),
            send.physical_ms.to_string(),
            receive.physical_ms.to_string(),
            format!("{raw_gap:+} ms"),
            send.hlc.to_string(),
            receive.hlc.to_string(),
            "send < recv".to_owned(),
        ]);
    }
    messages.print();
    let (a2, b2) = (run.event("a2")?, run.event("b2")?);
    check(
        "raw physical time puts m1's receive before its send",
        b2.physical_ms < a2.physical_ms,
    )?;
    report::note(&format!(
        "By raw physical time, m1 was received {} ms before it was sent.\nThe HLC keeps send < \
         receive, and l stays within {max_drift} ms of pt (the clocks are up to {} ms apart).",
        a2.physical_ms - b2.physical_ms,
        max_skew_ms(&run.processes),
    ));

    // A node whose clock is 2 s ahead of B's sends B a message.
    let b = &mut run.processes[1];
    let d_physical = ManualClock::new(b.physical.now() + Duration::from_secs(2));
    let mut d = Hlc::new(&d_physical);
    let from_d = d.now()?;
    let before = b.hlc.last();
    let error = b
        .hlc
        .update(from_d)
        .err()
        .ok_or("B accepted a timestamp 2 s in its future")?;
    check(
        "update rejects a remote 2 s ahead with RemoteTooFarAhead",
        matches!(error, UpdateError::RemoteTooFarAhead { .. }),
    )?;
    check_eq("B's HLC after the rejected update", &b.hlc.last(), &before)?;
    report::note(&format!(
        "Node D's clock is 2 s ahead of B's. D stamps a message {from_d}; B.update({from_d}) \
         returns Err:"
    ));
    report::quote(&error.to_string());
    report::note(&format!(
        "B's HLC still reads {before}: one bad clock cannot drag the cluster into the future."
    ));

    report::takeaway(
        "An HLC orders receive after send despite skew, stays near physical time, refuses runaway \
         clocks.",
    );
    Ok(())
}

// --- 3. Dynamo shopping cart -------------------------------------------------

fn shopping_cart() -> Res {
    report::section("3. A Dynamo-style shopping cart with dotted version vectors");
    report::note(
        "The cart is one key on server S. A client reads values and context, then writes with \
         that context.",
    );
    let server = "S";
    let mut cart: Siblings<&'static str, Cart> = Siblings::new();
    let mut steps = Table::new(&[
        "step",
        "action",
        "siblings",
        "versions (dot {items})",
        "context",
    ])
    .numeric(&[0, 2]);
    let mut log = |step: usize, action: String, cart: &Siblings<&'static str, Cart>| {
        steps.row([
            step.to_string(),
            action,
            cart.len().to_string(),
            show_versions(cart),
            cart.context().to_string(),
        ]);
    };

    cart.update(&VersionVector::new(), &server, vec!["milk"])?;
    log(1, "Alice adds milk (empty context)".into(), &cart);

    let read = cart.context();
    log(2, format!("Alice and Bob read {read}"), &cart);

    cart.update(&read, &server, vec!["milk", "eggs"])?;
    log(3, format!("Alice adds eggs with {read}"), &cart);

    cart.update(&read, &server, vec!["milk", "bread"])?;
    log(4, format!("Bob adds bread with stale {read}"), &cart);
    check_eq("siblings after two concurrent writes", &cart.len(), &2)?;

    // What a per-server version vector (no dots) would have concluded.
    let versions: Vec<_> = cart.iter().map(|(clock, _)| clock.clone()).collect();
    let (alice, bob) = (&versions[0], &versions[1]);
    let plain = alice.to_version_vector().compare(&bob.to_version_vector());
    let dotted = alice.compare(bob);
    check_eq(
        "DVV verdict on the two writes",
        &dotted,
        &CausalOrder::Concurrent,
    )?;

    let seen = cart.context();
    let merged = resolve(cart.values(), &[]);
    cart.update(&seen, &server, merged)?;
    log(5, format!("Alice merges both with {seen}"), &cart);
    check_eq(
        "the merged cart",
        &cart.values().collect::<Vec<_>>(),
        &vec![&vec!["milk", "eggs", "bread"]],
    )?;
    steps.print();
    report::note(&format!(
        "Plain version vectors would see Alice's {} {plain} Bob's {} and drop the eggs (lost \
         update).\nDots see that Bob's context {} lacks Alice's dot {}: {dotted}, so both stay \
         as siblings.",
        alice.to_version_vector(),
        bob.to_version_vector(),
        bob.context(),
        alice.dot(),
    ));

    // No sibling explosion under stale reads: every round, both clients read
    // (values + context) before either writes, so the laptop's write never
    // sees the phone's write of the same round.
    const ROUNDS: usize = 20;
    report::note(&format!(
        "Then a phone and a laptop, {ROUNDS} rounds: both read values and context, then both \
         write with them:"
    ));
    let mut rounds = Table::new(&[
        "round",
        "phone read ctx",
        "laptop read ctx",
        "dots written",
        "siblings after",
        "surviving dots",
    ])
    .numeric(&[0, 4]);
    // A read: the values and, with them, the context that names them.
    let read = |cart: &Siblings<&'static str, Cart>| -> (Vec<Cart>, VersionVector<&'static str>) {
        (cart.values().cloned().collect(), cart.context())
    };
    for round in 1..=ROUNDS {
        // Both read first...
        let (phone_read, phone_ctx) = read(&cart);
        let (laptop_read, laptop_ctx) = read(&cart);
        // ...then both write what they read plus their item, with that context.
        let phone_dot = cart.update(&phone_ctx, &server, resolve(&phone_read, &["apples"]))?;
        let laptop_dot = cart.update(&laptop_ctx, &server, resolve(&laptop_read, &["coffee"]))?;
        check(
            &format!("round {round}: the laptop's context misses the phone's write"),
            !laptop_ctx.contains(&phone_dot),
        )?;
        // No lost update, no accumulation: exactly this round's two writes.
        let surviving: Vec<_> = cart.iter().map(|(clock, _)| clock.dot().clone()).collect();
        check_eq(
            &format!("siblings after round {round}"),
            &surviving,
            &vec![phone_dot.clone(), laptop_dot.clone()],
        )?;
        if round <= 3 || round > ROUNDS - 2 {
            rounds.row([
                round.to_string(),
                phone_ctx.to_string(),
                laptop_ctx.to_string(),
                format!("{phone_dot}, {laptop_dot}"),
                cart.len().to_string(),
                surviving
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        } else if round == 4 {
            rounds.row(["...", "", "", "", "", ""]);
        }
    }
    rounds.print();
    check_eq(
        "a reader's resolved cart after the rounds",
        &resolve(cart.values(), &[]),
        &vec!["milk", "eggs", "bread", "apples", "coffee"],
    )?;
    report::note(&format!(
        "{ROUNDS} rounds: the laptop's write never saw the phone's, yet exactly those 2 writes \
         remain each time.\nA write's context must come from a read; the dot a write returns is \
         not a context."
    ));

    report::takeaway(
        "Dotted version vectors keep exactly the concurrent writes: no lost update, no sibling \
         explosion.",
    );
    Ok(())
}

// --- 4. Spanner commit wait ----------------------------------------------------

fn commit_wait() -> Res {
    report::section("4. Spanner commit wait with an interval clock");
    let physical = ManualClock::new(WallTime::from_millis(1_700_000_000_000));
    let uncertainty = Uncertainty::default();
    let tt = IntervalClock::new(&physical, uncertainty)?;
    let t0 = physical.now();
    report::note(&format!(
        "TrueTime model: epsilon = {} at a sync (t0), then growing {} ppm (us per s).",
        ms_of(uncertainty.base),
        uncertainty.drift_ppm
    ));

    let mut table = Table::new(&[
        "since sync",
        "epsilon",
        "TT.now().earliest",
        "TT.now().latest",
    ])
    .numeric(&[0, 1, 2, 3]);
    let mut at = 0;
    for seconds in [0, 10, 30] {
        physical.advance(Duration::from_secs(seconds - at));
        at = seconds;
        let now = tt.now();
        table.row([
            format!("{seconds} s"),
            ms_of(tt.epsilon_at(physical.now())),
            since(t0, now.earliest),
            since(t0, now.latest),
        ]);
    }
    table.print();

    // A transaction commits now, 30 s after the sync.
    let s = tt.now().latest;
    let wait = tt.commit_wait(s);
    let done = physical.now() + wait;
    let right_away = tt.after(s);
    let one_ns_short = tt.after_at(s, done - Duration::from_nanos(1));
    let after_wait = tt.after_at(s, done);
    check(
        "after(s) is false until the commit wait is over, then true",
        !right_away && !one_ns_short && after_wait,
    )?;

    let mut commit = Table::new(&["commit at 30 s after sync", "value"]);
    commit
        .row(["s = TT.now().latest", &since(t0, s)])
        .row(["commit_wait(s)", &ms_of(wait)])
        .row(["TT.after(s) right away", &right_away.to_string()])
        .row([
            "TT.after(s) 1 ns before the wait ends",
            &one_ns_short.to_string(),
        ])
        .row(["TT.after(s) once the wait is over", &after_wait.to_string()]);
    commit.print();
    let epsilon = tt.epsilon_at(t0 + Duration::from_secs(30));
    report::note(&format!(
        "Wait = 2 x epsilon (2 x {}) + the {} ppm epsilon grows meanwhile. Then the writes \
         become visible.",
        ms_of(epsilon),
        uncertainty.drift_ppm,
    ));

    report::takeaway(
        "Commit wait trades ~2 epsilon of latency for certainty: s is past before anyone sees \
         the commit.",
    );
    Ok(())
}
