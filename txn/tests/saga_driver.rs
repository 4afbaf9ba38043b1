//! The async saga runner on a plain executor (a thread-parking `block_on`,
//! no tokio) with a virtual clock: sagas complete and compensate, run
//! concurrently, and survive a crash (the runner dropped mid-step) by
//! recovering from the SQLite saga log in a temporary directory, with each
//! effect applied once per idempotency key.

mod saga_common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, InvokeKind, MemSagaLog, Outcome, Runner, RunnerError, RunnerEvent, SagaDefinition,
    SagaId, SagaLog, SagaRecord, SqliteSagaLog, Step, StepContext, StepDefinition, StepError,
};
use saga_common::{VirtualTime, Yield};

struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// A minimal executor: poll, park until woken. A future that stays pending
/// with nobody to wake it for a second fails the test (a hang).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let w = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(w.clone());
    let mut cx = Context::from_waker(&waker);
    let mut idle = 0;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        while !w.woken.swap(false, Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(10));
            idle += 1;
            assert!(idle < 100, "block_on: pending, and nothing will wake it");
        }
        idle = 0;
    }
}

/// Polls `f` until `cond` holds, then drops it: the crash.
fn poll_until<F: Future>(f: F, cond: impl Fn() -> bool) {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if cond() {
            return;
        }
        assert!(
            f.as_mut().poll(&mut cx).is_pending(),
            "finished before the crash point"
        );
    }
    panic!("the crash point never came");
}

/// The fake order services: effects applied once per idempotency key.
#[derive(Default)]
struct Services {
    applied: BTreeSet<String>,
    keys: BTreeMap<(SagaId, usize, InvokeKind), BTreeSet<String>>,
    invocations: BTreeMap<String, u32>,
    /// Sagas whose payment is declined.
    decline: BTreeSet<SagaId>,
    /// Keys that apply their effect and then never answer (once).
    hang: BTreeSet<String>,
}

type Shared = Arc<Mutex<Services>>;

struct Gate {
    need: usize,
    state: Mutex<(usize, Vec<Waker>)>,
}

/// Ready once `need` futures wait on it at the same time: proof that the
/// runner polls invocations concurrently.
struct GateWait {
    gate: Arc<Gate>,
    counted: bool,
}

impl Future for GateWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let gate = self.gate.clone();
        let mut s = gate.state.lock().unwrap();
        if !self.counted {
            s.0 += 1;
            self.counted = true;
        }
        if s.0 >= gate.need {
            for w in s.1.drain(..) {
                w.wake();
            }
            return Poll::Ready(());
        }
        s.1.push(cx.waker().clone());
        Poll::Pending
    }
}

struct OrderStep {
    index: usize,
    services: Shared,
    gate: Option<Arc<Gate>>,
}

impl OrderStep {
    /// Applies `ctx`'s effect once; returns whether to hang.
    fn apply(&self, ctx: &StepContext, kind: InvokeKind) -> Result<bool, StepError> {
        let mut s = self.services.lock().unwrap();
        s.keys
            .entry((ctx.saga, ctx.step, kind))
            .or_default()
            .insert(ctx.idempotency_key.clone());
        *s.invocations
            .entry(ctx.idempotency_key.clone())
            .or_default() += 1;
        if kind == InvokeKind::Action && self.index == 2 && s.decline.contains(&ctx.saga) {
            return Err(StepError::non_retryable("declined", "card declined"));
        }
        if kind == InvokeKind::Compensation {
            let out = ctx
                .output
                .clone()
                .expect("completed steps hand their output");
            assert_eq!(out, Bytes::from(format!("{}-{}", ctx.saga, self.index)));
        }
        s.applied.insert(ctx.idempotency_key.clone());
        Ok(s.hang.remove(&ctx.idempotency_key))
    }
}

#[async_trait::async_trait]
impl Step for OrderStep {
    async fn action(&self, ctx: StepContext) -> Result<Bytes, StepError> {
        if let Some(g) = &self.gate {
            GateWait {
                gate: g.clone(),
                counted: false,
            }
            .await;
        }
        let hang = self.apply(&ctx, InvokeKind::Action)?;
        Yield(1).await;
        if hang {
            futures::future::pending::<()>().await;
        }
        Ok(Bytes::from(format!("{}-{}", ctx.saga, self.index)))
    }

    async fn compensate(&self, ctx: StepContext) -> Result<(), StepError> {
        let hang = self.apply(&ctx, InvokeKind::Compensation)?;
        Yield(1).await;
        if hang {
            futures::future::pending::<()>().await;
        }
        Ok(())
    }
}

fn order() -> SagaDefinition {
    SagaDefinition::new("order")
        .step(StepDefinition::new("create_order"))
        .step(StepDefinition::new("deduct_inventory"))
        .step(StepDefinition::new("process_payment"))
}

fn runner<L: SagaLog>(
    log: L,
    time: &VirtualTime,
    services: &Shared,
    gate: Option<Arc<Gate>>,
) -> Runner<L> {
    let mut r = Runner::new(Config::default(), log, time.sleep(), time.clock()).unwrap();
    let steps: Vec<Arc<dyn Step>> = (0..3)
        .map(|index| {
            Arc::new(OrderStep {
                index,
                services: services.clone(),
                gate: if index == 0 { gate.clone() } else { None },
            }) as Arc<dyn Step>
        })
        .collect();
    r.register(order(), steps).unwrap();
    r
}

fn expected(saga: SagaId, services: &Shared) -> Outcome {
    if services.lock().unwrap().decline.contains(&saga) {
        Outcome::Compensated {
            failed_step: 2,
            error: StepError::non_retryable("declined", "card declined"),
        }
    } else {
        Outcome::Completed
    }
}

/// Each slot saw one key; each key's effect applied (once, by the set).
fn check_keys(services: &Shared) {
    for (slot, keys) in &services.lock().unwrap().keys {
        assert_eq!(keys.len(), 1, "{slot:?}: {keys:?}");
    }
}

#[test]
fn run_saga_completes_and_compensates() {
    let (time, services) = (
        VirtualTime::new(WallTime::from_nanos(1_700_000_000_000_000_000), 200),
        Shared::default(),
    );
    services.lock().unwrap().decline.insert(SagaId(2));
    let log = MemSagaLog::new();
    let mut r = runner(log.clone(), &time, &services, None);
    let done = block_on(r.run_saga(SagaId(1), "order", Bytes::from_static(b"2 widgets")));
    assert_eq!(done.unwrap(), Outcome::Completed);
    let undone = block_on(r.run_saga(SagaId(2), "order", Bytes::new())).unwrap();
    assert_eq!(undone, expected(SagaId(2), &services));
    let s = services.lock().unwrap();
    assert!(s.applied.contains("2/0/compensation") && s.applied.contains("2/1/compensation"));
    assert!(
        !s.applied.contains("2/2/compensation"),
        "the declined payment had no effect"
    );
    drop(s);
    assert!(log.records().is_empty(), "finished sagas are forgotten");
    assert!(matches!(
        block_on(r.wait_for(SagaId(1))),
        Err(RunnerError::NotRunning(_))
    ));
}

#[test]
fn runs_many_sagas_concurrently() {
    let (time, services) = (
        VirtualTime::new(WallTime::from_nanos(1_700_000_000_000_000_000), 200),
        Shared::default(),
    );
    let n = 40;
    for i in (0..n).step_by(3) {
        services.lock().unwrap().decline.insert(SagaId(i));
    }
    let gate = Arc::new(Gate {
        need: n as usize,
        state: Mutex::new((0, Vec::new())),
    });
    let mut r = runner(MemSagaLog::new(), &time, &services, Some(gate));
    for i in 0..n {
        r.start(SagaId(i), "order", Bytes::new()).unwrap();
    }
    let mut outcomes = BTreeMap::new();
    block_on(async {
        while let Some(e) = r.next_event().await.unwrap() {
            let RunnerEvent::Finished { saga, outcome } = e else {
                panic!("{e:?}")
            };
            outcomes.insert(saga, outcome);
        }
    });
    assert_eq!(outcomes.len(), n as usize);
    for (saga, outcome) in &outcomes {
        assert_eq!(*outcome, expected(*saga, &services));
    }
    assert_eq!(
        r.counters().timeouts,
        0,
        "every first step ran at once, all {n} together"
    );
    check_keys(&services);
}

#[test]
fn crash_mid_step_and_mid_compensation_then_recover_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sagas.db");
    let (time, services) = (
        VirtualTime::new(WallTime::from_nanos(1_700_000_000_000_000_000), 200),
        Shared::default(),
    );
    let n = 12u64;
    {
        let mut s = services.lock().unwrap();
        for i in 0..n {
            if i % 2 == 0 {
                s.decline.insert(SagaId(i));
                s.hang.insert(format!("{i}/{}/compensation", i % 3 % 2));
            } else {
                s.hang.insert(format!("{i}/{}/action", i % 3));
            }
        }
    }
    let mut outcomes = BTreeMap::new();
    {
        let mut r = runner(SqliteSagaLog::open(&path).unwrap(), &time, &services, None);
        for i in 0..n {
            r.start(SagaId(i), "order", Bytes::new()).unwrap();
        }
        let services2 = services.clone();
        let outcomes = &mut outcomes;
        poll_until(
            async move {
                while let Some(e) = r.next_event().await.unwrap() {
                    if let RunnerEvent::Finished { saga, outcome } = e {
                        outcomes.insert(saga, outcome);
                    }
                }
            },
            move || services2.lock().unwrap().hang.is_empty(),
        );
        // The runner is dropped here with every hanging step in flight.
    }
    assert!(
        outcomes.len() < n as usize,
        "the crash left sagas unfinished"
    );
    let mut r = runner(SqliteSagaLog::open(&path).unwrap(), &time, &services, None);
    r.recover().unwrap();
    block_on(async {
        while let Some(e) = r.next_event().await.unwrap() {
            let RunnerEvent::Finished { saga, outcome } = e else {
                panic!("{e:?}")
            };
            assert!(
                outcomes.insert(saga, outcome).is_none(),
                "{saga} finished twice"
            );
        }
    });
    assert_eq!(outcomes.len(), n as usize);
    for (saga, outcome) in &outcomes {
        assert_eq!(*outcome, expected(*saga, &services), "saga {saga}");
    }
    check_keys(&services);
    let s = services.lock().unwrap();
    let reinvoked = s.invocations.values().filter(|&&c| c > 1).count();
    assert!(
        reinvoked >= 1,
        "recovery re-invoked the unanswered steps with their keys"
    );
    drop(s);
    let mut log = SqliteSagaLog::open(&path).unwrap();
    assert!(
        log.load().unwrap().is_empty(),
        "finished sagas are forgotten"
    );
}

#[test]
fn sqlite_log_round_trips_and_reports_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let mut log = SqliteSagaLog::open(&path).unwrap();
    let records = vec![
        (
            SagaId(u64::MAX),
            SagaRecord::Started {
                definition: "order".into(),
                fingerprint: order().fingerprint(),
                input: Bytes::from_static(b"x"),
            },
        ),
        (SagaId(1), SagaRecord::Resolved { step: 0 }),
        (
            SagaId(u64::MAX),
            SagaRecord::StepCompleted {
                step: 0,
                output: Bytes::from_static(b"y"),
            },
        ),
    ];
    log.append(&records).unwrap();
    drop(log);
    let mut log = SqliteSagaLog::open(&path).unwrap();
    assert_eq!(log.load().unwrap(), records);
    // A batch with a record the codec refuses writes nothing of the batch.
    let bad = [
        (SagaId(5), SagaRecord::Resolved { step: 0 }),
        (SagaId(5), SagaRecord::Resolved { step: usize::MAX }),
    ];
    assert!(log.append(&bad).is_err());
    assert_eq!(log.load().unwrap(), records);
    log.forget(SagaId(u64::MAX)).unwrap();
    assert_eq!(log.load().unwrap(), records[1..2]);
    drop(log);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute("UPDATE dsys_saga_log SET record = x'00010203'", [])
        .unwrap();
    drop(conn);
    let mut log = SqliteSagaLog::open(&path).unwrap();
    assert!(log.load().is_err());
}

/// A step that never answers is dropped at its deadline; the saga goes on
/// (here: retries time out, the step fails, its unknown effect and the
/// earlier steps are compensated) and the runner goes idle, not hung.
#[test]
fn hung_steps_are_abandoned_at_their_deadline() {
    let (time, services) = (
        VirtualTime::new(WallTime::from_nanos(1_700_000_000_000_000_000), 200),
        Shared::default(),
    );
    struct Never;
    #[async_trait::async_trait]
    impl Step for Never {
        async fn action(&self, _: StepContext) -> Result<Bytes, StepError> {
            futures::future::pending().await
        }
        async fn compensate(&self, _: StepContext) -> Result<(), StepError> {
            Ok(())
        }
    }
    let mut r = Runner::new(
        Config::default(),
        MemSagaLog::new(),
        time.sleep(),
        time.clock(),
    )
    .unwrap();
    let first: Arc<dyn Step> = Arc::new(OrderStep {
        index: 0,
        services: services.clone(),
        gate: None,
    });
    let def = SagaDefinition::new("hang")
        .step(StepDefinition::new("ok"))
        .step(StepDefinition::new("never"));
    r.register(def, vec![first, Arc::new(Never)]).unwrap();
    let outcome = block_on(r.run_saga(SagaId(5), "hang", Bytes::new())).unwrap();
    assert!(matches!(
        outcome,
        Outcome::Compensated { failed_step: 1, ref error } if error.kind == StepError::TIMEOUT
    ));
    assert_eq!(
        r.counters().timeouts,
        3,
        "the default policy's three attempts"
    );
    assert_eq!(block_on(r.next_event()).unwrap(), None);
    assert!(
        services
            .lock()
            .unwrap()
            .applied
            .contains("5/0/compensation")
    );
}

/// A step implementation can be tested alone with `StepContext::new`.
#[test]
fn a_step_tested_alone() {
    let services = Shared::default();
    let step = OrderStep {
        index: 1,
        services: services.clone(),
        gate: None,
    };
    let ctx = StepContext::new(SagaId(8), 1, "8/1/action", Bytes::new());
    let out = block_on(step.action(ctx.clone())).unwrap();
    assert_eq!(out, Bytes::from_static(b"8-1"));
    let mut comp = StepContext::new(SagaId(8), 1, "8/1/compensation", Bytes::new());
    comp.output = Some(out);
    block_on(step.compensate(comp)).unwrap();
    assert_eq!(services.lock().unwrap().applied.len(), 2);
}
