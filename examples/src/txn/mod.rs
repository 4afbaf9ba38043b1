//! Chapter `txn`: dsys-txn on the seeds' distributed transactions (seed 001,
//! "Distributed Transactions: 2PC, Saga, and CQRS") and their outbox (seed
//! 003, "Outbox pattern (reliable messaging)").
//!
//! 1. The seeds' order saga (create order, deduct inventory, process payment,
//!    start shipping): the card is declined and the compensations run in
//!    reverse; the gateway times out after charging, and the refund runs too
//!    (where the seed's Python orchestrator refunds nothing); the orchestrator
//!    crashes while compensating and finishes from its log, each effect
//!    applied once; a compensation that keeps failing leaves the saga stuck
//!    until an operator retries it.
//! 2. Two-phase commit over three shards, and its blocking problem: the
//!    coordinator crashes after Prepare and the shards abort among
//!    themselves (cooperative termination); it crashes after its Commit
//!    reached one shard and the others learn Commit from it; every shard is
//!    prepared and nobody knows, so they block until the coordinator
//!    restarts and presumes abort.
//! 3. The transactional outbox: orders and their events commit (or roll
//!    back) together; the relay dies before publishing and another one
//!    takes over; the events go to a dsys-log partition, whose consumer
//!    drops a redelivery through its inbox; a poison event is dead-lettered
//!    while other keys flow, then replayed.
//!
//! This file is the story: what each section shows, checks and prints, in
//! reading order. The machinery lives beside it:
//! - `saga.rs`: the saga's definition, the four services (which remember
//!   the idempotency keys they applied), and a driver for the sans-IO
//!   orchestrator on virtual time with a SQLite saga log;
//! - `twopc.rs`: the coordinator and the shards on a tiny in-order network,
//!   their logs, virtual time, and the trace the tables print;
//! - `outbox.rs`: the orders service's SQLite database, the broker in front
//!   of a dsys-log partition, and the shipping service with its inbox.
//!
//! Nothing reads a real clock or a random number: every run prints the same.

mod outbox;
mod saga;
mod twopc;

use std::time::Duration;

use dsys_txn::outbox::{OutboxStore, Relay};
use dsys_txn::saga::{InvokeKind, Outcome, SagaId, SagaStatus};
use dsys_txn::twopc::{Outcome as Decision, ParticipantStatus, TxId, Vote};

use crate::report::{self, Res, Table, check, check_eq};
use outbox::{Broker, Orders, Shipping};
use saga::{
    COMPENSATIONS, Call, Driver, Gateway, INPUT, PAYMENT, PAYMENT_TIMEOUT, RESTORE_ATTEMPTS, STEPS,
    STOCK, Services, Stop, name, outcome_text, seconds,
};
use twopc::{ASK_AFTER, Cluster, Line, Node, SHARDS};

/// Every shard votes Yes (sections 2b and 2c).
const ALL_YES: [(Node, Vote); 3] = [
    ("inventory", Vote::Yes),
    ("orders", Vote::Yes),
    ("payments", Vote::Yes),
];

/// Runs the chapter.
pub(crate) fn run() -> Res {
    order_saga()?;
    two_phase_commit()?;
    transactional_outbox()?;
    Ok(())
}

// --- 1. The order saga -----------------------------------------------------------------

fn order_saga() -> Res {
    report::section("1. The order saga: the payment fails, compensations run in reverse");
    report::note(&format!(
        "The seeds' order saga lists four steps, each with a compensation (its Python code \
         defines the first three): {}. When a step fails, the compensations of the steps \
         before it run in reverse order. Here it runs on dsys-txn's saga Orchestrator, which \
         does no I/O: it writes each decision to a saga log (SqliteSagaLog, in memory here) before acting on it, and hands out \
         invocations, each with an idempotency key that stays the same across attempts and \
         restarts. The four services remember the keys they have applied and answer a \
         repeated key with its first result. Every saga's input: \"{INPUT}\"; {STOCK} \
         widgets in stock.",
        STEPS
            .iter()
            .zip(COMPENSATIONS)
            .map(|(s, c)| format!("{s} / {c}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));

    declined()?;
    timed_out()?;
    crash_while_compensating()?;
    stuck()?;

    report::takeaway(
        "A saga undoes its steps in reverse, from a log: decisions durable before they act, \
         effects keyed to apply once, a timeout counted as maybe-done, and a failed undo \
         left to a person, not lost.",
    );
    Ok(())
}

/// Saga 1: the card is declined; the compensations run in reverse.
fn declined() -> Res {
    report::note(
        "Saga 1: the card is declined, an error that retrying cannot fix \
         (StepError::non_retryable). Each invocation the orchestrator handed out:",
    );
    let mut services = Services::new(Gateway::Declines);
    let mut driver = Driver::new()?;
    driver.start(SagaId(1))?;
    check_eq(
        "saga 1 runs to its end",
        &driver.run(&mut services, |_| false)?,
        &Stop::Idle,
    )?;
    calls_table(&driver.calls).print();
    check_eq(
        "saga 1 compensates the completed steps in reverse",
        &compensations(&driver.calls),
        &vec!["restore_inventory", "cancel_order"],
    )?;
    check(
        "saga 1 never starts shipping",
        !driver.calls.iter().any(|c| c.step == 3),
    )?;
    check(
        "saga 1 ends compensated at the payment",
        matches!(
            driver.outcome(SagaId(1)),
            Some(Outcome::Compensated {
                failed_step: PAYMENT,
                ..
            })
        ),
    )?;
    check_eq("saga 1 restores the stock", &services.stock, &STOCK)?;
    check_eq("saga 1 charges nothing", &services.charged, &0)?;
    check_eq(
        "saga 1 cancels its order",
        &services.orders.get(&SagaId(1)).copied(),
        &Some("cancelled"),
    )?;
    report::note(
        "Its log, the saga's only durable state: every attempt is logged before it is \
         invoked, every result before the next step.",
    );
    let records = driver.records()?;
    records_table(&records).print();

    Ok(())
}

/// Sagas 2 and 3: the gateway charges the card and times out; the payment is refunded too.
fn timed_out() -> Res {
    report::note(&format!(
        "The seed's Python SagaOrchestrator gets saga 1 right. Its example fails differently, \
         though: process_payment raises \"Payment gateway timeout\", and the orchestrator \
         compensates only `completed_steps`, so the payment is never refunded. But a timeout \
         does not say that nothing happened: the gateway may have charged the card and lost \
         the answer. dsys-txn tells the two apart. Only the step's own non-retryable answer \
         (declined) says that its action did nothing. An attempt that outruns its timeout \
         ({} here) is retried with the same key, and when the retries are spent its effect \
         is unknown, so the step's own compensation runs too. Saga 2: the gateway charges \
         the card and its answer never arrives.",
        seconds(PAYMENT_TIMEOUT),
    ));
    let mut services = Services::new(Gateway::ChargesButTimesOut);
    let mut driver = Driver::new()?;
    driver.start(SagaId(2))?;
    driver.run(&mut services, |_| false)?;
    calls_table(&driver.calls).print();
    let payment_key = dsys_txn::saga::idempotency_key(SagaId(2), PAYMENT, InvokeKind::Action);
    check_eq(
        "saga 2 tries the payment three times",
        &services.calls.get(&payment_key).copied(),
        &Some(3),
    )?;
    check_eq(
        "the gateway charges saga 2 once",
        &services.applied.get(&payment_key).copied(),
        &Some(1),
    )?;
    check_eq(
        "saga 2 refunds the payment, then undoes the rest in reverse",
        &compensations(&driver.calls),
        &vec!["refund_payment", "restore_inventory", "cancel_order"],
    )?;
    check_eq("saga 2 ends with nothing charged", &services.charged, &0)?;
    let records = driver.records()?;
    let failed = records
        .iter()
        .find(|r| r.starts_with("StepFailed"))
        .ok_or("saga 2 logs StepFailed")?;
    check(
        "saga 2's log says the payment's effect is unknown",
        failed.contains("compensate it too"),
    )?;
    report::note("The record that decided it:");
    report::quote(failed);
    report::note(
        "The refund had no payment id to work from (the answer was lost), so the payment \
         service looked the charge up by the action's idempotency key. A compensation must \
         also work when its action never happened: then it does nothing.",
    );

    // Saga 3: the step reports the timeout itself, as the seed raises it.
    let mut services = Services::new(Gateway::ChargesButReportsTimeout);
    let mut driver = Driver::new()?;
    driver.start(SagaId(3))?;
    driver.run(&mut services, |_| false)?;
    let payment_key = dsys_txn::saga::idempotency_key(SagaId(3), PAYMENT, InvokeKind::Action);
    check_eq(
        "saga 3 tries the payment three times",
        &services.calls.get(&payment_key).copied(),
        &Some(3),
    )?;
    let undone = compensations(&driver.calls);
    check_eq(
        "saga 3 refunds the payment too",
        &undone,
        &vec!["refund_payment", "restore_inventory", "cancel_order"],
    )?;
    check_eq("saga 3 ends with nothing charged", &services.charged, &0)?;
    report::note(&format!(
        "The same holds when the step reports the timeout itself, as the seed's code \
         raises it: saga 3's payment step returns StepError::retryable(\"timeout\", \
         \"Payment gateway timeout\") three times, after the gateway charged the card. A \
         retryable error is no proof that nothing happened (the first attempt may still \
         land), so saga 3 compensates {}: the card ends with {} charged.",
        undone.join(", then "),
        services.charged,
    ));

    Ok(())
}

/// Saga 4: the orchestrator crashes while compensating and recovers from its log.
fn crash_while_compensating() -> Res {
    report::note(
        "Two more things the Python version cannot do. If a compensation raises, it raises \
         RuntimeError and the compensations after it never run, with nobody left to finish \
         them. And it keeps `completed_steps` in memory, so if the orchestrator crashes, the \
         saga is forgotten half done. Saga 4 is saga 1 again, but the orchestrator crashes \
         right after the inventory service restored the stock, before the answer came back. \
         All that survives is the log:",
    );
    let mut services = Services::new(Gateway::Declines);
    let mut driver = Driver::new()?;
    driver.start(SagaId(4))?;
    let stop = driver.run(&mut services, |call| {
        call.kind == InvokeKind::Compensation && call.step == 1
    })?;
    check_eq("saga 4's orchestrator crashes", &stop, &Stop::Crashed)?;
    let records = driver.records()?;
    records_table(&records).print();
    check(
        "the log does not know the restore finished",
        !records
            .iter()
            .any(|r| r.starts_with("CompensationCompleted")),
    )?;
    let Driver { log, now, .. } = driver;
    let mut driver = Driver::recover(log, now)?;
    check_eq(
        "the new orchestrator resumes one saga",
        &driver.orchestrator.counters().recovered,
        &1,
    )?;
    driver.run(&mut services, |_| false)?;
    report::note(
        "A new orchestrator reads the log (Orchestrator::recover): the restore was started \
         and not finished, so it invokes it again, with the same key. Its invocations:",
    );
    calls_table(&driver.calls).print();
    let restore_key = dsys_txn::saga::idempotency_key(SagaId(4), 1, InvokeKind::Compensation);
    check_eq(
        "the restore is invoked twice",
        &services.calls.get(&restore_key).copied(),
        &Some(2),
    )?;
    check_eq(
        "and applied once",
        &services.applied.get(&restore_key).copied(),
        &Some(1),
    )?;
    check(
        "every key applied at most once",
        services.applied.values().all(|&n| n == 1),
    )?;
    check_eq("saga 4 restores the stock once", &services.stock, &STOCK)?;
    check(
        "saga 4 finishes after the crash",
        matches!(
            driver.outcome(SagaId(4)),
            Some(Outcome::Compensated {
                failed_step: PAYMENT,
                ..
            })
        ),
    )?;
    report::note(&format!(
        "Stock {STOCK}, as before the saga: the second restore found its key and applied \
         nothing. Every key the services saw was applied exactly once."
    ));

    Ok(())
}

/// Saga 5: a compensation keeps failing; the saga is stuck until an operator retries it.
fn stuck() -> Res {
    report::note(&format!(
        "Saga 5: the card is declined and the inventory service is down, so \
         restore_inventory fails; its policy allows {RESTORE_ATTEMPTS} attempts with \
         backoff. Then the saga is stuck: the seeds' \"manual intervention\", but recorded, \
         with a reason, and resumable.",
    ));
    let mut services = Services::new(Gateway::Declines);
    services.inventory_down = true;
    let mut driver = Driver::new()?;
    driver.start(SagaId(5))?;
    driver.run(&mut services, |_| false)?;
    calls_table(&driver.calls).print();
    let Some(SagaStatus::Stuck { step, reason }) = driver.orchestrator.status(SagaId(5)) else {
        return Err("saga 5 should be stuck".into());
    };
    check_eq("saga 5 is stuck on the inventory", &step, &1)?;
    check(
        "the stuck saga was reported",
        driver
            .reports
            .iter()
            .any(|r| matches!(r, dsys_txn::saga::Output::Stuck { .. })),
    )?;
    report::note(&format!(
        "Orchestrator::status(saga 5) = Stuck at {}:",
        name(step, InvokeKind::Compensation)
    ));
    report::quote(&reason);
    services.inventory_down = false;
    let seen = driver.calls.len();
    driver.now = driver.now + Duration::from_secs(3600);
    driver.orchestrator.retry_stuck(SagaId(5), driver.now)?;
    driver.run(&mut services, |_| false)?;
    report::note(
        "An hour later the inventory service is back and an operator calls \
         Orchestrator::retry_stuck(saga 5): the restore gets a fresh policy, and the saga \
         goes on where it stopped.",
    );
    calls_table(&driver.calls[seen..]).print();
    check_eq(
        "the operator's retry finishes the compensations",
        &compensations(&driver.calls[seen..]),
        &vec!["restore_inventory", "cancel_order"],
    )?;
    check_eq("saga 5 restores the stock", &services.stock, &STOCK)?;
    let outcome = driver.outcome(SagaId(5)).ok_or("saga 5 finishes")?;
    report::note(&format!("Saga 5: {}.", outcome_text(outcome)));

    Ok(())
}

/// The compensations among `calls`, in order, each once.
fn compensations(calls: &[Call]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in calls.iter().filter(|c| c.kind == InvokeKind::Compensation) {
        let n = name(c.step, c.kind);
        if out.last() != Some(&n) {
            out.push(n);
        }
    }
    out
}

fn calls_table(calls: &[Call]) -> Table {
    let mut table = Table::new(&[
        "at",
        "invocation",
        "attempt",
        "idempotency key",
        "the service",
        "reply",
    ])
    .numeric(&[0, 2]);
    for c in calls {
        table.row([
            seconds(c.at),
            name(c.step, c.kind).to_owned(),
            c.attempt.to_string(),
            c.key.clone(),
            c.effect.clone(),
            c.reply.clone(),
        ]);
    }
    table
}

fn records_table(records: &[String]) -> Table {
    let mut table = Table::new(&["#", "saga log record"]).numeric(&[0]);
    for (i, r) in records.iter().enumerate() {
        table.row([(i + 1).to_string(), r.clone()]);
    }
    table
}

// --- 2. Two-phase commit ---------------------------------------------------------------

fn two_phase_commit() -> Res {
    report::section("2. Two-phase commit and its blocking problem");
    report::note(
        "The seeds' 2PC: the coordinator asks every participant \"Are you ready?\", each \
         answers YES, then it tells all \"Commit!\". And its weakness: \"if the Coordinator \
         crashes after Phase 1, Participants are stuck in a blocking state indefinitely.\" \
         dsys-txn's Coordinator and Participant are sans-IO state machines with presumed \
         abort (R*, Mohan et al. 1986): the coordinator forces a Commit record before any \
         Commit leaves, and logs nothing for an abort. A participant forces Prepared before \
         it votes Yes. A prepared participant that hears nothing asks the coordinator and \
         the other participants (cooperative termination, Bernstein et al. 1987 section \
         7.4). An order touches three shards: inventory, orders, payments. Every message \
         below is one delivery on the network; \"logs\" is a node's own log write.",
    );

    coordinator_crashes_after_prepare()?;
    coordinator_crashes_during_commit()?;
    everyone_prepared_nobody_knows()?;

    report::takeaway(
        "2PC is atomic but can block: asking the other participants ends most waits, but \
         when all are prepared only the coordinator's log can.",
    );
    Ok(())
}

/// (a) The coordinator crashes after Prepare; payments has not voted: all abort.
fn coordinator_crashes_after_prepare() -> Res {
    report::note(&format!(
        "(a) tx1. The coordinator sends Prepare and crashes before it hears a vote (its \
         Prepares are on the wire already). \
         inventory and orders vote Yes; payments is still running its fraud check, so it \
         has not voted. After {} without a decision, the prepared shards ask:",
        seconds(ASK_AFTER)
    ));
    let tx = TxId(1);
    let mut cluster = Cluster::new(Some("payments"))?;
    cluster.work(tx, &[("inventory", Vote::Yes), ("orders", Vote::Yes)], true)?;
    cluster.begin(tx)?;
    cluster.crash_coordinator();
    cluster.run_for(Duration::from_secs(10))?;
    trace_table(&cluster.trace).print();
    for shard in SHARDS {
        check_eq(
            &format!("{shard} aborts tx1 without the coordinator"),
            &cluster.decided.get(shard).cloned(),
            &Some(vec![Decision::Abort]),
        )?;
    }
    let late = cluster.late_vote("payments", tx, Vote::Yes)?;
    let Err(refused) = late else {
        return Err("payments' late Yes should be refused".into());
    };
    report::note(
        "payments had started work on tx1 (Participant::join) but promised nothing, so when \
         asked it could abort on its own: it made the abort durable first (a shard that \
         forgot it could vote Yes on a replayed Prepare), then answered Abort. Every shard \
         aborted with the coordinator still down. (A shard that never joined answers \
         Unknown instead: it cannot tell whether it voted before a crash.) When the fraud \
         check ends, payments' Yes comes too late:",
    );
    report::quote(&format!("Participant::vote(tx1, Yes) = Err({refused})"));
    // The same without `join`: payments only answers Unknown, and the others wait.
    let mut unjoined = Cluster::new(Some("payments"))?;
    unjoined.work(
        tx,
        &[("inventory", Vote::Yes), ("orders", Vote::Yes)],
        false,
    )?;
    unjoined.begin(tx)?;
    unjoined.crash_coordinator();
    unjoined.run_for(Duration::from_secs(10))?;
    check(
        "a shard that never joined answers Unknown",
        unjoined
            .trace
            .iter()
            .any(|l| l.from == "payments" && l.what == "DecisionReply Unknown"),
    )?;
    check("and nobody decides", unjoined.decided.is_empty())?;

    Ok(())
}

/// (b) The coordinator crashes after its Commit reached one shard: all commit.
fn coordinator_crashes_during_commit() -> Res {
    report::note(
        "(b) tx2. Every shard votes Yes; the coordinator forces its Commit record, sends \
         Commit to inventory and crashes before the other two messages leave. orders and \
         payments are prepared and hear nothing; they ask, and inventory knows:",
    );
    let tx = TxId(2);
    let mut cluster = Cluster::new(None)?;
    cluster.work(tx, &ALL_YES, true)?;
    cluster.crash_coordinator_after_first_decision();
    cluster.begin(tx)?;
    cluster.run_for(Duration::from_secs(5))?;
    let before_restart = cluster.trace.len();
    for shard in SHARDS {
        check_eq(
            &format!("{shard} commits tx2 without the coordinator"),
            &cluster.decided.get(shard).cloned(),
            &Some(vec![Decision::Commit]),
        )?;
    }
    cluster.restart_coordinator()?;
    cluster.run_for(Duration::from_secs(2))?;
    trace_table(&cluster.trace).print();
    check(
        "the restarted coordinator finishes tx2 with an End record",
        matches!(
            cluster.coordinator_log().last(),
            Some(dsys_txn::twopc::Record::End { .. })
        ),
    )?;
    check_eq(
        "the coordinator then forgets tx2",
        &cluster.coordinator_holds(),
        &0,
    )?;
    report::note(&format!(
        "All three committed while the coordinator was down (rows up to {before_restart}). \
         When it restarts, its log holds Commit without End, so it sends Commit again; once \
         every shard has acknowledged, it writes End and forgets tx2.",
    ));

    Ok(())
}

/// (c) All prepared, nobody knows: blocked until the coordinator restarts.
fn everyone_prepared_nobody_knows() -> Res {
    report::note(
        "(c) tx3. Every shard votes Yes and the coordinator crashes before it decides. Now \
         every shard is prepared: none may abort on its own (the coordinator may have \
         logged Commit), none may commit (it may not have). Asking each other, they only \
         hear Unknown:",
    );
    let tx = TxId(3);
    let mut cluster = Cluster::new(None)?;
    cluster.work(tx, &ALL_YES, true)?;
    cluster.begin(tx)?;
    cluster.crash_coordinator();
    cluster.run_for(ASK_AFTER)?;
    cluster.mute(true);
    let blocked_for = Duration::from_secs(60);
    cluster.run_for(blocked_for)?;
    cluster.mute(false);
    for shard in SHARDS {
        check_eq(
            &format!("{shard} is blocked on tx3"),
            &cluster.status(shard, tx),
            &Some(ParticipantStatus::Prepared),
        )?;
        check(
            &format!("{shard} has not decided tx3"),
            !cluster.decided.contains_key(shard),
        )?;
    }
    let blocked_messages = cluster.muted_messages;
    check("the blocked shards keep asking", blocked_messages > 0)?;
    cluster.trace.push(Line {
        from: "(all)",
        to: "-",
        what: format!(
            "{} s more: {blocked_messages} messages",
            blocked_for.as_secs()
        ),
        note: "every answer Unknown: blocked",
    });
    cluster.restart_coordinator()?;
    cluster.run_for(Duration::from_secs(2))?;
    trace_table(&cluster.trace).print();
    for shard in SHARDS {
        check_eq(
            &format!("{shard} aborts tx3 once the coordinator is back"),
            &cluster.decided.get(shard).cloned(),
            &Some(vec![Decision::Abort]),
        )?;
    }
    check(
        "the coordinator's log held no Commit for tx3",
        cluster.coordinator_log().is_empty(),
    )?;
    report::note(&format!(
        "For {} s (and it would be forever) the three shards held tx3's locks and asked \
         in vain, the seeds' \"blocking state indefinitely\". Cooperative termination shrinks \
         the window, it cannot close it: once all are prepared, only the coordinator \
         knows. It came back with no Commit record, so tx3 never committed: presumed abort, \
         and the next DecisionRequest is answered Abort.",
        blocked_for.as_secs(),
    ));

    Ok(())
}

fn trace_table(lines: &[Line]) -> Table {
    let mut table = Table::new(&["#", "from", "to", "message / event", ""]).numeric(&[0]);
    for (i, l) in lines.iter().enumerate() {
        table.row([
            (i + 1).to_string(),
            l.from.to_owned(),
            l.to.to_owned(),
            l.what.clone(),
            l.note.to_owned(),
        ]);
    }
    table
}

// --- 3. The outbox ---------------------------------------------------------------------

fn transactional_outbox() -> Res {
    report::section("3. The outbox: an order and its event commit together");
    report::note(
        "Seed 003's outbox: BEGIN; INSERT INTO orders ...; INSERT INTO outbox ... \
         'OrderCreated' ...; COMMIT; and a worker that selects pending rows FOR UPDATE \
         SKIP LOCKED, publishes them to Kafka and marks them published. dsys-txn's \
         SqliteOutbox::enqueue writes the event into the caller's own transaction, with \
         its key's next gapless sequence number. Relays lease the outbox's partitions and \
         publish each key's events in order. (Plain SKIP LOCKED breaks that: a second \
         worker skips a key's locked first event and publishes its second.) Here the \
         orders service keeps its orders and its outbox in one SQLite database, and the \
         relay publishes to a dsys-log partition (LogPublisher) through a broker with a \
         schema registry.",
    );

    let mut orders = Orders::new()?;
    let mut broker = Broker::new()?;
    let relay = first_orders(&mut orders, &mut broker)?;
    let mut relay = relay_dies(&mut orders, &mut broker, relay)?;
    let mut shipping = consumer_crashes(&orders, &broker)?;
    poison_event(&mut orders, &mut broker, &mut relay, &mut shipping)?;
    events_per_key(&shipping)?;

    report::takeaway(
        "The event commits with its change, is published at least once and in order per \
         key, and the consumer drops what it has seen: no change without its event.",
    );
    Ok(())
}

/// Three orders, one rolled back; relay-1 publishes the other two.
fn first_orders(orders: &mut Orders, broker: &mut Broker) -> Res<Relay> {
    let mut writes = Table::new(&["transaction", "orders row", "event", "ends with"]);
    orders.write(1001, "created", &[("OrderCreated", "v1")], true)?;
    writes.row(["order 1001", "created", "OrderCreated", "COMMIT"]);
    orders.write(1002, "created", &[("OrderCreated", "v1")], true)?;
    writes.row(["order 1002", "created", "OrderCreated", "COMMIT"]);
    orders.write(1003, "created", &[("OrderCreated", "v1")], false)?;
    writes.row([
        "order 1003",
        "created",
        "OrderCreated",
        "ROLLBACK (stock check failed)",
    ]);
    writes.print();
    check_eq("two orders are stored", &orders.order_count()?, &2)?;
    check_eq(
        "two events wait in the outbox",
        &orders.store.backlog()?,
        &2,
    )?;
    let mut relay = Relay::new("relay-1", orders.config.clone())?;
    let pass = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq("relay-1 publishes both", &pass.published, &2)?;
    report::note(&format!(
        "The rolled-back order left no row and no event. relay-1 takes the outbox's {} \
         partition leases and publishes the two events.",
        pass.partitions_held
    ));

    Ok(relay)
}

/// relay-1 dies with events committed and unpublished; relay-2 takes over (and an acknowledgement is lost).
fn relay_dies(orders: &mut Orders, broker: &mut Broker, relay: Relay) -> Res<Relay> {
    orders.advance(Duration::from_secs(1));
    orders.write(1001, "paid", &[("OrderPaid", "v1")], true)?;
    let paid = orders.write(1002, "paid", &[("OrderPaid", "v1")], true)?;
    drop(relay);
    check_eq(
        "the paid events wait in the outbox",
        &orders.store.backlog()?,
        &2,
    )?;
    let mut relay = Relay::new("relay-2", orders.config.clone())?;
    let early = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq(
        "relay-2 publishes nothing while relay-1's leases last",
        &early.published,
        &0,
    )?;
    broker.lose_ack_of = paid.first().copied();
    orders.advance(orders.config.lease_duration);
    let pass = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq("relay-2 publishes order-1001's event", &pass.published, &1)?;
    check_eq("and retries order-1002's", &pass.retried, &1)?;
    orders.advance(orders.config.backoff_initial);
    let retry = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq("the retry publishes it again", &retry.published, &1)?;
    check_eq(
        "the partition holds five records for four events",
        &broker.len(),
        &5,
    )?;
    report::note(&format!(
        "Orders 1001 and 1002 are paid (two more transactions, two more events), and the \
         relay's process dies before its next pass: committed, not published. The events \
         wait in the table. relay-2 starts; its first pass publishes {} events, since \
         relay-1's leases have not run out and no two relays may publish a partition at \
         once. {} s later they have expired and relay-2 publishes both, but the broker's \
         acknowledgement of order-1002's OrderPaid is lost: the relay cannot tell whether \
         it was written, so it records a failure and publishes it again {} ms later. It \
         was written: the partition now holds it twice. At least once, not exactly once.",
        early.published,
        orders.config.lease_duration.as_secs(),
        orders.config.backoff_initial.as_millis(),
    ));

    Ok(relay)
}

/// The shipping service reads, crashes before committing its offset, and reads again.
fn consumer_crashes(orders: &Orders, broker: &Broker) -> Res<Shipping> {
    report::note(
        "The shipping service reads the partition. For each record it runs one transaction \
         in its own database: the inbox row (SqliteInbox::process, keyed by the event id \
         the relay put in the header `outbox-event-id`) and its work. It handles three \
         records, then crashes before it commits its offset, so it reads them again; and \
         it meets the OrderPaid published twice:",
    );
    let mut shipping = Shipping::new()?;
    let mut reads = Table::new(&["read", "offset", "key", "seq", "event", "event id", "inbox"])
        .numeric(&[1, 3, 5]);
    let first = broker.fetch(shipping.committed)?;
    for d in first.iter().take(3) {
        let fresh = shipping.process(d, orders.now())?;
        check("a first delivery is processed", fresh)?;
        reads.row(delivery_row("1st", d, fresh));
    }
    let again = broker.fetch(shipping.committed)?;
    let mut dropped = 0;
    for d in &again {
        let fresh = shipping.process(d, orders.now())?;
        dropped += u32::from(!fresh);
        reads.row(delivery_row("after crash", d, fresh));
    }
    shipping.committed = again.last().map_or(shipping.committed, |d| d.offset + 1);
    reads.print();
    check_eq(
        "the inbox drops the three redeliveries and the second copy",
        &dropped,
        &4,
    )?;

    Ok(shipping)
}

/// A poison event is dead-lettered while other keys flow; the operator replays it.
fn poison_event(
    orders: &mut Orders,
    broker: &mut Broker,
    relay: &mut Relay,
    shipping: &mut Shipping,
) -> Res {
    orders.advance(Duration::from_secs(1));
    orders.write(1003, "created", &[("OrderCreated", "v1")], true)?;
    orders.write(1001, "shipped", &[("OrderShipped", "v1")], true)?;
    orders.write(
        1002,
        "refunded",
        &[("OrderRefunded", outbox::NEW_SCHEMA)],
        true,
    )?;
    orders.write(1002, "closed", &[("OrderClosed", "v1")], true)?;
    let pass = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq("the other keys' events are published", &pass.published, &2)?;
    check_eq("the poison event is dead-lettered", &pass.dead_lettered, &1)?;
    let dead = orders.store.dead_letters(None, 10)?;
    let [letter] = dead.as_slice() else {
        return Err("one dead letter".into());
    };
    check("the dead letter parks its key", letter.parks_key)?;
    check_eq(
        "order-1002's OrderClosed waits behind it",
        &orders.store.backlog()?,
        &2,
    )?;
    report::note(
        "Four more transactions: order 1003 is created (for real this time), 1001 shipped, \
         1002 refunded and closed. The OrderRefunded event uses a schema the broker's \
         registry does not know yet: the broker refuses it as poison \
         (PublishError::Poison), and the relay dead-letters it at once instead of retrying. \
         Its key is parked (DeadLetterPolicy::Park), so order-1002's OrderClosed waits \
         behind it, while order-1001 and order-1003 flow. The operator's view, \
         OutboxStore::dead_letters:",
    );
    let mut letters = Table::new(&["event id", "key", "seq", "attempts", "error", "parks key"])
        .numeric(&[0, 2, 3]);
    letters.row([
        letter.event.id.to_string(),
        String::from_utf8_lossy(&letter.event.key).into_owned(),
        letter.event.seq.to_string(),
        letter.event.attempts.to_string(),
        letter.error.clone(),
        if letter.parks_key { "yes" } else { "no" }.to_owned(),
    ]);
    letters.print();
    let id = letter.event.id;
    broker.knows_new_schema = true;
    check(
        "the operator replays the dead letter",
        orders.store.replay_dead_letter(id)?,
    )?;
    orders.advance(Duration::from_secs(1));
    let pass = relay.run_pass(&mut orders.store, broker, &orders.clock)?;
    check_eq(
        "the replayed event and the one behind it are published",
        &pass.published,
        &2,
    )?;
    check_eq(
        "nothing is left in the outbox",
        &orders.store.backlog()?,
        &0,
    )?;
    report::note(
        "The operator registers the schema and replays the dead letter \
         (OutboxStore::replay_dead_letter): the next pass publishes OrderRefunded, then \
         OrderClosed. The shipping service reads on from its offset (across keys the order \
         is the relay's, partition by partition: only each key's order is promised):",
    );
    let mut reads =
        Table::new(&["offset", "key", "seq", "event", "event id", "inbox"]).numeric(&[0, 2, 4]);
    for d in broker.fetch(shipping.committed)? {
        let fresh = shipping.process(&d, orders.now())?;
        check("a first delivery is processed", fresh)?;
        let row = delivery_row("", &d, fresh);
        reads.row(row.into_iter().skip(1));
        shipping.committed = d.offset + 1;
    }
    reads.print();

    Ok(())
}

/// What the shipping service handled, per key: each event once, in order.
fn events_per_key(shipping: &Shipping) -> Res {
    let handled = shipping.handled()?;
    report::note("What the shipping service handled, per key, in the order it handled them:");
    let mut per_key = Table::new(&["key", "events (seq: type)"]);
    for (key, events) in &handled {
        let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        check_eq(
            &format!("{key}'s events arrive once each, in order"),
            &seqs,
            &expected,
        )?;
        per_key.row([
            key.clone(),
            events
                .iter()
                .map(|(s, k)| format!("{s}: {k}"))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    per_key.print();
    check_eq(
        "order-1002's events, refund included, in order",
        &handled
            .get("order-1002")
            .map(|e| e.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>()),
        &Some(vec![
            "OrderCreated",
            "OrderPaid",
            "OrderRefunded",
            "OrderClosed",
        ]),
    )?;
    check_eq(
        "order-1003's rolled-back event was never published",
        &handled.get("order-1003").map(Vec::len),
        &Some(1),
    )?;
    report::note(
        "order-1003 has one OrderCreated, numbered 1: the rolled-back transaction took its \
         sequence number with it. Every key's events arrived once each, in order, through \
         a relay crash, a lost acknowledgement, a consumer crash and a poison event.",
    );

    Ok(())
}

fn delivery_row(read: &str, d: &outbox::Delivery, fresh: bool) -> Vec<String> {
    vec![
        read.to_owned(),
        d.offset.to_string(),
        d.key.clone(),
        d.seq.to_string(),
        d.kind.clone(),
        d.id.to_string(),
        if fresh {
            "new: processed".to_owned()
        } else {
            "seen: dropped".to_owned()
        },
    ]
}
