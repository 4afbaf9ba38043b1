//! Section 1's machinery: the seeds' order saga as a dsys-txn definition, the
//! four services it calls (each applying an effect at most once per idempotency
//! key, as the orchestrator's contract asks), and a driver that runs the
//! sans-IO orchestrator on virtual time, every record appended to a SQLite
//! saga log (in memory) before it is acknowledged.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use dsys_txn::WallTime;
use dsys_txn::saga::{
    Config, Invocation, InvokeKind, Orchestrator, Outcome, Output, SagaDefinition, SagaId, SagaLog,
    SagaRecord, SqliteSagaLog, StepDefinition, StepError, idempotency_key,
};

use crate::report::Res;

/// The seeds' four steps, in order ("1. Create Order ... 4. Start Shipping").
pub(super) const STEPS: [&str; 4] = [
    "create_order",
    "deduct_inventory",
    "process_payment",
    "start_shipping",
];
/// Each step's compensation ("compensate: Cancel Order" ...).
pub(super) const COMPENSATIONS: [&str; 4] = [
    "cancel_order",
    "restore_inventory",
    "refund_payment",
    "cancel_shipment",
];
/// The payment step's index.
pub(super) const PAYMENT: usize = 2;
/// The seeds' context: `{"user_id": "user-123", "amount": 50000}`.
pub(super) const INPUT: &str = "user-123 buys 2 widgets for 50,000";
/// Widgets in stock before any saga.
pub(super) const STOCK: i64 = 10;
const QUANTITY: i64 = 2;
const AMOUNT: i64 = 50_000;
/// How long the orchestrator waits for one payment attempt.
pub(super) const PAYMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts of `restore_inventory` before the saga is stuck.
pub(super) const RESTORE_ATTEMPTS: u32 = 3;

/// The name of what an invocation runs: the step's action or its compensation.
pub(super) fn name(step: usize, kind: InvokeKind) -> &'static str {
    let names = match kind {
        InvokeKind::Action => &STEPS,
        InvokeKind::Compensation => &COMPENSATIONS,
    };
    names.get(step).copied().unwrap_or("?")
}

/// The order saga: the seeds' four steps, with a 2 s timeout per payment
/// attempt (3 attempts, the default) and 3 attempts for restoring inventory.
pub(super) fn definition() -> SagaDefinition {
    let mut inventory = StepDefinition::new(STEPS[1]);
    if let Some(policy) = inventory.compensation.as_mut() {
        policy.max_attempts = RESTORE_ATTEMPTS;
    }
    let mut payment = StepDefinition::new(STEPS[PAYMENT]);
    payment.action.start_to_close = PAYMENT_TIMEOUT;
    SagaDefinition::new("order")
        .step(StepDefinition::new(STEPS[0]))
        .step(inventory)
        .step(payment)
        .step(StepDefinition::new(STEPS[3]))
}

/// How the payment gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gateway {
    /// Refuses the card (nothing charged).
    Declines,
    /// Charges the card, but its answer never arrives (the seeds'
    /// "Payment gateway timeout").
    ChargesButTimesOut,
    /// Charges the card, and the payment step's client gives up first and
    /// returns the seed's error: `Payment gateway timeout`, retryable.
    ChargesButReportsTimeout,
}

/// The order, inventory, payment and shipping services, remembering the first
/// result of every idempotency key and returning it again for a repeat.
#[derive(Debug)]
pub(super) struct Services {
    pub(super) gateway: Gateway,
    /// The inventory service refuses every call (restore fails).
    pub(super) inventory_down: bool,
    /// The first result of each key.
    results: BTreeMap<String, Result<Bytes, StepError>>,
    /// Calls per key, repeats included.
    pub(super) calls: BTreeMap<String, u32>,
    /// Effects applied per key (at most one each).
    pub(super) applied: BTreeMap<String, u32>,
    pub(super) stock: i64,
    /// Charged minus refunded.
    pub(super) charged: i64,
    pub(super) orders: BTreeMap<SagaId, &'static str>,
    pub(super) shipments: i64,
}

impl Services {
    pub(super) fn new(gateway: Gateway) -> Self {
        Self {
            gateway,
            inventory_down: false,
            results: BTreeMap::new(),
            calls: BTreeMap::new(),
            applied: BTreeMap::new(),
            stock: STOCK,
            charged: 0,
            orders: BTreeMap::new(),
            shipments: 0,
        }
    }

    /// Whether `saga`'s step `step` action took effect.
    fn done(&self, saga: SagaId, step: usize) -> bool {
        matches!(
            self.results
                .get(&idempotency_key(saga, step, InvokeKind::Action)),
            Some(Ok(_))
        )
    }

    /// Runs `inv`: the reply (`None`: it never arrives) and what the service did.
    pub(super) fn call(&mut self, inv: &Invocation) -> (Option<Result<Bytes, StepError>>, String) {
        let key = inv.idempotency_key.clone();
        *self.calls.entry(key.clone()).or_default() += 1;
        let payment = inv.step == PAYMENT && inv.kind == InvokeKind::Action;
        let lost = payment && self.gateway == Gateway::ChargesButTimesOut;
        if payment && self.gateway == Gateway::ChargesButReportsTimeout {
            // The client's own timeout: whatever the gateway did, the step
            // only sees the error.
            let effect = if self.results.contains_key(&key) {
                "seen key: nothing applied".to_owned()
            } else {
                self.charged += AMOUNT;
                *self.applied.entry(key.clone()).or_default() += 1;
                self.results
                    .insert(key, Ok(Bytes::from(format!("PAY-{:03}", inv.saga.0))));
                "card charged 50,000".to_owned()
            };
            let error = StepError::retryable("timeout", "Payment gateway timeout");
            return (Some(Err(error)), effect);
        }
        if let Some(first) = self.results.get(&key) {
            let reply = (!lost).then(|| first.clone());
            return (reply, "seen key: nothing applied".to_owned());
        }
        let saga = inv.saga;
        let (result, effect): (Result<Bytes, StepError>, String) = match (inv.step, inv.kind) {
            (0, InvokeKind::Action) => {
                self.orders.insert(saga, "created");
                let id = format!("ORD-{:03}", saga.0);
                (Ok(Bytes::from(id.clone())), format!("order {id} created"))
            }
            (0, InvokeKind::Compensation) => {
                self.orders.insert(saga, "cancelled");
                (
                    Ok(Bytes::new()),
                    format!("order ORD-{:03} cancelled", saga.0),
                )
            }
            (1, InvokeKind::Action) => {
                let before = self.stock;
                self.stock -= QUANTITY;
                (
                    Ok(Bytes::from_static(b"2 reserved")),
                    format!("stock {before} -> {}", self.stock),
                )
            }
            (1, InvokeKind::Compensation) if self.inventory_down => {
                // Nothing happened, so the key is not remembered: a later call may apply.
                let error = StepError::retryable("unavailable", "inventory service is down");
                return (Some(Err(error)), "down: nothing applied".to_owned());
            }
            (1, InvokeKind::Compensation) => {
                let before = self.stock;
                if self.done(saga, 1) {
                    self.stock += QUANTITY;
                }
                (
                    Ok(Bytes::new()),
                    format!("stock {before} -> {}", self.stock),
                )
            }
            (2, InvokeKind::Action) => match self.gateway {
                Gateway::Declines => (
                    Err(StepError::non_retryable("declined", "card declined")),
                    "card declined, nothing charged".to_owned(),
                ),
                Gateway::ChargesButTimesOut | Gateway::ChargesButReportsTimeout => {
                    self.charged += AMOUNT;
                    (
                        Ok(Bytes::from(format!("PAY-{:03}", saga.0))),
                        "card charged 50,000".to_owned(),
                    )
                }
            },
            (2, InvokeKind::Compensation) => {
                // Its output may be unknown (the action timed out): look the
                // charge up by the action's key.
                if self.done(saga, 2) {
                    self.charged -= AMOUNT;
                    (Ok(Bytes::new()), "refunded 50,000".to_owned())
                } else {
                    (Ok(Bytes::new()), "no charge: nothing to refund".to_owned())
                }
            }
            (3, InvokeKind::Action) => {
                self.shipments += 1;
                (
                    Ok(Bytes::from(format!("SHIP-{:03}", saga.0))),
                    "shipment booked".to_owned(),
                )
            }
            _ => {
                if self.done(saga, 3) {
                    self.shipments -= 1;
                }
                (Ok(Bytes::new()), "shipment cancelled".to_owned())
            }
        };
        *self.applied.entry(key.clone()).or_default() += 1;
        self.results.insert(key, result.clone());
        let reply = (!lost).then_some(result);
        let effect = if lost {
            format!("{effect}; the reply is lost")
        } else {
            effect
        };
        (reply, effect)
    }
}

/// One invocation the driver ran.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// Virtual time since the scenario began.
    pub(super) at: Duration,
    pub(super) step: usize,
    pub(super) kind: InvokeKind,
    pub(super) attempt: u32,
    pub(super) key: String,
    /// What the service did.
    pub(super) effect: String,
    /// What came back: `ok`, the error, or `no reply`.
    pub(super) reply: String,
}

/// How a run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// Nothing left to do: every saga finished or is stuck.
    Idle,
    /// The stop condition asked for a crash right after a call.
    Crashed,
}

/// The orchestrator, its saga log and its virtual clock.
pub(super) struct Driver {
    pub(super) orchestrator: Orchestrator,
    pub(super) log: SqliteSagaLog,
    /// When the scenario began: times print as offsets from it.
    base: WallTime,
    pub(super) now: WallTime,
    /// Every invocation run, in order.
    pub(super) calls: Vec<Call>,
    /// `Finished` and `Stuck` reports, in order.
    pub(super) reports: Vec<Output>,
    /// Invocations released but not yet run.
    pending: VecDeque<Invocation>,
}

/// A fixed start for every scenario's virtual clock (2023-11-14T22:13:20Z).
pub(super) const BASE: WallTime = WallTime::from_millis(1_700_000_000_000);
/// Steps a run may take before the chapter gives up on it.
const MAX_STEPS: usize = 1_000;

impl Driver {
    /// A fresh orchestrator with the order definition and an empty log.
    pub(super) fn new() -> Res<Self> {
        let log = SqliteSagaLog::from_connection(rusqlite::Connection::open_in_memory()?)?;
        Self::with_log(log, BASE)
    }

    fn with_log(log: SqliteSagaLog, now: WallTime) -> Res<Self> {
        let mut orchestrator = Orchestrator::new(Config::default())?;
        orchestrator.define(definition())?;
        Ok(Self {
            orchestrator,
            log,
            base: BASE,
            now,
            calls: Vec::new(),
            reports: Vec::new(),
            pending: VecDeque::new(),
        })
    }

    /// After a crash: a new orchestrator, rebuilt from what the log holds.
    pub(super) fn recover(mut log: SqliteSagaLog, now: WallTime) -> Res<Self> {
        let records = log.load()?;
        let mut driver = Self::with_log(log, now)?;
        driver.orchestrator.recover(records, now)?;
        Ok(driver)
    }

    /// Starts saga `id` of the order definition.
    pub(super) fn start(&mut self, id: SagaId) -> Res {
        self.orchestrator
            .start(id, "order", Bytes::from_static(INPUT.as_bytes()), self.now)?;
        Ok(())
    }

    /// Runs until every saga finished or is stuck, or until `crash_after`
    /// says the process dies right after a call (before its reply reaches
    /// the orchestrator).
    pub(super) fn run(
        &mut self,
        services: &mut Services,
        crash_after: impl Fn(&Call) -> bool,
    ) -> Res<Stop> {
        for _ in 0..MAX_STEPS {
            while let Some(out) = self.orchestrator.poll_output() {
                match out {
                    Output::Persist { id, saga, record } => {
                        // Durable first, then acknowledged: the contract.
                        self.log.append(&[(saga, record)])?;
                        self.orchestrator.on_persisted(id);
                    }
                    Output::Invoke(inv) => self.pending.push_back(inv),
                    other => self.reports.push(other),
                }
            }
            if let Some(inv) = self.pending.pop_front() {
                let (reply, effect) = services.call(&inv);
                let call = Call {
                    at: self.now.saturating_duration_since(self.base),
                    step: inv.step,
                    kind: inv.kind,
                    attempt: inv.attempt,
                    key: inv.idempotency_key.clone(),
                    effect,
                    reply: match &reply {
                        None => "no reply".to_owned(),
                        Some(Ok(_)) => "ok".to_owned(),
                        Some(Err(e)) => e.kind.clone(),
                    },
                };
                let crash = crash_after(&call);
                self.calls.push(call);
                if crash {
                    return Ok(Stop::Crashed);
                }
                if let Some(result) = reply {
                    self.orchestrator.handle_result(
                        inv.saga,
                        inv.step,
                        inv.kind,
                        inv.attempt,
                        result,
                        self.now,
                    );
                }
                continue;
            }
            match self.orchestrator.poll_timeout() {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.orchestrator.handle_timeout(self.now);
                }
                None => return Ok(Stop::Idle),
            }
        }
        Err("the saga driver did not settle".into())
    }

    /// The outcome `saga` finished with, if it did.
    pub(super) fn outcome(&self, saga: SagaId) -> Option<&Outcome> {
        self.reports.iter().find_map(|r| match r {
            Output::Finished { saga: s, outcome } if *s == saga => Some(outcome),
            _ => None,
        })
    }

    /// Every record in the log, described.
    pub(super) fn records(&mut self) -> Res<Vec<String>> {
        Ok(self
            .log
            .load()?
            .iter()
            .map(|(_, r)| describe(r, self.base))
            .collect())
    }
}

/// A saga record in one line.
pub(super) fn describe(record: &SagaRecord, base: WallTime) -> String {
    let error = |e: &StepError| {
        if e.kind == StepError::TIMEOUT {
            "timed out".to_owned()
        } else {
            e.to_string()
        }
    };
    match record {
        SagaRecord::Started { definition, .. } => format!("Started {definition}"),
        SagaRecord::AttemptStarted {
            step,
            kind,
            attempt,
            ..
        } => format!("AttemptStarted {} #{attempt}", name(*step, *kind)),
        SagaRecord::AttemptFailed {
            step,
            kind,
            attempt,
            error: e,
            retry_at,
        } => format!(
            "AttemptFailed {} #{attempt}: {}; retry at {}",
            name(*step, *kind),
            error(e),
            seconds(retry_at.saturating_duration_since(base))
        ),
        SagaRecord::StepCompleted { step, output } => format!(
            "StepCompleted {} -> {}",
            name(*step, InvokeKind::Action),
            String::from_utf8_lossy(output)
        ),
        SagaRecord::StepFailed {
            step,
            error: e,
            compensate_failed_step,
        } => format!(
            "StepFailed {} ({}){}",
            name(*step, InvokeKind::Action),
            error(e),
            if *compensate_failed_step {
                ": effect unknown, compensate it too"
            } else {
                ""
            }
        ),
        SagaRecord::CompensationCompleted { step } => format!(
            "CompensationCompleted {}",
            name(*step, InvokeKind::Compensation)
        ),
        SagaRecord::Stuck { step, reason } => {
            format!("Stuck {}: {reason}", name(*step, InvokeKind::Compensation))
        }
        SagaRecord::OperatorRetry { .. } => "OperatorRetry".to_owned(),
        SagaRecord::Resolved { step } => {
            format!("Resolved {}", name(*step, InvokeKind::Compensation))
        }
        SagaRecord::Finished { outcome } => format!("Finished: {}", outcome_text(outcome)),
        other => format!("{other:?}"),
    }
}

/// An outcome in a few words.
pub(super) fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed => "Completed".to_owned(),
        Outcome::Compensated { failed_step, .. } => format!(
            "Compensated ({} failed)",
            name(*failed_step, InvokeKind::Action)
        ),
    }
}

/// A virtual time offset, e.g. `4.300 s`.
pub(super) fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
