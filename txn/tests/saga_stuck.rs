//! Stuck sagas: a compensation that exhausts its policy needs manual
//! intervention (the seeds' rule; Garcia-Molina & Salem §6 assume
//! compensations eventually succeed, so someone must make them). The saga
//! is stuck, persisted and reported with its reason; an operator retries
//! the compensation or marks it done by hand, and both survive a crash.

use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, Invocation, InvokeKind, OperatorError, Orchestrator, Outcome, Output, Resolution,
    RetryPolicy, SagaDefinition, SagaId, SagaRecord, SagaStatus, StepDefinition, StepError,
};

const T0: WallTime = WallTime::from_millis(1_700_000_000_000);
const S: SagaId = SagaId(3);

fn def() -> SagaDefinition {
    let mut comp = RetryPolicy::compensation();
    comp.max_attempts = 3;
    comp.initial_backoff = Duration::from_millis(10);
    let mut d = SagaDefinition::new("order");
    for name in ["create_order", "deduct_inventory", "process_payment"] {
        let mut s = StepDefinition::new(name);
        s.compensation = Some(comp.clone());
        d = d.step(s);
    }
    d
}

fn orchestrator() -> Orchestrator {
    let mut o = Orchestrator::new(Config::default()).unwrap();
    o.define(def()).unwrap();
    o
}

#[derive(Default)]
struct Seen {
    log: Vec<(SagaId, SagaRecord)>,
    stuck: Vec<(usize, String)>,
    finished: Option<Outcome>,
}

/// Persists, acknowledges and answers until nothing moves but time; the
/// inventory compensation answers with `inventory_comp` (action: payment
/// declined).
fn run(
    o: &mut Orchestrator,
    seen: &mut Seen,
    now: &mut WallTime,
    inventory_comp: &dyn Fn(&Invocation) -> Result<(), StepError>,
) -> Vec<Invocation> {
    let mut invoked = vec![];
    loop {
        let mut moved = false;
        while let Some(out) = o.poll_output() {
            moved = true;
            match out {
                Output::Persist { id, saga, record } => {
                    seen.log.push((saga, record));
                    o.on_persisted(id);
                }
                Output::Invoke(inv) => {
                    let r = match (inv.step, inv.kind) {
                        (2, InvokeKind::Action) => Err(StepError::non_retryable("declined", "no")),
                        (1, InvokeKind::Compensation) => {
                            inventory_comp(&inv).map(|()| Bytes::new())
                        }
                        _ => Ok(Bytes::new()),
                    };
                    invoked.push(inv.clone());
                    o.handle_result(inv.saga, inv.step, inv.kind, inv.attempt, r, *now);
                }
                Output::Stuck { step, reason, .. } => seen.stuck.push((step, reason)),
                Output::Finished { outcome, .. } => seen.finished = Some(outcome),
                other => panic!("{other:?}"),
            }
        }
        if moved {
            continue;
        }
        match o.poll_timeout() {
            Some(t) => {
                *now = t;
                o.handle_timeout(t);
            }
            None => return invoked,
        }
    }
}

fn always_fails(_: &Invocation) -> Result<(), StepError> {
    Err(StepError::retryable("warehouse_down", "connection refused"))
}

#[test]
fn failing_compensation_gets_stuck_with_its_reason_and_operator_retry_completes() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    let invoked = run(&mut o, &mut seen, &mut now, &always_fails);
    let attempts: Vec<u32> = invoked
        .iter()
        .filter(|i| (i.step, i.kind) == (1, InvokeKind::Compensation))
        .map(|i| i.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(seen.stuck.len(), 1);
    let (step, reason) = &seen.stuck[0];
    assert_eq!(*step, 1);
    assert!(
        reason.contains("connection refused") && reason.contains("3 attempts"),
        "{reason}"
    );
    assert_eq!(
        o.status(S),
        Some(SagaStatus::Stuck {
            step: 1,
            reason: reason.clone()
        })
    );
    assert_eq!(o.sagas().count(), 1);
    assert!(matches!(
        seen.log.last(),
        Some((_, SagaRecord::Stuck { step: 1, .. }))
    ));
    assert_eq!(
        o.poll_timeout(),
        None,
        "a stuck saga waits for nobody but the operator"
    );

    // The warehouse is back; the operator retries.
    o.retry_stuck(S, now).unwrap();
    let invoked = run(&mut o, &mut seen, &mut now, &|_| Ok(()));
    assert!(
        seen.log
            .iter()
            .any(|(_, r)| matches!(r, SagaRecord::OperatorRetry { .. }))
    );
    let order: Vec<(usize, u32)> = invoked.iter().map(|i| (i.step, i.attempt)).collect();
    assert_eq!(
        order,
        [(1, 4), (0, 1)],
        "attempts keep counting; then step 0"
    );
    assert!(matches!(
        seen.finished,
        Some(Outcome::Compensated { failed_step: 2, .. })
    ));
    assert_eq!(o.status(S), None);
}

#[test]
fn operator_retry_gets_a_fresh_policy() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    run(&mut o, &mut seen, &mut now, &always_fails);
    o.retry_stuck(S, now).unwrap();
    let invoked = run(&mut o, &mut seen, &mut now, &always_fails);
    let attempts: Vec<u32> = invoked.iter().map(|i| i.attempt).collect();
    assert_eq!(attempts, [4, 5, 6], "three more attempts, then stuck again");
    assert_eq!(seen.stuck.len(), 2);
}

#[test]
fn non_retryable_compensation_error_is_stuck_at_once() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    let invoked = run(&mut o, &mut seen, &mut now, &|_| {
        Err(StepError::non_retryable(
            "sku_deleted",
            "the product is gone",
        ))
    });
    assert_eq!(
        invoked
            .iter()
            .filter(|i| i.kind == InvokeKind::Compensation)
            .count(),
        1
    );
    assert!(seen.stuck[0].1.contains("the product is gone"));
}

#[test]
fn resolve_marks_the_step_compensated_and_continues() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    run(&mut o, &mut seen, &mut now, &always_fails);
    o.resolve_stuck(S, Resolution::MarkCompensated, now)
        .unwrap();
    let invoked = run(&mut o, &mut seen, &mut now, &always_fails);
    assert_eq!(
        invoked.iter().map(|i| (i.step, i.kind)).collect::<Vec<_>>(),
        [(0, InvokeKind::Compensation)],
        "the resolved step is not retried; step 0 is compensated"
    );
    assert!(
        seen.log
            .iter()
            .any(|(_, r)| *r == SagaRecord::Resolved { step: 1 })
    );
    assert!(matches!(
        seen.finished,
        Some(Outcome::Compensated { failed_step: 2, .. })
    ));
}

#[test]
fn operator_commands_are_refused_unless_stuck() {
    let mut o = orchestrator();
    assert_eq!(o.retry_stuck(S, T0), Err(OperatorError::Unknown(S)));
    o.start(S, "order", Bytes::new(), T0).unwrap();
    assert_eq!(o.retry_stuck(S, T0), Err(OperatorError::NotStuck(S)));
    assert_eq!(
        o.resolve_stuck(S, Resolution::MarkCompensated, T0),
        Err(OperatorError::NotStuck(S))
    );
}

#[test]
fn stuck_survives_a_crash_and_so_do_operator_commands() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    run(&mut o, &mut seen, &mut now, &always_fails);

    // Crash: a new orchestrator reports the saga stuck again.
    let mut o = orchestrator();
    o.recover(seen.log.clone(), now).unwrap();
    assert!(matches!(
        o.status(S),
        Some(SagaStatus::Stuck { step: 1, .. })
    ));
    assert!(matches!(
        o.poll_output(),
        Some(Output::Stuck { step: 1, .. })
    ));

    // The operator retries; the retry is logged, then another crash before
    // the compensation answers: it resumes with the fresh policy.
    o.retry_stuck(S, now).unwrap();
    while let Some(out) = o.poll_output() {
        if let Output::Persist { id, saga, record } = out {
            seen.log.push((saga, record));
            o.on_persisted(id);
        }
    }
    let mut o = orchestrator();
    o.recover(seen.log.clone(), now).unwrap();
    assert!(matches!(
        o.status(S),
        Some(SagaStatus::Running {
            step: 1,
            kind: InvokeKind::Compensation,
            attempt: 4
        })
    ));
    let invoked = run(&mut o, &mut seen, &mut now, &|_| Ok(()));
    assert_eq!(
        invoked[0].attempt, 4,
        "the unanswered attempt is re-invoked"
    );
    assert!(matches!(seen.finished, Some(Outcome::Compensated { .. })));

    // Resolution after a crash, too.
    let mut o = orchestrator();
    let mut seen2 = Seen::default();
    let mut now = T0;
    o.start(S, "order", Bytes::new(), now).unwrap();
    run(&mut o, &mut seen2, &mut now, &always_fails);
    let mut o = orchestrator();
    o.recover(seen2.log.clone(), now).unwrap();
    o.resolve_stuck(S, Resolution::MarkCompensated, now)
        .unwrap();
    run(&mut o, &mut seen2, &mut now, &always_fails);
    assert!(matches!(seen2.finished, Some(Outcome::Compensated { .. })));
}

#[test]
fn recover_refuses_inconsistent_logs() {
    let mut o = orchestrator();
    let (mut seen, mut now) = (Seen::default(), T0);
    o.start(S, "order", Bytes::new(), now).unwrap();
    run(&mut o, &mut seen, &mut now, &always_fails);
    let log = seen.log;
    // Without its Started record.
    assert!(orchestrator().recover(log[1..].to_vec(), now).is_err());
    // A record out of order.
    let mut swapped = log.clone();
    swapped.swap(2, 3);
    assert!(orchestrator().recover(swapped, now).is_err());
    // An unknown definition.
    let mut other = Orchestrator::new(Config::default()).unwrap();
    assert!(other.recover(log.clone(), now).is_err());
    // A step beyond the definition.
    let mut beyond = log.clone();
    beyond.push((S, SagaRecord::Resolved { step: 7 }));
    assert!(orchestrator().recover(beyond, now).is_err());
    // Into an orchestrator already running sagas.
    let mut busy = orchestrator();
    busy.start(SagaId(1), "order", Bytes::new(), now).unwrap();
    assert!(busy.recover(log, now).is_err());
}
