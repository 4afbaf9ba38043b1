//! Retry policies (Temporal's activity options): the backoff sequence,
//! start-to-close and schedule-to-close timeouts, non-retryable errors,
//! stale results, and what steps are handed (Garcia-Molina & Salem §1: the
//! compensation of a step gets what its action produced).

use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, Invocation, InvokeKind, Orchestrator, Outcome, Output, RetryPolicy, SagaDefinition,
    SagaId, SagaRecord, StepDefinition, StepError,
};

const T0: WallTime = WallTime::from_millis(1_700_000_000_000);
const S: SagaId = SagaId(9);

struct Drive {
    orch: Orchestrator,
    log: Vec<SagaRecord>,
    now: WallTime,
    finished: Option<Outcome>,
}

impl Drive {
    fn new(def: SagaDefinition) -> Self {
        let mut orch = Orchestrator::new(Config::default()).unwrap();
        let name = def.name.clone();
        orch.define(def).unwrap();
        orch.start(S, &name, Bytes::from_static(b"in"), T0).unwrap();
        Self {
            orch,
            log: Vec::new(),
            now: T0,
            finished: None,
        }
    }

    /// Persists and acknowledges everything; returns the invocations.
    fn drain(&mut self) -> Vec<Invocation> {
        let mut invs = Vec::new();
        while let Some(out) = self.orch.poll_output() {
            match out {
                Output::Persist { id, record, .. } => {
                    self.log.push(record);
                    self.orch.on_persisted(id);
                }
                Output::Invoke(i) => invs.push(i),
                Output::Finished { outcome, .. } => self.finished = Some(outcome),
                other => panic!("unexpected {other:?}"),
            }
        }
        invs
    }

    fn answer(&mut self, inv: &Invocation, r: Result<Bytes, StepError>) {
        self.orch
            .handle_result(inv.saga, inv.step, inv.kind, inv.attempt, r, self.now);
    }

    /// Jumps to the next timer.
    fn tick(&mut self) {
        self.now = self.orch.poll_timeout().expect("a timer is armed");
        self.orch.handle_timeout(self.now);
    }
}

fn policy() -> RetryPolicy {
    let mut p = RetryPolicy::default();
    p.max_attempts = 5;
    p.initial_backoff = Duration::from_millis(100);
    p.backoff_coefficient = 2.0;
    p.max_backoff = Duration::from_millis(500);
    p.start_to_close = Duration::from_secs(1);
    p
}

fn two_steps(second: RetryPolicy) -> SagaDefinition {
    let mut b = StepDefinition::new("b");
    b.action = second;
    SagaDefinition::new("two")
        .step(StepDefinition::new("a"))
        .step(b)
}

/// Runs step 0 to success and returns step 1's first invocation.
fn to_second(d: &mut Drive) -> Invocation {
    let a = d.drain().pop().unwrap();
    d.answer(&a, Ok(Bytes::from_static(b"a-out")));
    let b = d.drain().pop().unwrap();
    assert_eq!((b.step, b.kind, b.attempt), (1, InvokeKind::Action, 1));
    b
}

#[test]
fn backoff_sequence_then_step_fails_and_compensates() {
    let mut d = Drive::new(two_steps(policy()));
    let mut inv = to_second(&mut d);
    let mut times = vec![];
    loop {
        times.push(d.now.saturating_duration_since(T0).as_millis());
        assert_eq!(
            inv.idempotency_key, "9/1/action",
            "the key is stable across attempts"
        );
        d.answer(&inv, Err(StepError::retryable("busy", "later")));
        if inv.attempt == 5 {
            break;
        }
        assert!(d.drain().is_empty(), "no attempt before the backoff ends");
        d.tick();
        let next = d.drain();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].attempt, inv.attempt + 1);
        inv = next.into_iter().next().unwrap();
    }
    // 100, 200, 400, then capped at 500.
    assert_eq!(times, [0, 100, 300, 700, 1200]);
    // Exhausted: step 1 is compensated first, without an output (a
    // retryable error is no final answer for its key: an earlier delivery
    // may still land), then step 0 with its output.
    let comp = d.drain().pop().unwrap();
    assert_eq!((comp.step, comp.kind), (1, InvokeKind::Compensation));
    assert_eq!(comp.output, None);
    d.answer(&comp, Ok(Bytes::new()));
    let comp = d.drain().pop().unwrap();
    assert_eq!((comp.step, comp.kind), (0, InvokeKind::Compensation));
    assert_eq!(comp.output.as_deref(), Some(&b"a-out"[..]));
    d.answer(&comp, Ok(Bytes::new()));
    d.drain();
    match d.finished.clone().unwrap() {
        Outcome::Compensated { failed_step, error } => {
            assert_eq!(failed_step, 1);
            assert_eq!(error.kind, "busy");
        }
        o => panic!("{o:?}"),
    }
    let failed: Vec<_> = d
        .log
        .iter()
        .filter_map(|r| match r {
            SagaRecord::AttemptFailed { retry_at, .. } => {
                Some(retry_at.saturating_duration_since(T0).as_millis())
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed, [100, 300, 700, 1200]);
}

#[test]
fn start_to_close_timeout_is_a_failed_attempt_and_late_results_are_stale() {
    let mut d = Drive::new(two_steps(policy()));
    let first = to_second(&mut d);
    assert_eq!(first.deadline, T0 + Duration::from_secs(1));
    // Early timeouts change nothing.
    d.orch.handle_timeout(T0 + Duration::from_millis(999));
    assert!(d.drain().is_empty());
    d.tick();
    assert_eq!(d.now, T0 + Duration::from_secs(1));
    assert_eq!(d.orch.counters().timeouts, 1);
    d.tick();
    let second = d.drain().pop().unwrap();
    assert_eq!(second.attempt, 2);
    assert_eq!(second.idempotency_key, first.idempotency_key);
    // The first attempt's answer arrives late: ignored.
    d.answer(&first, Ok(Bytes::from_static(b"late")));
    assert_eq!(d.orch.counters().stale_results, 1);
    assert!(d.drain().is_empty());
    d.answer(&second, Ok(Bytes::from_static(b"b-out")));
    d.drain();
    assert_eq!(d.finished, Some(Outcome::Completed));
}

#[test]
fn schedule_to_close_ends_retries_and_compensates_the_unknown_step() {
    let mut p = policy();
    p.max_attempts = 0; // unlimited: only schedule-to-close stops it
    p.schedule_to_close = Some(Duration::from_millis(2500));
    let mut d = Drive::new(two_steps(p));
    let first = to_second(&mut d);
    assert_eq!(first.deadline, T0 + Duration::from_secs(1));
    d.tick(); // 1.0 s: attempt 1 times out
    d.tick(); // 1.1 s: attempt 2
    let second = d.drain().pop().unwrap();
    assert_eq!(second.deadline, T0 + Duration::from_millis(2100));
    d.tick(); // 2.1 s: times out
    d.tick(); // 2.3 s: attempt 3, cut to the schedule-to-close deadline
    let third = d.drain().pop().unwrap();
    assert_eq!(third.attempt, 3);
    assert_eq!(third.deadline, T0 + Duration::from_millis(2500));
    d.tick(); // 2.5 s: the step fails; its outcome is unknown
    let comps = d.drain();
    assert_eq!(
        comps.iter().map(|c| (c.step, c.kind)).collect::<Vec<_>>(),
        [(1, InvokeKind::Compensation)],
        "the timed-out step is compensated first, without an output"
    );
    assert_eq!(comps[0].output, None);
    assert!(d.log.iter().any(|r| matches!(
        r,
        SagaRecord::StepFailed {
            step: 1,
            compensate_failed_step: true,
            ..
        }
    )));
    d.answer(&comps[0], Ok(Bytes::new()));
    let c0 = d.drain().pop().unwrap();
    assert_eq!(c0.step, 0);
    d.answer(&c0, Ok(Bytes::new()));
    d.drain();
    assert!(matches!(
        d.finished,
        Some(Outcome::Compensated { failed_step: 1, ref error }) if error.kind == StepError::TIMEOUT
    ));
}

#[test]
fn non_retryable_errors_end_the_step_at_once() {
    // The step's own non-retryable answer is final for its key: step 1 had
    // no effect. A kind the policy lists, marked retryable by the step, is
    // no such answer: step 1 is compensated too.
    for (error, kinds, first) in [
        (StepError::non_retryable("declined", "no"), vec![], 0),
        (
            StepError::retryable("declined", "no"),
            vec!["declined".to_owned()],
            1,
        ),
    ] {
        let mut p = policy();
        p.non_retryable = kinds;
        let mut d = Drive::new(two_steps(p));
        let b = to_second(&mut d);
        d.answer(&b, Err(error.clone()));
        let mut comp = d.drain().pop().unwrap();
        assert_eq!((comp.step, comp.kind), (first, InvokeKind::Compensation));
        if first == 1 {
            d.answer(&comp, Ok(Bytes::new()));
            comp = d.drain().pop().unwrap();
            assert_eq!((comp.step, comp.kind), (0, InvokeKind::Compensation));
        }
        assert!(
            !d.log
                .iter()
                .any(|r| matches!(r, SagaRecord::AttemptFailed { .. }))
        );
    }
}

#[test]
fn invocations_wait_for_their_record_and_stale_input_is_counted() {
    let mut orch = Orchestrator::new(Config::default()).unwrap();
    orch.define(two_steps(policy())).unwrap();
    orch.start(S, "two", Bytes::new(), T0).unwrap();
    let mut persists = vec![];
    while let Some(o) = orch.poll_output() {
        match o {
            Output::Persist { id, .. } => persists.push(id),
            o => panic!("{o:?} before its record was durable"),
        }
    }
    assert_eq!(persists.len(), 2, "Started, AttemptStarted");
    // A result for an attempt not yet invoked is stale.
    orch.handle_result(S, 0, InvokeKind::Action, 1, Ok(Bytes::new()), T0);
    orch.handle_result(SagaId(404), 0, InvokeKind::Action, 1, Ok(Bytes::new()), T0);
    assert_eq!(orch.counters().stale_results, 2);
    orch.on_persisted(persists[0]);
    assert!(
        orch.poll_output().is_none(),
        "only the first record is durable"
    );
    orch.on_persisted(dsys_txn_persist_beyond(&persists));
    assert_eq!(orch.counters().stale_acks, 1);
    orch.on_persisted(persists[1]);
    let Some(Output::Invoke(inv)) = orch.poll_output() else {
        panic!("the invocation is released")
    };
    // Wrong attempt, wrong kind: stale.
    orch.handle_result(S, 0, InvokeKind::Action, 2, Ok(Bytes::new()), T0);
    orch.handle_result(S, 0, InvokeKind::Compensation, 1, Ok(Bytes::new()), T0);
    assert_eq!(orch.counters().stale_results, 4);
    orch.handle_result(S, inv.step, inv.kind, inv.attempt, Ok(Bytes::new()), T0);
    assert!(matches!(orch.poll_output(), Some(Output::Persist { .. })));
}

/// An id one past the last emitted (never acknowledged legitimately).
fn dsys_txn_persist_beyond(ids: &[dsys_txn::saga::PersistId]) -> dsys_txn::saga::PersistId {
    // Ids are only made by the orchestrator; a later orchestrator life
    // makes larger ones.
    let mut o = Orchestrator::new(Config::default()).unwrap();
    o.define(two_steps(policy())).unwrap();
    let mut last = None;
    for i in 0..=ids.len() {
        o.start(SagaId(i as u64), "two", Bytes::new(), T0).unwrap();
    }
    while let Some(out) = o.poll_output() {
        if let Output::Persist { id, .. } = out {
            last = Some(id);
        }
    }
    last.unwrap()
}

#[test]
fn oversized_output_fails_the_step() {
    let mut config = Config::default();
    config.max_payload_len = 4;
    let mut orch = Orchestrator::new(config).unwrap();
    orch.define(two_steps(policy())).unwrap();
    orch.start(S, "two", Bytes::new(), T0).unwrap();
    let mut inv = None;
    while let Some(o) = orch.poll_output() {
        match o {
            Output::Persist { id, .. } => orch.on_persisted(id),
            Output::Invoke(i) => inv = Some(i),
            _ => {}
        }
    }
    let inv = inv.unwrap();
    orch.handle_result(S, 0, inv.kind, 1, Ok(Bytes::from_static(b"too big")), T0);
    assert_eq!(orch.counters().oversized_outputs, 1);
    let mut finished = None;
    let mut compensated = vec![];
    while let Some(o) = orch.poll_output() {
        match o {
            Output::Persist { id, .. } => orch.on_persisted(id),
            Output::Finished { outcome, .. } => finished = Some(outcome),
            Output::Invoke(c) => {
                // The action took effect, so it is compensated, without an
                // output to go by.
                compensated.push((c.step, c.kind, c.output.clone()));
                orch.handle_result(S, c.step, c.kind, c.attempt, Ok(Bytes::new()), T0);
            }
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(compensated, [(0, InvokeKind::Compensation, None)]);
    assert!(matches!(
        finished,
        Some(Outcome::Compensated { failed_step: 0, ref error }) if error.kind == "output_too_large"
    ));
}

#[test]
fn steps_get_the_input_and_earlier_outputs() {
    let def = SagaDefinition::new("three")
        .step(StepDefinition::new("a"))
        .step(StepDefinition::new("b").without_compensation())
        .step(StepDefinition::new("c"))
        .step(StepDefinition::new("d"));
    let mut d = Drive::new(def);
    for (i, out) in [b"A", b"B", b"C"].iter().enumerate() {
        let inv = d.drain().pop().unwrap();
        assert_eq!(inv.step, i);
        assert_eq!(inv.input, Bytes::from_static(b"in"));
        assert_eq!(inv.previous.len(), i);
        d.answer(&inv, Ok(Bytes::from_static(*out)));
    }
    let last = d.drain().pop().unwrap();
    assert_eq!(last.previous, [&b"A"[..], b"B", b"C"]);
    d.answer(&last, Err(StepError::non_retryable("no", "no")));
    // Reverse order, skipping the step without a compensation, each with
    // its own output.
    let mut seen = vec![];
    while d.finished.is_none() {
        for c in d.drain() {
            seen.push((c.step, c.output.clone().unwrap()));
            d.answer(&c, Ok(Bytes::new()));
        }
    }
    assert_eq!(
        seen,
        [(2, Bytes::from_static(b"C")), (0, Bytes::from_static(b"A"))]
    );
}

#[test]
fn definitions_and_config_are_validated() {
    let mut orch = Orchestrator::new(Config::default()).unwrap();
    assert!(orch.define(SagaDefinition::new("empty")).is_err());
    let dup = SagaDefinition::new("dup")
        .step(StepDefinition::new("x"))
        .step(StepDefinition::new("x"));
    assert!(orch.define(dup).is_err());
    let mut bad = StepDefinition::new("x");
    bad.action.backoff_coefficient = f64::NAN;
    assert!(orch.define(SagaDefinition::new("bad").step(bad)).is_err());
    orch.define(two_steps(policy())).unwrap();
    assert!(orch.define(two_steps(policy())).is_err());
    assert!(orch.start(S, "nope", Bytes::new(), T0).is_err());
    orch.start(S, "two", Bytes::new(), T0).unwrap();
    assert!(orch.start(S, "two", Bytes::new(), T0).is_err());
    let mut c = Config::default();
    c.max_sagas = 0;
    assert!(Orchestrator::new(c).is_err());
    let mut c = Config::default();
    c.max_payload_len = usize::MAX;
    assert!(c.validate().is_err());
    let mut c = Config::default();
    c.max_sagas = 1;
    let mut one = Orchestrator::new(c).unwrap();
    one.define(two_steps(policy())).unwrap();
    one.start(SagaId(1), "two", Bytes::new(), T0).unwrap();
    assert!(one.start(SagaId(2), "two", Bytes::new(), T0).is_err());
}
