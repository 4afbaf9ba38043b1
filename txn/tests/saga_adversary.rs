//! Adversarial checks of the saga module, written by a reviewer who did not
//! write it: each test is a way a legitimate user, log or scheduler could
//! break a promise of the module docs. Every test here failed before the
//! fix it names.

mod saga_common;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Clock, Config, Event, Inbox, MemSagaLog, Orchestrator, Outcome, Output, Participant,
    RecoverError, RetryPolicy, Runner, RunnerError, RunnerEvent, SagaDefinition, SagaId, SagaLog,
    SagaRecord, Sleep, Step, StepContext, StepDefinition, StepError,
};
use futures::FutureExt;
use saga_common::{VirtualTime, Yield};

const T0: WallTime = WallTime::from_millis(1_700_000_000_000);

fn def(name: &str, steps: &[(&str, bool)]) -> SagaDefinition {
    let mut d = SagaDefinition::new(name);
    for (s, compensated) in steps {
        let mut step = StepDefinition::new(*s);
        if !compensated {
            step = step.without_compensation();
        }
        d = d.step(step);
    }
    d
}

/// Runs `o` with every record acknowledged at once and every invocation
/// answered by `answer`, until nothing moves but time, without firing
/// timers; returns the records.
fn drive(
    o: &mut Orchestrator,
    answer: &mut dyn FnMut(&dsys_txn::saga::Invocation) -> Option<Result<Bytes, StepError>>,
    ack: bool,
) -> Vec<(SagaId, SagaRecord)> {
    let mut log = vec![];
    while let Some(out) = o.poll_output() {
        match out {
            Output::Persist { id, saga, record } => {
                log.push((saga, record));
                if ack {
                    o.on_persisted(id);
                }
            }
            Output::Invoke(inv) => {
                if let Some(r) = answer(&inv) {
                    o.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, r, T0);
                }
            }
            _ => {}
        }
    }
    log
}

fn orchestrator(defs: &[SagaDefinition]) -> Orchestrator {
    let mut o = Orchestrator::new(Config::default()).unwrap();
    for d in defs {
        o.define(d.clone()).unwrap();
    }
    o
}

/// The log of a two-step saga that completed both steps, with its
/// `Finished` record lost in the crash.
fn log_both_steps_done(original: &SagaDefinition) -> Vec<(SagaId, SagaRecord)> {
    let mut o = orchestrator(std::slice::from_ref(original));
    o.start(SagaId(1), &original.name, Bytes::new(), T0)
        .unwrap();
    let mut log = drive(&mut o, &mut |_| Some(Ok(Bytes::from_static(b"out"))), true);
    assert!(matches!(log.pop(), Some((_, SagaRecord::Finished { .. }))));
    log
}

/// Bug: `Started` named the definition but not its steps, so a definition
/// changed between the crash and the recovery (a step appended, renamed,
/// inserted, or its compensation dropped) was silently applied to the old
/// log: recovery ran a step the saga never had, or compensated the wrong
/// one. It must be refused with a typed error.
#[test]
fn recovery_refuses_a_changed_definition() {
    let original = def("trip", &[("book", true), ("pay", true)]);
    let log = log_both_steps_done(&original);
    let changed = [
        def("trip", &[("book", true), ("pay", true), ("email", false)]),
        def("trip", &[("book", true), ("charge", true)]),
        def("trip", &[("book", true), ("hold", true), ("pay", true)]),
        def("trip", &[("book", false), ("pay", true)]),
    ];
    for d in changed {
        let mut o = orchestrator(std::slice::from_ref(&d));
        let got = o.recover(log.clone(), T0);
        assert!(
            matches!(
                got,
                Err(RecoverError::DefinitionChanged {
                    saga: SagaId(1),
                    ..
                })
            ),
            "{:?}: {got:?}",
            d.steps.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        assert_eq!(o.sagas().count(), 0, "nothing changed");
        assert!(o.poll_output().is_none(), "nothing changed");
    }
    // Retry policies are not part of a definition's identity: tuning them
    // between restarts is fine.
    let mut tuned = original.clone();
    tuned.steps[1].action.max_attempts = 9;
    tuned.steps[0].compensation = Some(RetryPolicy::default());
    let mut o = orchestrator(&[tuned]);
    o.recover(log, T0).unwrap();
    let records = drive(&mut o, &mut |_| None, true);
    assert!(matches!(
        records.as_slice(),
        [(
            _,
            SagaRecord::Finished {
                outcome: Outcome::Completed
            }
        )]
    ));
}

/// A `Started` record whose fingerprint was edited is refused too (the
/// codec check: the field is part of the checksummed body).
#[test]
fn started_records_carry_the_definition_fingerprint() {
    let d = def("trip", &[("book", true), ("pay", true)]);
    let fp = d.fingerprint();
    assert_eq!(fp, d.clone().fingerprint(), "deterministic");
    assert_ne!(
        fp,
        def("trip", &[("pay", true), ("book", true)]).fingerprint()
    );
    assert_ne!(fp, def("trip", &[("bookpay", true)]).fingerprint());
    assert_ne!(
        fp,
        def("trip", &[("boo", true), ("kpay", true)]).fingerprint()
    );
    assert_ne!(
        fp,
        def("trip", &[("book", true), ("pay", false)]).fingerprint()
    );
    assert_ne!(
        fp,
        def("tri", &[("pbook", true), ("pay", true)]).fingerprint()
    );
    let mut o = orchestrator(std::slice::from_ref(&d));
    o.start(SagaId(1), "trip", Bytes::new(), T0).unwrap();
    let Some(Output::Persist { record, .. }) = o.poll_output() else {
        panic!("Started first");
    };
    assert_eq!(
        record,
        SagaRecord::Started {
            definition: "trip".into(),
            fingerprint: fp,
            input: Bytes::new(),
        }
    );
    let bytes = record.to_bytes().unwrap();
    assert_eq!(SagaRecord::decode(&bytes).unwrap(), record);
}

// ---------------------------------------------------------------------------
// The async runner.

/// Polls `f` with a no-op waker until it is ready (it only ever waits on
/// `Yield`s and virtual sleeps).
fn spin<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("never ready");
}

/// Applies each key once; answers once `gate` (if any) is open.
struct Keyed {
    applied: Arc<Mutex<Vec<String>>>,
    gate: Option<Arc<AtomicBool>>,
}

#[async_trait::async_trait]
impl Step for Keyed {
    async fn action(&self, ctx: StepContext) -> Result<Bytes, StepError> {
        while self
            .gate
            .as_ref()
            .is_some_and(|g| !g.load(Ordering::SeqCst))
        {
            Yield(1).await;
        }
        let mut a = self.applied.lock().unwrap();
        if !a.contains(&ctx.idempotency_key) {
            a.push(ctx.idempotency_key.clone());
        }
        Ok(Bytes::new())
    }

    async fn compensate(&self, ctx: StepContext) -> Result<(), StepError> {
        self.action(ctx).await.map(|_| ())
    }
}

/// A runner of sagas `fast` and `slow` (whose steps wait for `gate`), on
/// `time` (or, if `None`, a stopped clock whose sleeps never end).
fn keyed_runner<L: SagaLog>(
    log: L,
    time: Option<&VirtualTime>,
    applied: &Arc<Mutex<Vec<String>>>,
    gate: &Arc<AtomicBool>,
) -> Runner<L> {
    let (sleep, clock): (Sleep, Clock) = match time {
        Some(t) => (t.sleep(), t.clock()),
        None => (
            Arc::new(|_| futures::future::pending().boxed()),
            Arc::new(|| T0),
        ),
    };
    let mut r = Runner::new(Config::default(), log, sleep, clock).unwrap();
    for (name, gate) in [("fast", None), ("slow", Some(gate.clone()))] {
        let d = def(name, &[("a", true), ("b", true)]);
        let steps: Vec<Arc<dyn Step>> = (0..2)
            .map(|_| {
                Arc::new(Keyed {
                    applied: applied.clone(),
                    gate: gate.clone(),
                }) as Arc<dyn Step>
            })
            .collect();
        r.register(d, steps).unwrap();
    }
    r
}

/// Bug: `wait_for` moved the events of other sagas into a local vector and
/// put them back only when it returned; dropped mid-way (a `select!` with a
/// timeout, a cancelled task), it lost them, and with them the only report
/// of those sagas' ends, whose logs were already forgotten.
#[test]
fn a_dropped_wait_for_loses_no_event() {
    let applied = Arc::default();
    let gate = Arc::new(AtomicBool::new(false));
    let mut r = keyed_runner(MemSagaLog::new(), None, &applied, &gate);
    r.start(SagaId(1), "fast", Bytes::new()).unwrap();
    r.start(SagaId(2), "slow", Bytes::new()).unwrap();
    {
        let mut wait = pin!(r.wait_for(SagaId(2)));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..500 {
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        // Dropped here, while saga 2's slow step runs.
    }
    assert_eq!(r.status(SagaId(1)), None, "saga 1 finished meanwhile");
    gate.store(true, Ordering::SeqCst);
    let mut ends = BTreeSet::new();
    while let Some(e) = spin(r.next_event()).unwrap() {
        if let RunnerEvent::Finished { saga, outcome } = e {
            assert_eq!(outcome, Outcome::Completed);
            ends.insert(saga);
        }
    }
    assert_eq!(ends, BTreeSet::from([SagaId(1), SagaId(2)]));
}

/// A log whose `fail_at`-th append (1-based) fails without writing, and
/// that checks after every append that a crash there would recover.
struct Flaky {
    inner: MemSagaLog,
    appends: u32,
    fail_at: u32,
    unrecoverable: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("disk full")]
struct DiskFull;

impl SagaLog for Flaky {
    type Error = DiskFull;

    fn append(&mut self, records: &[(SagaId, SagaRecord)]) -> Result<(), DiskFull> {
        self.appends += 1;
        if self.appends == self.fail_at {
            return Err(DiskFull);
        }
        self.inner.append(records).map_err(|e| match e {})?;
        let mut o = Orchestrator::new(Config::default()).unwrap();
        for name in ["fast", "slow"] {
            o.define(def(name, &[("a", true), ("b", true)])).unwrap();
        }
        if let Err(e) = o.recover(self.inner.records(), T0) {
            self.unrecoverable.lock().unwrap().push(e.to_string());
        }
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<(SagaId, SagaRecord)>, DiskFull> {
        self.inner.load().map_err(|e| match e {})
    }

    fn forget(&mut self, saga: SagaId) -> Result<(), DiskFull> {
        self.inner.forget(saga).map_err(|e| match e {})
    }
}

/// Bug: after a failed `append` the runner kept going if called again; its
/// next successful append acknowledged every record before it, the lost
/// ones included, so it invoked attempts whose records were never written
/// and left a log that no recovery accepts. A runner whose log failed must
/// refuse to go on.
#[test]
fn a_runner_whose_log_failed_refuses_to_go_on() {
    for fail_at in 2..=3 {
        let time = VirtualTime::new(T0, 50);
        let applied = Arc::default();
        let mem = MemSagaLog::new();
        let unrecoverable = Arc::new(Mutex::new(vec![]));
        let flaky = Flaky {
            inner: mem.clone(),
            appends: 0,
            fail_at,
            unrecoverable: unrecoverable.clone(),
        };
        let gate = Arc::new(AtomicBool::new(true));
        let mut r = keyed_runner(flaky, Some(&time), &applied, &gate);
        r.start(SagaId(1), "fast", Bytes::new()).unwrap();
        let mut failed = false;
        // A caller that logs the error and calls again.
        for _ in 0..20 {
            match spin(r.next_event()) {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(RunnerError::Log(_)) if !failed => {
                    failed = true;
                    assert!(
                        matches!(
                            r.start(SagaId(9), "fast", Bytes::new()),
                            Err(RunnerError::Poisoned)
                        ),
                        "fail_at {fail_at}"
                    );
                }
                Err(e) => {
                    assert!(failed, "fail_at {fail_at}: {e}");
                    assert!(matches!(e, RunnerError::Poisoned), "fail_at {fail_at}: {e}");
                }
            }
        }
        assert!(failed, "fail_at {fail_at}: the append never failed");
        assert_eq!(
            *unrecoverable.lock().unwrap(),
            Vec::<String>::new(),
            "fail_at {fail_at}: a crash here would not recover"
        );
        // The log is one a new runner recovers, and the saga then ends.
        let mut again = keyed_runner(mem.clone(), Some(&time), &applied, &gate);
        again
            .recover()
            .unwrap_or_else(|e| panic!("fail_at {fail_at}: {e}"));
        assert_eq!(
            spin(again.wait_for(SagaId(1))).unwrap(),
            Outcome::Completed,
            "fail_at {fail_at}"
        );
        assert!(mem.records().is_empty());
    }
}

// ---------------------------------------------------------------------------
// Choreography.

/// Bug: an emitted event's id was `"{cause}>{kind}"`, so two participants
/// reacting to one event with the same kind (both compensations of an
/// `OrderCancelled` emitting `Compensated`) emitted two events with one id,
/// and every subscriber dropped the second as a duplicate.
#[test]
fn two_participants_emitting_one_kind_emit_distinct_ids() {
    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let s = seen.clone();
    let mut c = dsys_txn::saga::Choreography::new()
        .participant(Participant::new("inventory").on("OrderCancelled", |_| {
            vec![("Compensated".into(), Bytes::from_static(b"inventory"))]
        }))
        .participant(Participant::new("payment").on("OrderCancelled", |_| {
            vec![("Compensated".into(), Bytes::from_static(b"payment"))]
        }))
        .participant(Participant::new("audit").on("Compensated", move |e| {
            s.lock().unwrap().push(e.payload.clone());
            vec![]
        }));
    c.publish(Event::new("o1", SagaId(1), "OrderCancelled", Bytes::new()));
    c.run(100);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Bytes::from_static(b"inventory"),
            Bytes::from_static(b"payment")
        ]
    );
    assert_eq!(c.history().len(), 3);
}

/// Bug: ids were ambiguous whatever the participants: a kind `"B#1"` next
/// to two `"B"`s, or a kind holding `>` (`"x"` emitting `"y>z"` and `"x>y"`
/// emitting `"z"` both gave `"x>y>z"`), so distinct events shared an id.
#[test]
fn derived_ids_are_unique_whatever_the_names() {
    let mut p = Participant::new("p")
        .on("A", |_| {
            vec![
                ("B#1".into(), Bytes::new()),
                ("B".into(), Bytes::new()),
                ("B".into(), Bytes::new()),
                ("y>z".into(), Bytes::new()),
            ]
        })
        .on("C", |_| vec![("z".into(), Bytes::new())]);
    let mut ids: Vec<String> = p
        .handle(&Event::new("x", SagaId(1), "A", Bytes::new()))
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.extend(
        p.handle(&Event::new("x>y", SagaId(1), "C", Bytes::new()))
            .into_iter()
            .map(|e| e.id),
    );
    assert_eq!(ids.len(), 5);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

/// Bug: `Inbox::forget_prefix("o1")` also forgot saga `o10`'s ids, so a
/// redelivery of `o10`'s events was handled twice.
#[test]
fn forgetting_one_saga_keeps_the_ids_of_another_with_a_longer_id() {
    let mut inbox = Inbox::new();
    for id in ["o1", "o1>p:A", "o10", "o10>p:A"] {
        assert!(inbox.first_time(id));
    }
    inbox.forget_prefix("o1");
    assert!(inbox.first_time("o1"), "o1 forgotten");
    assert!(inbox.first_time("o1>p:A"), "o1's events forgotten");
    assert!(!inbox.first_time("o10"), "o10 kept");
    assert!(!inbox.first_time("o10>p:A"), "o10's events kept");
}

/// Declines its action at step 1; its compensation is broken until
/// `fixed`.
struct Broken {
    step: usize,
    fixed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Step for Broken {
    async fn action(&self, _: StepContext) -> Result<Bytes, StepError> {
        if self.step == 1 {
            return Err(StepError::non_retryable("declined", "no"));
        }
        Ok(Bytes::new())
    }

    async fn compensate(&self, _: StepContext) -> Result<(), StepError> {
        if self.fixed.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(StepError::non_retryable("broken", "call someone"))
    }
}

/// Bug (docs against behaviour): `wait_for` on a saga that is stuck and
/// whose report was consumed answered `NotRunning` ("no longer held"),
/// although it is held and waits for an operator.
#[test]
fn wait_for_a_saga_already_reported_stuck_says_stuck() {
    let fixed = Arc::new(AtomicBool::new(false));
    let mut r = Runner::new(
        Config::default(),
        MemSagaLog::new(),
        Arc::new(|_| futures::future::pending().boxed()),
        Arc::new(|| T0),
    )
    .unwrap();
    let steps: Vec<Arc<dyn Step>> = (0..2)
        .map(|step| {
            Arc::new(Broken {
                step,
                fixed: fixed.clone(),
            }) as Arc<dyn Step>
        })
        .collect();
    r.register(def("s", &[("a", true), ("b", true)]), steps)
        .unwrap();
    r.start(SagaId(1), "s", Bytes::new()).unwrap();
    assert!(matches!(
        spin(r.next_event()),
        Ok(Some(RunnerEvent::Stuck { step: 0, .. }))
    ));
    for _ in 0..2 {
        let got = spin(r.wait_for(SagaId(1)));
        assert!(
            matches!(&got, Err(RunnerError::Stuck { saga: SagaId(1), step: 0, reason }) if reason.contains("call someone")),
            "{got:?}"
        );
    }
    assert!(matches!(
        spin(r.wait_for(SagaId(7))),
        Err(RunnerError::NotRunning(SagaId(7)))
    ));
    fixed.store(true, Ordering::SeqCst);
    r.retry_stuck(SagaId(1)).unwrap();
    assert!(matches!(
        spin(r.wait_for(SagaId(1))),
        Ok(Outcome::Compensated { failed_step: 1, .. })
    ));
}

// ---------------------------------------------------------------------------
// Recovery strictness.

fn attempt(step: usize, kind: dsys_txn::saga::InvokeKind, attempt: u32) -> SagaRecord {
    SagaRecord::AttemptStarted {
        step,
        kind,
        attempt,
        at: T0,
    }
}

fn failed(step: usize, kind: dsys_txn::saga::InvokeKind, attempt: u32) -> SagaRecord {
    SagaRecord::AttemptFailed {
        step,
        kind,
        attempt,
        error: StepError::retryable("busy", "later"),
        retry_at: T0,
    }
}

/// Bug: replay accepted result records that the orchestrator can only
/// write for an attempt that started and has no result yet: a failure of
/// attempt 0 (none started), the same failure twice, a completion after the
/// attempt's failure (records reordered, or a foreign log). They must be
/// refused as inconsistent, not replayed into a state no run produces.
#[test]
fn recovery_refuses_results_of_attempts_not_running() {
    use dsys_txn::saga::InvokeKind::{Action, Compensation};
    let d = def("s", &[("a", true), ("b", true)]);
    let started = SagaRecord::Started {
        definition: "s".into(),
        fingerprint: d.fingerprint(),
        input: Bytes::new(),
    };
    let completed = |step| SagaRecord::StepCompleted {
        step,
        output: Bytes::new(),
    };
    let bad: Vec<Vec<SagaRecord>> = vec![
        vec![failed(0, Action, 0)],
        vec![
            attempt(0, Action, 1),
            failed(0, Action, 1),
            failed(0, Action, 1),
        ],
        vec![attempt(0, Action, 1), failed(0, Action, 1), completed(0)],
        vec![
            attempt(0, Action, 1),
            failed(0, Action, 1),
            SagaRecord::StepFailed {
                step: 0,
                error: StepError::non_retryable("x", "y"),
                compensate_failed_step: false,
            },
            attempt(0, Action, 2),
        ],
        vec![
            attempt(0, Action, 1),
            completed(0),
            attempt(1, Action, 1),
            SagaRecord::StepFailed {
                step: 1,
                error: StepError::non_retryable("x", "y"),
                compensate_failed_step: false,
            },
            attempt(0, Compensation, 1),
            failed(0, Compensation, 1),
            SagaRecord::CompensationCompleted { step: 0 },
        ],
        vec![
            attempt(0, Action, 1),
            completed(0),
            attempt(1, Action, 1),
            SagaRecord::StepFailed {
                step: 1,
                error: StepError::non_retryable("x", "y"),
                compensate_failed_step: false,
            },
            attempt(0, Compensation, 1),
            failed(0, Compensation, 1),
            SagaRecord::Stuck {
                step: 0,
                reason: "r".into(),
            },
        ],
    ];
    for records in bad {
        let mut log = vec![(SagaId(1), started.clone())];
        log.extend(records.iter().cloned().map(|r| (SagaId(1), r)));
        let mut o = orchestrator(std::slice::from_ref(&d));
        let got = o.recover(log, T0);
        assert!(
            matches!(got, Err(RecoverError::Inconsistent { .. })),
            "{records:?}: {got:?}"
        );
    }
    // The histories next to them are accepted.
    let good: Vec<Vec<SagaRecord>> = vec![
        vec![attempt(0, Action, 1), failed(0, Action, 1)],
        vec![
            attempt(0, Action, 1),
            failed(0, Action, 1),
            attempt(0, Action, 2),
            completed(0),
        ],
    ];
    for records in good {
        let mut log = vec![(SagaId(1), started.clone())];
        log.extend(records.iter().cloned().map(|r| (SagaId(1), r)));
        orchestrator(std::slice::from_ref(&d))
            .recover(log, T0)
            .unwrap_or_else(|e| panic!("{records:?}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// Time.

/// A wall clock that jumps back and forth (NTP steps, a VM restored from a
/// snapshot), up to the ends of `WallTime`, with results, timeouts,
/// crashes and recoveries at random times: nothing panics or overflows,
/// every timer is at most its policy's span after the latest time the
/// orchestrator was given (a step back delays a saga by at most the step),
/// and once time runs forward again every saga ends.
///
/// `DSYS_TXN_SAGA_SEEDS` sets the number of seeds (default 5,000 / 10).
#[test]
fn a_wall_clock_stepping_back_and_forth_stays_sane() {
    let seeds: u64 = std::env::var("DSYS_TXN_SAGA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
        / 10;
    let mut policy = RetryPolicy::default();
    policy.max_attempts = 0;
    policy.initial_backoff = Duration::from_secs(1);
    policy.max_backoff = Duration::from_secs(60);
    policy.start_to_close = Duration::from_secs(30);
    policy.schedule_to_close = Some(Duration::from_secs(3600));
    let span = Duration::from_secs(3600);
    let mut d = def("t", &[("a", true), ("b", true), ("c", true)]);
    for s in &mut d.steps {
        s.action = policy.clone();
        s.compensation = Some(policy.clone());
    }
    for seed in 0..seeds {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut o = orchestrator(std::slice::from_ref(&d));
        let mut log: Vec<(SagaId, SagaRecord)> = vec![];
        let mut now = T0;
        let mut latest = now;
        let mut pending = vec![];
        for i in 0..3 {
            o.start(SagaId(i), "t", Bytes::new(), now).unwrap();
        }
        // Their `Started` records are durable before the first crash.
        log.extend(drive(&mut o, &mut |_| None, true));
        let mut done = BTreeSet::new();
        for round in 0..400 {
            let forward = round >= 300;
            now = if forward {
                now.max(o.poll_timeout().unwrap_or(now))
            } else {
                match rng.u32(0..10) {
                    0 => WallTime::from_nanos(rng.u64(..)),
                    1 => WallTime::MAX,
                    2 => WallTime::from_nanos(0),
                    3..=5 => now - Duration::from_secs(rng.u64(0..100_000)),
                    _ => now + Duration::from_secs(rng.u64(0..100)),
                }
            };
            latest = latest.max(now);
            if !forward && rng.u32(0..20) == 0 {
                o = orchestrator(std::slice::from_ref(&d));
                o.recover(log.clone(), now).unwrap();
                pending.clear();
            }
            o.handle_timeout(now);
            while let Some(out) = o.poll_output() {
                match out {
                    Output::Persist { id, saga, record } => {
                        log.push((saga, record));
                        o.on_persisted(id);
                    }
                    Output::Invoke(inv) => pending.push(inv),
                    Output::Finished { saga, .. } => {
                        log.retain(|(s, _)| *s != saga);
                        done.insert(saga);
                    }
                    Output::Stuck { saga, .. } => o.retry_stuck(saga, now).unwrap(),
                    _ => {}
                }
            }
            if let Some(t) = o.poll_timeout() {
                assert!(
                    t <= latest + span,
                    "seed {seed}: a timer at {t}, latest time {latest}"
                );
            }
            if !pending.is_empty() && rng.bool() {
                let inv = pending.swap_remove(rng.usize(0..pending.len()));
                let r = match rng.u32(0..4) {
                    0 => Err(StepError::retryable("busy", "")),
                    1 => Err(StepError::non_retryable("no", "")),
                    _ => Ok(Bytes::new()),
                };
                o.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, r, now);
            }
            if done.len() == 3 {
                break;
            }
        }
        assert_eq!(
            done.len(),
            3,
            "seed {seed}: {:?}",
            o.sagas().collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------
// Unknown outcomes.

/// Bug: a step was compensated when its *last* attempt timed out, but not
/// when an earlier one had: attempt 1 times out (it may still land: a
/// request queued behind a partition), attempt 2 answers a retryable error,
/// the policy is exhausted, and the step failed without its compensation,
/// so attempt 1 landing later left an effect nothing undoes. Any attempt
/// with an unknown outcome makes the failed step's compensation run
/// (compensations must succeed when the action never took effect).
#[test]
fn an_earlier_timed_out_attempt_gets_the_failed_step_compensated() {
    use dsys_txn::saga::InvokeKind::{Action, Compensation};
    let mut d = def("s", &[("a", true), ("b", true)]);
    d.steps[1].action.max_attempts = 2;
    for crash in [false, true] {
        let mut o = orchestrator(std::slice::from_ref(&d));
        o.start(SagaId(1), "s", Bytes::new(), T0).unwrap();
        let mut now = T0;
        let mut log = vec![];
        let mut invoked = vec![];
        for _ in 0..100 {
            while let Some(out) = o.poll_output() {
                match out {
                    Output::Persist { id, saga, record } => {
                        log.push((saga, record));
                        o.on_persisted(id);
                    }
                    Output::Invoke(inv) => {
                        invoked.push((inv.step, inv.kind, inv.attempt));
                        let r = match (inv.step, inv.kind, inv.attempt) {
                            // Lost: it times out.
                            (1, Action, 1) => continue,
                            (1, Action, _) => Err(StepError::retryable("busy", "later")),
                            _ => Ok(Bytes::new()),
                        };
                        o.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, r, now);
                    }
                    _ => {}
                }
            }
            if crash && invoked.len() == 2 {
                // Crash with attempt 1 timed out and attempt 2 not yet run.
                now = o.poll_timeout().unwrap();
                o.handle_timeout(now);
                log.extend(drive(&mut o, &mut |_| None, false));
                o = orchestrator(std::slice::from_ref(&d));
                o.recover(log.clone(), now).unwrap();
            }
            match o.poll_timeout() {
                Some(t) => {
                    now = t;
                    o.handle_timeout(t);
                }
                None => break,
            }
        }
        assert!(
            invoked.contains(&(1, Compensation, 1)),
            "crash {crash}: step 1 was never compensated: {invoked:?}"
        );
        assert!(log.iter().any(|(_, r)| matches!(
            r,
            SagaRecord::StepFailed {
                step: 1,
                compensate_failed_step: true,
                ..
            }
        )));
    }
}

// ---------------------------------------------------------------------------
// A panicking step.

/// Panics in its action on the first `panics` calls.
struct Panics {
    calls: AtomicU64,
    panics: u64,
}

#[async_trait::async_trait]
impl Step for Panics {
    async fn action(&self, _: StepContext) -> Result<Bytes, StepError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.panics {
            panic!("a bug in the step");
        }
        Ok(Bytes::new())
    }

    async fn compensate(&self, _: StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

/// Bug: a step that panicked unwound through `next_event`, taking every
/// saga of the runner down with it; after the restart, recovery re-sent the
/// same attempt (a re-send is not counted), which panicked again: a crash
/// loop in which the step's retry policy never applied. A panic is now a
/// failed attempt (retryable, kind [`StepError::PANIC`]).
#[test]
fn a_panicking_step_is_a_failed_attempt() {
    for (panics, want_completed) in [(1, true), (u64::MAX, false)] {
        let time = VirtualTime::new(T0, 50);
        let mut r = Runner::new(
            Config::default(),
            MemSagaLog::new(),
            time.sleep(),
            time.clock(),
        )
        .unwrap();
        let steps: Vec<Arc<dyn Step>> = vec![
            Arc::new(Panics {
                calls: AtomicU64::new(0),
                panics: 0,
            }),
            Arc::new(Panics {
                calls: AtomicU64::new(0),
                panics,
            }),
        ];
        r.register(def("p", &[("a", true), ("b", true)]), steps)
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spin(r.run_saga(SagaId(1), "p", Bytes::new()))
        }))
        .expect("the step's panic stays in the step")
        .unwrap();
        match outcome {
            Outcome::Completed => assert!(want_completed),
            Outcome::Compensated { failed_step, error } => {
                assert!(!want_completed);
                assert_eq!(failed_step, 1);
                assert_eq!(error.kind, StepError::PANIC);
                assert!(error.message.contains("a bug in the step"), "{error}");
            }
        }
    }
}
