//! The relay: leases a fair share of the partitions and publishes each owned
//! partition's keys in per-key sequence order.

use std::collections::BTreeMap;

use dsys_clocks::PhysicalClock;

use super::config::{Config, ConfigError};
use super::event::EventId;
use super::lease::plan;
use super::publisher::{PublishError, Publisher};
use super::store::{Failure, Fenced, Lease, OutboxStore, RowState, StoreError};
use crate::WallTime;

/// A relay pass failed on the database. Leases stay as they were; events
/// published and marked before the error stay marked; events published but
/// not yet marked are published again by a later pass (at least once).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one [`Relay::run_pass`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassReport {
    /// Events published and marked.
    pub published: u64,
    /// Failed publishes recorded for retry.
    pub retried: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Leases found lost while marking (another relay took them).
    pub leases_lost: u64,
    /// Published rows deleted by retention.
    pub cleaned: u64,
    /// Partitions held after the pass.
    pub partitions_held: u32,
    /// A partition stopped on its per-pass budget or its lease deadline with
    /// work left: run the next pass soon.
    pub more: bool,
}

/// Totals since the relay was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayCounters {
    /// Passes run.
    pub passes: u64,
    /// Events published and marked.
    pub published: u64,
    /// Failed publishes.
    pub failures: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Leases acquired (not counting renewals).
    pub leases_acquired: u64,
    /// Leases lost to another relay (fenced writes refused, or not renewed).
    pub leases_lost: u64,
    /// Rows whose stored headers did not decode (dead-lettered unpublished).
    pub corrupt: u64,
}

/// One relay instance. Run [`run_pass`](Self::run_pass) in a loop (sleeping
/// briefly when a pass found nothing to do); each pass:
///
/// 1. every [`Config::rebalance_interval`] (and on the first pass):
///    heartbeats, counts live relays and renews, takes or gives up leases
///    towards a fair share `ceil(partitions / relays)`, in a few database
///    transactions;
/// 2. for each leased partition, reads unpublished rows in `(key, seq)`
///    order and publishes each key's events in order: a key stops at its
///    first event that is parked (dead-lettered), backing off, or fails now,
///    so no event of a key is ever published before an earlier one; other
///    keys go on. Successes are marked published at the end of the pass,
///    in one transaction, each partition fenced by its lease's epoch (a
///    crash before that publishes the pass's events again);
/// 3. deletes up to `cleanup_batch` rows published more than `retention` ago.
///
/// It stops publishing a partition once `clock` reads within `renew_margin`
/// of the lease's end. The relay reads `clock` (injected, so tests use a
/// manual clock) and nothing else; it never sleeps.
///
/// Owner names must be unique among live relay processes: a relay restarted
/// under the same name resumes its unexpired leases (the previous process is
/// assumed dead).
#[derive(Debug)]
pub struct Relay {
    config: Config,
    owner: String,
    held: BTreeMap<u32, Lease>,
    cursors: BTreeMap<u32, Vec<u8>>,
    counters: RelayCounters,
    last_balance: Option<WallTime>,
}

impl Relay {
    /// A relay named `owner` (1..=128 bytes) with `config` (validated).
    pub fn new(owner: impl Into<String>, config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let owner = owner.into();
        if owner.is_empty() || owner.len() > 128 {
            return Err(ConfigError::OutOfBounds {
                field: "owner",
                why: "1..=128 bytes",
            });
        }
        Ok(Self {
            config,
            owner,
            held: BTreeMap::new(),
            cursors: BTreeMap::new(),
            counters: RelayCounters::default(),
            last_balance: None,
        })
    }

    /// The relay's name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Partitions leased at the end of the last pass.
    pub fn held_partitions(&self) -> impl Iterator<Item = u32> + '_ {
        self.held.keys().copied()
    }

    /// Totals since creation.
    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    /// Gives every held lease back (graceful shutdown), so other relays take
    /// the partitions at once instead of after `lease_duration`.
    pub fn release_all<S: OutboxStore>(&mut self, store: &mut S) -> Result<(), RelayError> {
        self.last_balance = None;
        for lease in core::mem::take(&mut self.held).into_values() {
            store.release(&lease)?;
        }
        Ok(())
    }

    /// One pass: leases, publishing, retention (see the type's doc).
    pub fn run_pass<S, P, C>(
        &mut self,
        store: &mut S,
        publisher: &mut P,
        clock: &C,
    ) -> Result<PassReport, RelayError>
    where
        S: OutboxStore + ?Sized,
        P: Publisher + ?Sized,
        C: PhysicalClock + ?Sized,
    {
        self.counters.passes += 1;
        let mut report = PassReport::default();
        let now = clock.now();
        let due = match self.last_balance {
            None => true,
            // A clock that stepped back counts as due.
            Some(at) => now < at || now >= at + self.config.rebalance_interval,
        };
        if due {
            self.balance(store, now)?;
            self.last_balance = Some(now);
        }
        let held: Vec<Lease> = self.held.values().cloned().collect();
        let mut marks: Vec<(Lease, Vec<EventId>)> = Vec::new();
        for lease in held {
            match self.publish_partition(store, publisher, clock, now, &lease, &mut report) {
                Ok(Some(done)) if !done.is_empty() => marks.push((lease, done)),
                Ok(_) => {}
                Err(e) => {
                    // Keep what was published so far from being published
                    // again, if the database lets us; the error is the news.
                    let _ = self.flush(store, &marks, clock.now(), &mut report);
                    return Err(e);
                }
            }
        }
        self.flush(store, &marks, clock.now(), &mut report)?;
        report.cleaned = store.cleanup(now - self.config.retention, self.config.cleanup_batch)?;
        report.partitions_held = u32::try_from(self.held.len()).unwrap_or(u32::MAX);
        Ok(report)
    }

    fn balance<S: OutboxStore + ?Sized>(
        &mut self,
        store: &mut S,
        now: WallTime,
    ) -> Result<(), RelayError> {
        let relays = store.heartbeat(&self.owner, now + self.config.lease_duration, now)?;
        let leases = store.leases()?;
        // Forget leases the table no longer gives us (taken over after we
        // let them expire).
        let before = self.held.len();
        self.held.retain(|p, l| {
            leases
                .iter()
                .any(|t| t.partition == *p && t.owner == l.owner && t.epoch == l.epoch)
        });
        self.counters.leases_lost += (before - self.held.len()) as u64;
        let plan = plan(&self.owner, &leases, relays, now);
        for p in plan.release {
            if let Some(l) = leases.iter().find(|l| l.partition == p) {
                store.release(l)?;
            }
            self.held.remove(&p);
            self.cursors.remove(&p);
        }
        let until = now + self.config.lease_duration;
        let wanted: Vec<u32> = plan.renew.into_iter().chain(plan.acquire).collect();
        let got = store.acquire_many(&wanted, &self.owner, until, now)?;
        for (p, lease) in wanted.into_iter().zip(got) {
            match lease {
                Some(lease) => {
                    if self.held.get(&p).map(|l| l.epoch) != Some(lease.epoch) {
                        self.counters.leases_acquired += 1;
                    }
                    self.held.insert(p, lease);
                }
                None => {
                    if self.held.remove(&p).is_some() {
                        self.counters.leases_lost += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Marks what the pass published, in one store call: a partition's
    /// rows are spread over the whole table, so one transaction for all
    /// partitions writes each page once.
    fn flush<S: OutboxStore + ?Sized>(
        &mut self,
        store: &mut S,
        marks: &[(Lease, Vec<EventId>)],
        now: WallTime,
        report: &mut PassReport,
    ) -> Result<(), RelayError> {
        if marks.is_empty() {
            return Ok(());
        }
        let results = store.mark_published_many(marks, now)?;
        for ((lease, ids), result) in marks.iter().zip(results) {
            match result {
                Fenced::Written => {
                    report.published += ids.len() as u64;
                    self.counters.published += ids.len() as u64;
                }
                Fenced::LeaseLost => self.lose(lease.partition, report),
            }
        }
        Ok(())
    }

    fn lose(&mut self, partition: u32, report: &mut PassReport) {
        self.held.remove(&partition);
        self.cursors.remove(&partition);
        report.leases_lost += 1;
        self.counters.leases_lost += 1;
    }

    fn publish_partition<S, P, C>(
        &mut self,
        store: &mut S,
        publisher: &mut P,
        clock: &C,
        now: WallTime,
        lease: &Lease,
        report: &mut PassReport,
    ) -> Result<Option<Vec<EventId>>, RelayError>
    where
        S: OutboxStore + ?Sized,
        P: Publisher + ?Sized,
        C: PhysicalClock + ?Sized,
    {
        let deadline = lease.until - self.config.renew_margin;
        let mut budget = self.config.max_events_per_pass;
        let mut done: Vec<EventId> = Vec::new();
        // Resume after the last key finished by the previous pass, so a
        // partition with more work than one pass's budget is served round
        // robin instead of always from its first key.
        let mut cursor = self.cursors.remove(&lease.partition);
        'pages: loop {
            let rows = store.pending(lease.partition, cursor.as_deref(), self.config.batch_size)?;
            let full = rows.len() == self.config.batch_size as usize;
            let mut i = 0;
            while i < rows.len() {
                let key = &rows[i].event.key;
                let end = i + rows[i..].iter().take_while(|r| &r.event.key == key).count();
                for row in &rows[i..end] {
                    let corrupt = match &row.state {
                        RowState::Parked => break,
                        RowState::Pending { not_before } if *not_before > now => break,
                        RowState::Pending { .. } => None,
                        RowState::Corrupt { error } => Some(error),
                    };
                    if budget == 0 || clock.now() >= deadline {
                        // Resume at this key next pass (cursor = previous key).
                        report.more = true;
                        break 'pages;
                    }
                    let outcome = match corrupt {
                        Some(error) => {
                            self.counters.corrupt += 1;
                            Err(PublishError::Poison(format!("corrupt headers: {error}")))
                        }
                        None => publisher.publish(&row.event),
                    };
                    match outcome {
                        Ok(()) => {
                            done.push(row.event.id);
                            budget -= 1;
                        }
                        Err(error) => {
                            let attempts = row.event.attempts.saturating_add(1);
                            let dead = match error {
                                PublishError::Poison(_) => Some(self.config.dead_letter_policy),
                                PublishError::Retryable(_)
                                    if attempts >= self.config.max_attempts =>
                                {
                                    Some(self.config.dead_letter_policy)
                                }
                                PublishError::Retryable(_) => None,
                            };
                            let failure = Failure {
                                id: row.event.id,
                                attempts,
                                retry_at: now + self.config.backoff(attempts),
                                error: error.to_string(),
                                dead,
                            };
                            if store.record_failure(lease, &failure)? == Fenced::LeaseLost {
                                // What we published stays unmarked: the new
                                // holder publishes it again.
                                self.lose(lease.partition, report);
                                return Ok(None);
                            }
                            self.counters.failures += 1;
                            if dead.is_some() {
                                report.dead_lettered += 1;
                                self.counters.dead_lettered += 1;
                            } else {
                                report.retried += 1;
                            }
                            // Under Skip the key's next event may go now;
                            // the next pass takes it.
                            break;
                        }
                    }
                }
                cursor = Some(key.clone());
                i = end;
            }
            if !full {
                cursor = None;
                break;
            }
        }
        if let Some(c) = cursor {
            self.cursors.insert(lease.partition, c);
        }
        Ok(Some(done))
    }
}
