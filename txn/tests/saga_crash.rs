//! Crash recovery of the saga orchestrator (Garcia-Molina & Salem §5: after
//! a crash the saga log is replayed and the saga continues forward, or
//! backward through its compensations).
//!
//! A simulated world drives an [`Orchestrator`] against a fake service that
//! applies each effect at most once per idempotency key and counts effects
//! per (saga, step, action|compensation). The orchestrator is crashed at
//! every point of a run (after each persist output, before and after each
//! acknowledgement, before and after each invocation, after each result and
//! timeout), keeping or dropping the records that were written but not yet
//! acknowledged, recovered from the log and resumed. Every run must end with
//! each saga either completed (every action applied once, nothing
//! compensated) or compensated (every applied action with a compensation
//! compensated once, in reverse order), and the service must never see two
//! idempotency keys for one step's action or compensation.
//!
//! `DSYS_TXN_SAGA_SEEDS` sets the number of randomized seeds (default 5,000,
//! about 2 s in a debug build; a quarter as many damaged logs); a failing
//! seed is printed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, Invocation, InvokeKind, Orchestrator, Outcome, Output, PersistId, RetryPolicy,
    SagaDefinition, SagaId, SagaRecord, StepDefinition, StepError,
};

fn action_policy() -> RetryPolicy {
    let mut p = RetryPolicy::default();
    p.max_attempts = 3;
    p.initial_backoff = Duration::from_millis(10);
    p.max_backoff = Duration::from_millis(100);
    p.start_to_close = Duration::from_secs(1);
    p
}

fn compensation_policy() -> RetryPolicy {
    let mut p = action_policy();
    p.max_attempts = 4;
    p
}

fn step(name: &str, compensated: bool) -> StepDefinition {
    let mut s = StepDefinition::new(name);
    s.action = action_policy();
    s.compensation = compensated.then(compensation_policy);
    s
}

/// The seeds' order saga.
fn order() -> SagaDefinition {
    SagaDefinition::new("order")
        .step(step("create_order", true))
        .step(step("deduct_inventory", true))
        .step(step("process_payment", true))
}

/// Five steps; the third is a read-only check with nothing to compensate.
fn five() -> SagaDefinition {
    SagaDefinition::new("five")
        .step(step("reserve_flight", true))
        .step(step("reserve_hotel", true))
        .step(step("check_visa", false))
        .step(step("reserve_car", true))
        .step(step("charge", true))
}

fn defs() -> Vec<SagaDefinition> {
    vec![order(), five()]
}

fn def_of(name: &str) -> SagaDefinition {
    defs().into_iter().find(|d| d.name == name).unwrap()
}

/// What the service does with one invocation.
#[derive(Debug, Clone)]
enum Behave {
    /// Apply and answer.
    Ok,
    /// Answer with this error, applying nothing.
    Fail(StepError),
    /// Apply, but the answer is lost (the attempt times out).
    Lose,
    /// Apply and answer late, after the attempt timed out.
    Late,
    /// Apply nothing and never answer.
    Hang,
    /// Never answer; the request lands after this many timer firings
    /// (possibly after a crash, and after later attempts of the same key
    /// were answered), applying its effect unless the key has a final
    /// answer or its compensation ran: a request queued behind a partition.
    Delayed(u32),
}

type Slot = (SagaId, usize, InvokeKind);

struct Random {
    rng: fastrand::Rng,
    /// Per saga: the step whose action is declined (non-retryable), if any.
    doomed: BTreeMap<SagaId, usize>,
}

impl Random {
    fn behave(&mut self, inv: &Invocation) -> Behave {
        let r = &mut self.rng;
        if inv.kind == InvokeKind::Action && self.doomed.get(&inv.saga) == Some(&inv.step) {
            return Behave::Fail(StepError::non_retryable("declined", "no"));
        }
        match r.u32(0..100) {
            0..=59 => Behave::Ok,
            60..=74 => Behave::Fail(StepError::retryable("busy", "try again")),
            75..=79 => Behave::Lose,
            80..=84 => Behave::Late,
            85..=87 => Behave::Hang,
            88..=89 => Behave::Delayed(r.u32(1..=6)),
            90 if inv.kind == InvokeKind::Compensation => {
                Behave::Fail(StepError::non_retryable("broken", "needs a human"))
            }
            _ => Behave::Ok,
        }
    }
}

#[derive(Default)]
struct Service {
    plan: BTreeMap<Slot, VecDeque<Behave>>,
    random: Option<Random>,
    /// Applied action keys and their outputs.
    actions: BTreeMap<String, Bytes>,
    /// Action keys answered with a non-retryable error.
    refused: BTreeMap<String, StepError>,
    /// Applied compensation keys.
    compensations: BTreeSet<String>,
    /// Effects per slot: an action's effect, or the undoing of an applied
    /// action's effect by its compensation.
    effects: BTreeMap<Slot, u32>,
    keys: BTreeMap<Slot, BTreeSet<String>>,
    /// Effects in the order applied, per saga.
    order: BTreeMap<SagaId, Vec<(usize, InvokeKind)>>,
    /// Requests that will land later ([`Behave::Delayed`]).
    delayed: Vec<(u32, Invocation)>,
}

fn output_of(saga: SagaId, step: usize) -> Bytes {
    Bytes::from(format!("out-{saga}-{step}"))
}

/// The action key a compensation key undoes (the service knows its own key
/// scheme: the orchestrator's `{saga}/{step}/{kind}`).
fn action_key(inv: &Invocation) -> String {
    dsys_txn::saga::idempotency_key(inv.saga, inv.step, InvokeKind::Action)
}

impl Service {
    /// Runs one invocation: `Some(result)` now, or `None` (no answer), plus
    /// whether the answer comes late.
    fn invoke(&mut self, inv: &Invocation) -> (Option<Result<Bytes, StepError>>, bool) {
        let slot = (inv.saga, inv.step, inv.kind);
        self.keys
            .entry(slot)
            .or_default()
            .insert(inv.idempotency_key.clone());
        let behave = match self.plan.get_mut(&slot).and_then(VecDeque::pop_front) {
            Some(b) => b,
            None => match &mut self.random {
                Some(r) => r.behave(inv),
                None => Behave::Ok,
            },
        };
        if let Behave::Hang = behave {
            return (None, false);
        }
        if let Behave::Delayed(ticks) = behave {
            self.delayed.push((ticks, inv.clone()));
            return (None, false);
        }
        let key = inv.idempotency_key.clone();
        let result = match inv.kind {
            InvokeKind::Action => {
                let expected: Vec<Bytes> = (0..inv.step).map(|i| output_of(inv.saga, i)).collect();
                assert_eq!(inv.previous, expected, "previous outputs of {slot:?}");
                let comp_key =
                    dsys_txn::saga::idempotency_key(inv.saga, inv.step, InvokeKind::Compensation);
                assert!(
                    !self.compensations.contains(&comp_key),
                    "action {slot:?} invoked after its compensation"
                );
                if let Some(out) = self.actions.get(&key) {
                    Ok(out.clone())
                } else if let Some(e) = self.refused.get(&key) {
                    // Like a payment API, the service keeps its final answer
                    // per key.
                    Err(e.clone())
                } else if let Behave::Fail(e) = &behave {
                    if !e.retryable {
                        self.refused.insert(key, e.clone());
                    }
                    Err(e.clone())
                } else {
                    let out = output_of(inv.saga, inv.step);
                    self.actions.insert(key, out.clone());
                    self.effect(slot);
                    Ok(out)
                }
            }
            InvokeKind::Compensation => {
                let applied = self.actions.get(&action_key(inv));
                if let Some(out) = &inv.output {
                    assert_eq!(
                        Some(out),
                        applied,
                        "compensation of {slot:?} got another output"
                    );
                }
                if self.compensations.contains(&key) {
                    Ok(Bytes::new())
                } else if let Behave::Fail(e) = &behave {
                    Err(e.clone())
                } else {
                    let undoes = applied.is_some();
                    self.compensations.insert(key);
                    if undoes {
                        self.effect(slot);
                    }
                    Ok(Bytes::new())
                }
            }
        };
        match behave {
            Behave::Lose => (None, false),
            Behave::Late => (Some(result), true),
            _ => (Some(result), false),
        }
    }

    /// A timer fired: the delayed requests due land (all of them if
    /// `all`); nobody hears their answers.
    fn land_delayed(&mut self, all: bool) {
        let mut due = vec![];
        self.delayed.retain_mut(|(ticks, inv)| {
            *ticks = ticks.saturating_sub(1);
            let land = all || *ticks == 0;
            if land {
                due.push(inv.clone());
            }
            !land
        });
        for inv in due {
            let slot = (inv.saga, inv.step, inv.kind);
            let key = inv.idempotency_key.clone();
            match inv.kind {
                InvokeKind::Action => {
                    let comp_key = dsys_txn::saga::idempotency_key(
                        inv.saga,
                        inv.step,
                        InvokeKind::Compensation,
                    );
                    // A compensation makes a later delivery of its action a
                    // no-op (the orchestrator's durability contract).
                    if !self.actions.contains_key(&key)
                        && !self.refused.contains_key(&key)
                        && !self.compensations.contains(&comp_key)
                    {
                        self.actions.insert(key, output_of(inv.saga, inv.step));
                        self.effect(slot);
                    }
                }
                InvokeKind::Compensation => {
                    if self.compensations.insert(key)
                        && self.actions.contains_key(&action_key(&inv))
                    {
                        self.effect(slot);
                    }
                }
            }
        }
    }

    fn effect(&mut self, slot: Slot) {
        let n = self.effects.entry(slot).or_default();
        *n += 1;
        self.order.entry(slot.0).or_default().push((slot.1, slot.2));
    }

    /// The acceptance check for one finished saga.
    fn check(&self, saga: SagaId, def: &SagaDefinition, outcome: &Outcome) {
        for (slot, keys) in self.keys.range((saga, 0, InvokeKind::Action)..) {
            if slot.0 != saga {
                break;
            }
            assert_eq!(
                keys.len(),
                1,
                "{slot:?} was invoked under several keys: {keys:?}"
            );
        }
        for (slot, n) in &self.effects {
            assert!(*n <= 1, "{slot:?} applied {n} times");
        }
        let eff = |step: usize, kind| self.effects.get(&(saga, step, kind)).copied().unwrap_or(0);
        let failed = match outcome {
            Outcome::Completed => def.steps.len(),
            Outcome::Compensated { failed_step, .. } => *failed_step,
        };
        for (i, s) in def.steps.iter().enumerate() {
            let (a, c) = (eff(i, InvokeKind::Action), eff(i, InvokeKind::Compensation));
            let compensated = s.compensation.is_some();
            match outcome {
                Outcome::Completed => {
                    assert_eq!((a, c), (1, 0), "saga {saga} step {i} after completion");
                }
                Outcome::Compensated { .. } if i < failed => {
                    assert_eq!(a, 1, "saga {saga} step {i} before the failure");
                    assert_eq!(
                        c,
                        u32::from(compensated),
                        "saga {saga} step {i} compensation"
                    );
                }
                Outcome::Compensated { .. } if i == failed && compensated => {
                    assert_eq!(a, c, "saga {saga}: failed step {i} applied but not undone");
                }
                // A step without a compensation is read-only here.
                Outcome::Compensated { .. } if i == failed => assert_eq!(c, 0),
                Outcome::Compensated { .. } => {
                    assert_eq!((a, c), (0, 0), "saga {saga} step {i} after the failure");
                }
            }
        }
        // Compensations ran in reverse step order, after every action.
        // (A read-only step, without a compensation, may see a delayed
        // request land at any time: nothing could undo it.)
        let order: Vec<(usize, InvokeKind)> = self
            .order
            .get(&saga)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(s, k)| *k == InvokeKind::Compensation || def.steps[*s].compensation.is_some())
            .collect();
        let comps: Vec<usize> = order
            .iter()
            .filter(|(_, k)| *k == InvokeKind::Compensation)
            .map(|(s, _)| *s)
            .collect();
        assert!(
            comps.windows(2).all(|w| w[0] > w[1]),
            "saga {saga}: order {order:?}"
        );
        if let Some(first) = order
            .iter()
            .position(|(_, k)| *k == InvokeKind::Compensation)
        {
            assert!(
                order[first..]
                    .iter()
                    .all(|(_, k)| *k == InvokeKind::Compensation),
                "saga {saga}: an action after a compensation: {order:?}"
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    /// Records written but not acknowledged are lost.
    Drop,
    /// They all reached the disk.
    All,
    /// A random prefix of them did.
    Prefix,
}

enum Crashes {
    None,
    /// Crash at these point numbers.
    At(BTreeSet<u64>, Keep),
    /// Crash at each point with this probability (per mille).
    Random(u32),
}

type Pending = (SagaId, usize, InvokeKind, u32, Result<Bytes, StepError>);

struct World {
    orch: Orchestrator,
    sagas: Vec<(SagaId, &'static str)>,
    durable: Vec<(SagaId, SagaRecord)>,
    unacked: Vec<(SagaId, SagaRecord)>,
    last: Option<PersistId>,
    results: VecDeque<Pending>,
    late: Vec<Pending>,
    operator: VecDeque<SagaId>,
    now: WallTime,
    service: Service,
    outcomes: BTreeMap<SagaId, Outcome>,
    points: u64,
    crashes: Crashes,
    crashed: u64,
    rng: fastrand::Rng,
    stuck_seen: u64,
}

fn fresh() -> Orchestrator {
    let mut o = Orchestrator::new(Config::default()).unwrap();
    for d in defs() {
        o.define(d).unwrap();
    }
    o
}

impl World {
    fn new(
        sagas: Vec<(SagaId, &'static str)>,
        service: Service,
        crashes: Crashes,
        seed: u64,
    ) -> Self {
        let now = WallTime::from_millis(1_700_000_000_000);
        let mut orch = fresh();
        for (id, def) in &sagas {
            orch.start(*id, def, Bytes::from_static(b"input"), now)
                .unwrap();
        }
        Self {
            orch,
            sagas,
            durable: Vec::new(),
            unacked: Vec::new(),
            last: None,
            results: VecDeque::new(),
            late: Vec::new(),
            operator: VecDeque::new(),
            now,
            service,
            outcomes: BTreeMap::new(),
            points: 0,
            crashes,
            crashed: 0,
            rng: fastrand::Rng::with_seed(seed),
            stuck_seen: 0,
        }
    }

    /// A crash point: returns whether the orchestrator crashed here.
    fn point(&mut self) -> bool {
        self.points += 1;
        let keep = match &self.crashes {
            Crashes::None => return false,
            Crashes::At(at, keep) => {
                if !at.contains(&self.points) {
                    return false;
                }
                *keep
            }
            Crashes::Random(per_mille) => {
                if self.rng.u32(0..1000) >= *per_mille {
                    return false;
                }
                [Keep::Drop, Keep::All, Keep::Prefix][self.rng.usize(0..3)]
            }
        };
        self.crash(keep);
        true
    }

    fn crash(&mut self, keep: Keep) {
        let n = match keep {
            Keep::Drop => 0,
            Keep::All => self.unacked.len(),
            Keep::Prefix => self.rng.usize(0..=self.unacked.len()),
        };
        self.durable.extend(self.unacked.drain(..).take(n));
        self.last = None;
        self.results.clear();
        self.operator.clear();
        // Results in flight may still arrive at the new orchestrator.
        let late: Vec<Pending> = std::mem::take(&mut self.late);
        self.orch = fresh();
        self.orch.recover(self.durable.clone(), self.now).unwrap();
        // A saga whose Started record was lost was never started: its client
        // starts it again (the same id, hence the same keys).
        for (id, def) in &self.sagas {
            if !self.outcomes.contains_key(id) && self.orch.status(*id).is_none() {
                let started = self.durable.iter().any(|(s, _)| s == id);
                if started {
                    // Recovery reports it Finished (in the outputs to drain).
                    let finished = self
                        .durable
                        .iter()
                        .any(|(s, r)| s == id && matches!(r, SagaRecord::Finished { .. }));
                    assert!(finished, "saga {id} has records but was not recovered");
                } else {
                    self.orch
                        .start(*id, def, Bytes::from_static(b"input"), self.now)
                        .unwrap();
                }
            }
        }
        self.late = late;
        self.crashed += 1;
    }

    fn run(&mut self) {
        for _ in 0..200_000 {
            if let Some(out) = self.orch.poll_output() {
                match out {
                    Output::Persist { id, saga, record } => {
                        self.unacked.push((saga, record));
                        self.last = Some(id);
                        self.point();
                    }
                    Output::Invoke(inv) => {
                        if self.point() {
                            continue;
                        }
                        let (result, late) = self.service.invoke(&inv);
                        if let Some(r) = result {
                            let p = (inv.saga, inv.step, inv.kind, inv.attempt, r);
                            if late {
                                self.late.push(p);
                            } else {
                                self.results.push_back(p);
                            }
                        }
                        self.point();
                    }
                    Output::Finished { saga, outcome } => {
                        if let Some(prev) = self.outcomes.insert(saga, outcome.clone()) {
                            assert_eq!(prev, outcome, "saga {saga} finished twice, differently");
                        }
                    }
                    Output::Stuck { saga, reason, .. } => {
                        assert!(!reason.is_empty());
                        self.stuck_seen += 1;
                        self.operator.push_back(saga);
                    }
                    other => panic!("unexpected output {other:?}"),
                }
                continue;
            }
            if let Some(id) = self.last {
                if self.point() {
                    continue;
                }
                self.durable.append(&mut self.unacked);
                self.last = None;
                self.orch.on_persisted(id);
                self.point();
                continue;
            }
            if !self.results.is_empty() {
                let i = self.rng.usize(0..self.results.len());
                let (s, st, k, a, r) = self.results.remove(i).unwrap();
                self.orch.handle_result(s, st, k, a, r, self.now);
                self.point();
                continue;
            }
            if let Some(saga) = self.operator.pop_front() {
                // Already resumed (a recovery re-reported it) is fine.
                let _ = self.orch.retry_stuck(saga, self.now);
                continue;
            }
            if self.outcomes.len() == self.sagas.len() {
                assert_eq!(self.orch.sagas().count(), 0);
                return;
            }
            let t = self
                .orch
                .poll_timeout()
                .unwrap_or_else(|| panic!("livelock: {:?}", self.orch.sagas().collect::<Vec<_>>()));
            self.now = self.now.max(t);
            self.service.land_delayed(false);
            self.orch.handle_timeout(self.now);
            for (s, st, k, a, r) in self.late.drain(..) {
                self.orch.handle_result(s, st, k, a, r, self.now);
            }
            self.point();
        }
        panic!("no end after 200,000 iterations");
    }

    fn check(&mut self) {
        // Whatever is still on the way lands before the books are checked.
        self.service.land_delayed(true);
        for (id, def) in &self.sagas {
            let outcome = &self.outcomes[id];
            self.service.check(*id, &def_of(def), outcome);
        }
    }
}

struct SeedGuard(String);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failing case: {}", self.0);
        }
    }
}

fn plan(entries: Vec<(Slot, Vec<Behave>)>) -> Service {
    Service {
        plan: entries
            .into_iter()
            .map(|(s, b)| (s, b.into_iter().collect()))
            .collect(),
        ..Service::default()
    }
}

fn busy() -> Behave {
    Behave::Fail(StepError::retryable("busy", "later"))
}

fn declined() -> Behave {
    Behave::Fail(StepError::non_retryable("declined", "card declined"))
}

const S: SagaId = SagaId(1);
const A: InvokeKind = InvokeKind::Action;
const C: InvokeKind = InvokeKind::Compensation;

/// A name, a definition, the service's script, and the step that must
/// fail (`None`: the saga completes).
type Scenario = (
    &'static str,
    &'static str,
    Vec<(Slot, Vec<Behave>)>,
    Option<usize>,
);

/// The scripted scenarios. The expected outcome holds whatever the
/// crashes, because the service keeps its final answer per key.
fn scenarios() -> Vec<Scenario> {
    vec![
        ("order completes", "order", vec![], None),
        (
            "order: payment declined, compensated",
            "order",
            vec![((S, 2, A), vec![declined()])],
            Some(2),
        ),
        (
            "order: retries, lost answers, a hang, then payment declined",
            "order",
            vec![
                ((S, 1, A), vec![Behave::Lose, Behave::Ok]),
                ((S, 2, A), vec![busy(), Behave::Hang, declined()]),
                ((S, 1, C), vec![Behave::Late]),
                ((S, 0, C), vec![busy(), Behave::Lose]),
            ],
            Some(2),
        ),
        (
            "five: step 4 always times out after applying, compensated too",
            "five",
            vec![((S, 4, A), vec![Behave::Lose; 20])],
            Some(4),
        ),
        (
            "five: stuck compensation, operator retry",
            "five",
            vec![
                ((S, 3, A), vec![declined()]),
                (
                    (S, 1, C),
                    vec![Behave::Fail(StepError::non_retryable(
                        "broken",
                        "human needed",
                    ))],
                ),
            ],
            Some(3),
        ),
        (
            "order: payment's first request delayed, then busy until exhausted",
            "order",
            vec![(
                (S, 2, A),
                vec![Behave::Delayed(30), busy(), busy(), busy(), busy()],
            )],
            Some(2),
        ),
        (
            "five completes with retries",
            "five",
            vec![
                ((S, 0, A), vec![busy(), busy()]),
                ((S, 3, A), vec![Behave::Late]),
            ],
            None,
        ),
    ]
}

fn run_scenario(def: &'static str, script: &[(Slot, Vec<Behave>)], crashes: Crashes) -> World {
    let mut w = World::new(vec![(S, def)], plan(script.to_vec()), crashes, 7);
    w.run();
    w.check();
    w
}

fn expect_outcome(w: &World, failed: Option<usize>) {
    match (&w.outcomes[&S], failed) {
        (Outcome::Completed, None) => {}
        (Outcome::Compensated { failed_step, .. }, Some(f)) => assert_eq!(*failed_step, f),
        (o, f) => panic!("outcome {o:?}, expected failure at {f:?}"),
    }
}

/// Acceptance: a crash at every point, keeping or dropping what was not
/// acknowledged, then recovery: all done or all compensated, each effect at
/// most once per idempotency key. Then a crash at every pair of points.
#[test]
fn crash_at_every_point_then_recover() {
    let mut runs = 0;
    for (name, def, script, failed) in scenarios() {
        let base = run_scenario(def, &script, Crashes::None);
        expect_outcome(&base, failed);
        let points = base.points;
        for k in 1..=points + 1 {
            for keep in [Keep::Drop, Keep::All] {
                let _g = SeedGuard(format!("{name}: crash at point {k}, {keep:?}"));
                let w = run_scenario(def, &script, Crashes::At([k].into(), keep));
                expect_outcome(&w, failed);
                runs += 1;
            }
        }
        // Two crashes, the second during or after the first recovery.
        for k in 1..=points {
            for d in 1..=20 {
                let _g = SeedGuard(format!("{name}: crashes at {k} and {}", k + d));
                let w = run_scenario(def, &script, Crashes::At([k, k + d].into(), Keep::Prefix));
                expect_outcome(&w, failed);
                runs += 1;
            }
        }
    }
    eprintln!("{runs} crash runs");
    assert!(runs > 500, "only {runs} runs");
}

/// Many sagas at once, random failures, lost and late answers, hangs,
/// requests that land late (after later attempts, or after a crash),
/// non-retryable compensation failures (stuck, then an operator retry), and
/// crashes at random points.
#[test]
fn randomized_crashes() {
    let seeds: u64 = std::env::var("DSYS_TXN_SAGA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let mut crashes = 0;
    let mut stuck = 0;
    let mut stale = 0;
    for seed in 0..seeds {
        let _g = SeedGuard(format!("DSYS_TXN_SAGA_SEEDS seed {seed}"));
        let mut rng = fastrand::Rng::with_seed(seed);
        let n = rng.u64(1..=6);
        let sagas: Vec<(SagaId, &'static str)> = (0..n)
            .map(|i| (SagaId(i), if rng.bool() { "order" } else { "five" }))
            .collect();
        let doomed = sagas
            .iter()
            .filter_map(|(id, def)| {
                let steps = def_of(def).steps.len();
                // The check step has no compensation, so it never fails here.
                let step = rng.usize(0..steps * 2);
                (step < steps && !(*def == "five" && step == 2)).then_some((*id, step))
            })
            .collect();
        let service = Service {
            random: Some(Random {
                rng: fastrand::Rng::with_seed(seed ^ 0xdead_beef),
                doomed,
            }),
            ..Service::default()
        };
        let mut w = World::new(sagas, service, Crashes::Random(30), seed);
        w.run();
        w.check();
        crashes += w.crashed;
        stuck += w.stuck_seen;
        stale += w.orch.counters().stale_results;
    }
    eprintln!("{seeds} seeds: {crashes} crashes, {stuck} stuck reports, {stale} stale results");
    if seeds >= 50 {
        assert!(crashes > seeds, "too few crashes: {crashes}");
        assert!(stuck > 0, "no saga got stuck");
    }
}

/// Recovery from a damaged log (records dropped, repeated, swapped, edited,
/// cut short, or bytes flipped and re-decoded) either refuses it with an
/// error or resumes sagas that then run to their end: never a panic, never
/// a saga that waits for nothing.
#[test]
fn recover_never_panics_on_damaged_logs() {
    let seeds: u64 = std::env::var("DSYS_TXN_SAGA_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
        / 4;
    let (mut refused, mut resumed) = (0u64, 0u64);
    for seed in 0..seeds {
        let _g = SeedGuard(format!("damaged log, DSYS_TXN_SAGA_SEEDS seed {seed}"));
        let mut rng = fastrand::Rng::with_seed(seed);
        let sagas: Vec<(SagaId, &'static str)> = (0..rng.u64(1..=3))
            .map(|i| (SagaId(i), if rng.bool() { "order" } else { "five" }))
            .collect();
        let service = Service {
            random: Some(Random {
                rng: fastrand::Rng::with_seed(seed),
                doomed: BTreeMap::new(),
            }),
            ..Service::default()
        };
        let mut w = World::new(sagas, service, Crashes::None, seed);
        w.run();
        let mut log = w.durable.clone();
        for _ in 0..rng.u32(1..=3) {
            if log.is_empty() {
                break;
            }
            let i = rng.usize(0..log.len());
            match rng.u32(0..6) {
                0 => {
                    log.remove(i);
                }
                1 => {
                    let r = log[i].clone();
                    log.insert(rng.usize(0..=log.len()), r);
                }
                2 => {
                    let j = rng.usize(0..log.len());
                    log.swap(i, j);
                }
                3 => log.truncate(i),
                4 => log[i].0 = SagaId(rng.u64(0..4)),
                _ => {
                    let mut bytes = log[i].1.to_bytes().unwrap();
                    let b = rng.usize(4..bytes.len());
                    bytes[b] ^= 1 << rng.u32(0..8);
                    // Fix the checksum so the body's damage reaches decode.
                    let crc = crc32c::crc32c(&bytes[4..]).to_le_bytes();
                    bytes[..4].copy_from_slice(&crc);
                    if let Ok(r) = SagaRecord::decode(&bytes) {
                        log[i].1 = r;
                    }
                }
            }
        }
        let mut o = fresh();
        if o.recover(log, w.now).is_err() {
            refused += 1;
            continue;
        }
        resumed += 1;
        finish(&mut o, w.now);
    }
    eprintln!("damaged logs: {refused} refused, {resumed} resumed");
    assert!(seeds < 100 || (refused > 0 && resumed > 0));
}

/// Runs every saga to its end with steps that succeed at once.
fn finish(o: &mut Orchestrator, mut now: WallTime) {
    for _ in 0..100_000 {
        if let Some(out) = o.poll_output() {
            match out {
                Output::Persist { id, .. } => o.on_persisted(id),
                Output::Invoke(i) => {
                    o.handle_result(i.saga, i.step, i.kind, i.attempt, Ok(Bytes::new()), now);
                }
                Output::Stuck { saga, .. } => o.retry_stuck(saga, now).unwrap(),
                _ => {}
            }
            continue;
        }
        if o.sagas().count() == 0 {
            return;
        }
        now = o
            .poll_timeout()
            .unwrap_or_else(|| panic!("waits for nothing: {:?}", o.sagas().collect::<Vec<_>>()));
        o.handle_timeout(now);
    }
    panic!("no end");
}
