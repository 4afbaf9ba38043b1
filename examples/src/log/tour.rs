//! The state the sections share: the four partition logs, the offset store,
//! the producer, and what has been processed and committed.

use std::collections::BTreeMap;

use dsys_log::{Appended, BatchBuf, Log, OffsetStore, StdDir};

use super::files::{Workspace, topic_config};
use super::producer::Producer;
use super::topic::{GROUP, Order, PARTITIONS, PRODUCER_ID, TOPIC, tp, wall};
use crate::report::{Res, check};

/// One processed order: who processed it, from where.
#[derive(Debug, Clone)]
pub(super) struct Processed {
    pub(super) consumer: String,
    pub(super) partition: u32,
    pub(super) order: Order,
    /// Processed after the restart.
    pub(super) after_restart: bool,
}

/// A commit that has not reached the coordinator yet.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub(super) consumer: usize,
    pub(super) generation: u32,
    pub(super) partition: u32,
    /// The offset to commit: the one after the processed record.
    pub(super) offset: u64,
    pub(super) order: String,
}

pub(super) struct Tour {
    pub(super) logs: Vec<Log<StdDir>>,
    pub(super) store: OffsetStore<StdDir>,
    pub(super) producer: Producer,
    /// The last batch sent to each partition, for the retry.
    pub(super) last_batch: BTreeMap<u32, (BatchBuf, Order, Appended)>,
    pub(super) processed: Vec<Processed>,
    pub(super) in_flight: Option<InFlight>,
    /// Last, so it is dropped (and the directory removed) after the logs
    /// and the store.
    pub(super) workspace: Workspace,
}

impl Tour {
    pub(super) fn open() -> Res<Self> {
        let workspace = Workspace::create()?;
        let logs = (0..PARTITIONS)
            .map(|p| Ok(Log::open(workspace.partition(p)?, topic_config())?.0))
            .collect::<Res<Vec<_>>>()?;
        let (store, _) = OffsetStore::open(workspace.offsets()?)?;
        Ok(Tour {
            workspace,
            logs,
            store,
            producer: Producer::new(PRODUCER_ID),
            last_batch: BTreeMap::new(),
            processed: Vec::new(),
            in_flight: None,
        })
    }

    /// Produces order `i` at `t`; returns the seeds' delivery report.
    pub(super) fn send(&mut self, i: u32, t: u64) -> Res<String> {
        let order = Order::new(i);
        let partition = order.partition();
        let batch = self.producer.batch(partition, &order, wall(t))?;
        let stamp = batch.header().base_sequence;
        let appended = self.logs[partition as usize].append(batch.clone(), wall(t))?;
        check(&format!("{} is new", order.id), !appended.duplicate)?;
        check(
            &format!("{} is durable when reported", order.id),
            appended.durable_offset > appended.last_offset,
        )?;
        let report = format!(
            "{:<38}  {}  key {}  producer {} epoch {} sequence {stamp}",
            format!(
                "Message delivered to {TOPIC} [{partition}] @ {}",
                appended.base_offset
            ),
            order.id,
            order.user,
            self.producer.id,
            self.producer.epoch,
        );
        self.last_batch.insert(partition, (batch, order, appended));
        Ok(report)
    }

    /// Every record of `partition` from `offset` on, as a consumer's
    /// fetches return them.
    pub(super) fn fetch(&self, partition: u32, offset: u64) -> Res<Vec<(u64, Order)>> {
        let log = &self.logs[partition as usize];
        let mut out = Vec::new();
        let mut next = offset;
        while next < log.high_watermark() {
            let batches = log.read(next, 64 << 10)?;
            let Some(last) = batches.last() else { break };
            let after = last.last_offset() + 1;
            for batch in &batches {
                for record in batch.records() {
                    let record = record?;
                    if record.offset >= offset {
                        let value = record.value.as_deref().ok_or("a tombstone in orders")?;
                        out.push((record.offset, Order::parse(value)?));
                    }
                }
            }
            next = after;
        }
        Ok(out)
    }

    /// Where the group resumes `partition`: its committed offset, or 0
    /// (`auto.offset.reset = earliest`).
    pub(super) fn position(&self, partition: u32) -> u64 {
        self.store
            .committed(GROUP, &tp(partition))
            .map_or(0, |c| c.offset)
    }

    pub(super) fn committed(&self) -> BTreeMap<u32, u64> {
        (0..PARTITIONS).map(|p| (p, self.position(p))).collect()
    }
}
