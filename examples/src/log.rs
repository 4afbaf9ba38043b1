//! Chapter `log`: dsys-log as the seeds' Kafka topic `orders` (seed 001,
//! "4. Message Queues: Kafka Architecture"), stored in real files.
//!
//! 1. An idempotent producer publishes 20 order events keyed by user into
//!    four partition logs (Kafka's murmur2 partitioner: same user, same
//!    partition), with the seeds' delivery reports; a retried batch is
//!    recognised by its producer id, epoch and sequence and not written
//!    twice.
//! 2. The consumer group `order-processor-group` forms around the sans-IO
//!    `GroupCoordinator` (range assignor: the seeds' "Consumer 1: P0, P1 /
//!    Consumer 2: P2, P3"); each consumer processes its partitions and
//!    commits each order to an `OffsetStore` (manual commits,
//!    at-least-once). The last commit is still in flight when...
//! 3. ...three more consumers join: five consumers for four partitions,
//!    one idle (the seeds' quiz Q3). The late commit carries the old
//!    generation and is refused, as Kafka refuses it.
//! 4. Everything restarts: two logs closed cleanly, two dropped without a
//!    close, the offset store closed. Reopening recovers each log, five
//!    more orders arrive, and every partition resumes exactly at its
//!    committed offset: the uncommitted order is delivered again
//!    (at-least-once), nothing else is.
//!
//! The files live in a fresh directory under the system's temporary
//! directory, removed at the end. Every clock is a fixed value passed in,
//! so the output is the same on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dsys_log::group::{
    AssignorKind, GroupConfig, GroupCoordinator, GroupEvent, GroupState, HeartbeatError, MemberId,
    Subscription, TopicPartition,
};
use dsys_log::{
    Appended, BatchBuf, BatchBuilder, FlushPolicy, Log, LogConfig, MemDir, NewRecord, OffsetStore,
    ProducerStamp, StdDir, partition_for_key,
};

use crate::report::{self, Res, Table, check, check_eq};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let mut tour = Tour::open()?;
    produce(&mut tour)?;
    let mut group = consume(&mut tour)?;
    grow(&mut tour, &mut group)?;
    restart(tour, &group)?;
    Ok(())
}

// --- The topic, the orders, the clock ------------------------------------------------

/// The seeds' topic.
const TOPIC: &str = "orders";

/// Its partitions.
const PARTITIONS: u32 = 4;

/// The seeds' consumer group.
const GROUP: &str = "order-processor-group";

/// Orders before the restart: ORD-0000 ... ORD-0019.
const FIRST_ORDERS: u32 = 20;

/// Orders after the restart: ORD-0020 ... ORD-0024, one per user.
const LATER_ORDERS: u32 = 5;

/// The seeds' users: `user-{i % 5}`.
const USERS: u32 = 5;

/// The chapter's wall clock at t = 0: 2023-11-14 22:13:20 UTC, in Unix
/// milliseconds. Every other time is a fixed step after it.
const EPOCH_MS: i64 = 1_700_000_000_000;

/// Producer ids, as a broker's InitProducerId hands them out: one before
/// the restart, a fresh one after (a restarted idempotent producer starts
/// over with a new id).
const PRODUCER_ID: i64 = 1000;
const RESTARTED_PRODUCER_ID: i64 = 1001;

/// Unix milliseconds at `t` milliseconds into the story.
fn wall(t: u64) -> i64 {
    EPOCH_MS + t as i64
}

/// `t=12.3s`.
fn at(t: u64) -> String {
    format!("t={:.1}s", t as f64 / 1000.0)
}

/// `P2`: partition 2 of `orders`, as the seeds' diagram names it.
fn p(partition: u32) -> String {
    format!("P{partition}")
}

fn tp(partition: u32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

/// The seeds' order event `i`.
#[derive(Debug, Clone)]
struct Order {
    id: String,
    user: String,
    amount: u64,
}

impl Order {
    fn new(i: u32) -> Self {
        Order {
            id: format!("ORD-{i:04}"),
            user: format!("user-{}", i % USERS),
            amount: 10_000 * (u64::from(i) + 1),
        }
    }

    /// The record value: the seeds' JSON, less the wall-clock `timestamp`
    /// field (the record carries its CreateTime).
    fn json(&self) -> String {
        format!(
            r#"{{"order_id":"{}","user_id":"{}","amount":{}}}"#,
            self.id, self.user, self.amount
        )
    }

    /// What a consumer reads back: the JSON parsed, as the seeds'
    /// `json.loads(msg.value())`.
    fn parse(value: &[u8]) -> Res<Self> {
        let event: serde_json::Value = serde_json::from_slice(value)?;
        let field = |name: &str| {
            event
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("order event without {name}"))
        };
        Ok(Order {
            id: field("order_id")?,
            user: field("user_id")?,
            amount: event
                .get("amount")
                .and_then(|v| v.as_u64())
                .ok_or("order event without amount")?,
        })
    }

    fn partition(&self) -> u32 {
        partition_for_key(self.user.as_bytes(), PARTITIONS)
    }
}

// --- Files ---------------------------------------------------------------------------

/// A fresh directory for the chapter's files, removed when dropped (also
/// when the chapter fails half-way). Its path names the process, so runs in
/// parallel do not share it; the path is never printed, so the output does
/// not depend on it.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn create() -> Res<Self> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("dsys-log-tour-{}-{run}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        Ok(Workspace { root })
    }

    /// `orders-2`: a partition's directory, named as Kafka names it.
    fn partition(&self, partition: u32) -> Res<StdDir> {
        Ok(StdDir::open(
            self.root.join(format!("{TOPIC}-{partition}")),
        )?)
    }

    /// The offset store's directory.
    fn offsets(&self) -> Res<StdDir> {
        Ok(StdDir::open(self.root.join("__consumer_offsets-0"))?)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The topic's log configuration: Kafka's defaults, plus an fsync per
/// batch, so a delivery report means the order is on disk (what `acks=all`
/// promises with replicas, one machine can only promise with an fsync).
fn topic_config() -> LogConfig {
    let mut config = LogConfig::default();
    config.flush = FlushPolicy::every_batch();
    config
}

// --- The idempotent producer ---------------------------------------------------------

/// An idempotent producer (`enable.idempotence`): one id and epoch, and a
/// sequence number per partition that each batch carries (KIP-98).
struct Producer {
    id: i64,
    epoch: i16,
    next_sequence: BTreeMap<u32, i32>,
}

impl Producer {
    fn new(id: i64) -> Self {
        Producer {
            id,
            epoch: 0,
            next_sequence: BTreeMap::new(),
        }
    }

    /// A one-record batch for `order`, stamped with the partition's next
    /// sequence number.
    fn batch(&mut self, partition: u32, order: &Order, timestamp: i64) -> Res<BatchBuf> {
        let sequence = self.next_sequence.entry(partition).or_insert(0);
        let stamp = ProducerStamp {
            producer_id: self.id,
            producer_epoch: self.epoch,
            base_sequence: *sequence,
        };
        *sequence += 1;
        Ok(one_record(Some(stamp), order, timestamp)?)
    }
}

/// A batch holding `order` keyed by its user, stamped by `producer` if any.
fn one_record(
    producer: Option<ProducerStamp>,
    order: &Order,
    timestamp: i64,
) -> Result<BatchBuf, &'static str> {
    let mut builder = BatchBuilder::new();
    if let Some(stamp) = producer {
        builder = builder.producer(stamp);
    }
    builder.push(NewRecord::new(
        timestamp,
        Some(order.user.as_bytes()),
        Some(order.json().as_bytes()),
    ));
    builder.finish().ok_or("a batch with one record")
}

// --- The state the sections share ----------------------------------------------------

/// One processed order: who processed it, from where.
#[derive(Debug, Clone)]
struct Processed {
    consumer: String,
    partition: u32,
    order: Order,
    /// Processed after the restart.
    after_restart: bool,
}

/// A commit that has not reached the coordinator yet.
#[derive(Debug, Clone)]
struct InFlight {
    consumer: usize,
    generation: u32,
    partition: u32,
    /// The offset to commit: the one after the processed record.
    offset: u64,
    order: String,
}

struct Tour {
    logs: Vec<Log<StdDir>>,
    store: OffsetStore<StdDir>,
    producer: Producer,
    /// The last batch sent to each partition, for the retry.
    last_batch: BTreeMap<u32, (BatchBuf, Order, Appended)>,
    processed: Vec<Processed>,
    in_flight: Option<InFlight>,
    /// Last, so it is dropped (and the directory removed) after the logs
    /// and the store.
    workspace: Workspace,
}

impl Tour {
    fn open() -> Res<Self> {
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
    fn send(&mut self, i: u32, t: u64) -> Res<String> {
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
    fn fetch(&self, partition: u32, offset: u64) -> Res<Vec<(u64, Order)>> {
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
    fn position(&self, partition: u32) -> u64 {
        self.store
            .committed(GROUP, &tp(partition))
            .map_or(0, |c| c.offset)
    }

    fn committed(&self) -> BTreeMap<u32, u64> {
        (0..PARTITIONS).map(|p| (p, self.position(p))).collect()
    }
}

// --- 1. Producing ---------------------------------------------------------------------

fn produce(tour: &mut Tour) -> Res {
    report::section("1. The producer: 20 orders into topic orders, 4 partitions, idempotent");
    report::note(&format!(
        "Seed 001's producer publishes order events {{order_id: ORD-0000, user_id: user-0, \
         amount: 10000}}, ... with the user as the key (\"same user -> same partition\") and \
         enable.idempotence. Here the topic is four dsys-log partitions, each a directory \
         {TOPIC}-<p> of Kafka-format segment files in a fresh temporary directory. Kafka's own \
         partitioner picks the partition (murmur2 of the key, mod 4), and each order goes out \
         as a record batch stamped with producer id {PRODUCER_ID}, epoch 0 and the partition's \
         next sequence number. Each batch is fsynced before it is reported delivered."
    ));
    report::out!();
    for i in 0..FIRST_ORDERS {
        let line = tour.send(i, 1_000 + 100 * u64::from(i))?;
        report::quote(&line);
    }
    report::quote("All messages sent");

    let mut table = Table::new(&["partition", "keys", "orders (ORD-)", "offsets"]);
    for partition in 0..PARTITIONS {
        let records = tour.fetch(partition, 0)?;
        let users: BTreeSet<&str> = records.iter().map(|(_, o)| o.user.as_str()).collect();
        let orders: Vec<&str> = records
            .iter()
            .map(|(_, o)| o.id.trim_start_matches("ORD-"))
            .collect();
        let log = &tour.logs[partition as usize];
        let span = |n: u64| {
            if n == 0 {
                "-".to_owned()
            } else {
                format!("0..{}", n - 1)
            }
        };
        check_eq(
            &format!("{}'s sequence numbers", p(partition)),
            &tour
                .producer
                .next_sequence
                .get(&partition)
                .map_or(0, |&s| s as u64),
            &log.next_offset(),
        )?;
        let users = users.into_iter().collect::<Vec<_>>();
        table.row([
            p(partition),
            if users.is_empty() {
                "(none)".to_owned()
            } else {
                users.join(", ")
            },
            orders.join(" "),
            span(log.next_offset()),
        ]);
    }
    table.print();
    let per_user: BTreeMap<String, BTreeSet<u32>> =
        (0..FIRST_ORDERS).fold(BTreeMap::new(), |mut m, i| {
            let order = Order::new(i);
            m.entry(order.user.clone())
                .or_default()
                .insert(order.partition());
            m
        });
    check(
        "each user's orders share one partition",
        per_user.values().all(|ps| ps.len() == 1),
    )?;
    report::note(
        "Each user's four orders sit in one partition, in the order they were placed, so a \
         consumer sees a user's orders in order. Partitions are ordered; the topic as a whole is \
         not. Offsets number the records of a partition; the producer's sequence numbers count \
         its own batches' records per partition (here the same numbers, as it is the only \
         producer), and are what makes a retry recognisable.",
    );
    let empty: Vec<String> = (0..PARTITIONS)
        .filter(|&n| tour.logs[n as usize].next_offset() == 0)
        .map(p)
        .collect();
    let fullest = (0..PARTITIONS)
        .max_by_key(|&n| tour.logs[n as usize].next_offset())
        .ok_or("no partitions")?;
    let fullest_log = &tour.logs[fullest as usize];
    report::note(&format!(
        "Five keys are too few to spread evenly by hashing: murmur2 leaves {} without a single \
         order, and Kafka's producer does the same with these keys. Each partition is a \
         directory of segment files in Kafka's format; {}'s first segment, \
         {TOPIC}-{fullest}/00000000000000000000.log, holds {} one-record batches in {} bytes; \
         its sparse .index and .timeindex (an entry per 4 KiB of batches) are still empty at \
         this size.",
        if empty.is_empty() {
            "no partition".to_owned()
        } else {
            empty.join(" and ")
        },
        p(fullest),
        fullest_log.next_offset(),
        fullest_log.size_bytes(),
    ));
    retry(tour)
}

/// The last batch is sent again, as a producer does when the
/// acknowledgement is lost: the log answers with the original offsets.
fn retry(tour: &mut Tour) -> Res {
    let (&partition, (batch, order, first)) = tour
        .last_batch
        .iter()
        .max_by_key(|(_, (_, order, _))| order.id.clone())
        .ok_or("nothing was sent")?;
    let (batch, order, first) = (batch.clone(), order.clone(), *first);
    let log = &mut tour.logs[partition as usize];
    let (end, bytes) = (log.next_offset(), log.size_bytes());
    let retried = log.append(batch.clone(), wall(3_000))?;
    check("the retry is a duplicate", retried.duplicate)?;
    check_eq(
        "the retry's offset",
        &retried.base_offset,
        &first.base_offset,
    )?;
    check_eq("log end after the retry", &log.next_offset(), &end)?;
    check_eq("log bytes after the retry", &log.size_bytes(), &bytes)?;

    // The same retry without enable.idempotence, on a scratch log in memory.
    let (mut plain, _) = Log::open(MemDir::new(), LogConfig::default())?;
    let unstamped = one_record(None, &order, wall(2_900))?;
    let plain_first = plain.append(unstamped.clone(), wall(2_900))?;
    let plain_retry = plain.append(unstamped, wall(3_000))?;
    check("a plain retry is written again", !plain_retry.duplicate)?;

    let header = batch.header();
    report::note(&format!(
        "The acknowledgement of {} is lost, so the producer sends the same batch again \
         (producer {}, epoch {}, sequence {}). The partition remembers each producer's last five \
         batches and answers with the original offset, writing nothing:",
        order.id, header.producer_id, header.producer_epoch, header.base_sequence
    ));
    let mut table = Table::new(&["producer", "send", "retry", "copies in the log"]).numeric(&[3]);
    table.row([
        format!("idempotent (id {})", header.producer_id),
        format!("{TOPIC} [{partition}] @ {}", first.base_offset),
        format!("duplicate of @ {}: not written", retried.base_offset),
        "1".to_owned(),
    ]);
    table.row([
        "plain (no producer id)".to_owned(),
        format!("scratch log @ {}", plain_first.base_offset),
        format!("written again @ {}", plain_retry.base_offset),
        (plain.next_offset() - plain_first.base_offset).to_string(),
    ]);
    table.print();
    report::note(&format!(
        "{TOPIC} [{partition}] still ends at offset {end}, {bytes} bytes, after the retry. \
         Without a producer id the log cannot tell a retry from a new order, and keeps both."
    ));
    report::takeaway("Keys pin each user to a partition; producer sequences make a retry a no-op.");
    Ok(())
}

// --- The consumer group --------------------------------------------------------------

/// A consumer of the group, as the driver sees it.
struct Consumer {
    name: String,
    id: Option<MemberId>,
    /// The generation its last join was answered with; `None` while the
    /// join waits for the rebalance.
    generation: Option<u32>,
    partitions: Vec<u32>,
}

/// The seeds' consumer group around a [`GroupCoordinator`]: the driver
/// sends each consumer's requests, drains the coordinator's events, and
/// logs every request and answer.
struct Group {
    coordinator: GroupCoordinator,
    consumers: Vec<Consumer>,
    /// The story's clock, in milliseconds; every request takes 100 ms.
    now: u64,
    trace: Table,
}

impl Group {
    fn new(now: u64) -> Res<Self> {
        let config = GroupConfig {
            assignor: AssignorKind::Range,
            ..GroupConfig::default()
        };
        let topics = BTreeMap::from([(TOPIC.to_owned(), PARTITIONS)]);
        Ok(Group {
            coordinator: GroupCoordinator::new(config, topics)?,
            consumers: Vec::new(),
            now,
            trace: Table::new(&["time", "consumer", "request", "answer"]),
        })
    }

    fn tick(&mut self) -> u64 {
        self.now += 100;
        self.now
    }

    fn log(&mut self, consumer: usize, request: &str, answer: &str) {
        let name = self.consumers[consumer].name.clone();
        self.trace
            .row([at(self.now), name, request.to_owned(), answer.to_owned()]);
    }

    /// A new consumer `consumer-<n>` sends its first JoinGroup.
    fn add(&mut self) -> Res<usize> {
        let n = self.consumers.len();
        self.consumers.push(Consumer {
            name: format!("consumer-{}", n + 1),
            id: None,
            generation: None,
            partitions: Vec::new(),
        });
        self.join(n)?;
        Ok(n)
    }

    /// A JoinGroup from `consumer` (with its member id once it has one).
    fn join(&mut self, consumer: usize) -> Res {
        let now = self.tick();
        let c = &self.consumers[consumer];
        let first = c.id.is_none();
        let response = self.coordinator.handle_join(
            c.id.as_ref(),
            &c.name,
            Subscription::new([TOPIC]),
            now,
        )?;
        let mut answer = if first {
            format!("id {}; ", response.member_id)
        } else {
            String::new()
        };
        answer += &match response.generation {
            Some(g) => format!("generation {g}"),
            None => "waits: rebalancing".to_owned(),
        };
        let c = &mut self.consumers[consumer];
        c.id = Some(response.member_id);
        c.generation = response.generation;
        // An eager member gives up every partition when it rejoins.
        c.partitions.clear();
        self.log(consumer, "JoinGroup", &answer);
        self.drain();
        Ok(())
    }

    /// Answers the joins that waited for a completed rebalance.
    fn drain(&mut self) {
        while let Some(event) = self.coordinator.poll_event() {
            let GroupEvent::RebalanceCompleted {
                generation,
                assignment,
            } = event
            else {
                continue;
            };
            for i in 0..self.consumers.len() {
                let c = &self.consumers[i];
                let waiting = c.generation.is_none()
                    && c.id
                        .as_ref()
                        .is_some_and(|id| assignment.contains_member(id));
                if waiting {
                    self.consumers[i].generation = Some(generation);
                    self.log(
                        i,
                        "(its JoinGroup answered)",
                        &format!("generation {generation}"),
                    );
                }
            }
        }
    }

    /// A Heartbeat; `true` when the answer is "rejoin".
    fn heartbeat(&mut self, consumer: usize) -> Res<bool> {
        let now = self.tick();
        let (id, generation) = self.member(consumer)?;
        let request = format!("Heartbeat (gen {generation})");
        match self.coordinator.handle_heartbeat(&id, generation, now) {
            Ok(()) => {
                self.log(consumer, &request, "ok");
                Ok(false)
            }
            Err(HeartbeatError::RebalanceInProgress) => {
                self.log(consumer, &request, "REBALANCE_IN_PROGRESS: rejoin");
                Ok(true)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A SyncGroup: the consumer fetches its partitions.
    fn sync(&mut self, consumer: usize) -> Res {
        let now = self.tick();
        let (id, generation) = self.member(consumer)?;
        let response = self.coordinator.handle_sync(&id, generation, now)?;
        let partitions: Vec<u32> = response.assignment.iter().map(|tp| tp.partition).collect();
        let answer = if partitions.is_empty() {
            "no partitions".to_owned()
        } else {
            partitions
                .iter()
                .map(|&n| p(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.consumers[consumer].partitions = partitions;
        self.log(consumer, &format!("SyncGroup (gen {generation})"), &answer);
        self.drain();
        Ok(())
    }

    fn member(&self, consumer: usize) -> Res<(MemberId, u32)> {
        let c = &self.consumers[consumer];
        let id = c.id.clone().ok_or("the consumer never joined")?;
        let generation = c.generation.ok_or("the consumer's join is unanswered")?;
        Ok((id, generation))
    }

    /// Drives a rebalance to the end: the members that have not rejoined
    /// learn of it from a heartbeat and rejoin; then every member syncs.
    fn settle(&mut self) -> Res {
        for i in 0..self.consumers.len() {
            if self.coordinator.state() == GroupState::PreparingRebalance
                && self.consumers[i].generation.is_some()
                && self.heartbeat(i)?
            {
                self.join(i)?;
            }
        }
        for i in 0..self.consumers.len() {
            self.sync(i)?;
        }
        check_eq(
            "the group's state",
            &self.coordinator.state(),
            &GroupState::Stable,
        )
    }

    /// Kafka's checks on an OffsetCommit (`GroupCoordinator.handleCommitOffsets`):
    /// only a current member, of the current generation, outside the sync
    /// phase may commit. `Err` carries Kafka's error name.
    fn may_commit(&self, consumer: usize, generation: u32) -> Result<(), String> {
        let Some(id) = self.consumers[consumer].id.as_ref() else {
            return Err("UNKNOWN_MEMBER_ID".to_owned());
        };
        if !self.coordinator.contains_member(id) {
            return Err("UNKNOWN_MEMBER_ID".to_owned());
        }
        let current = self.coordinator.generation();
        if generation != current {
            return Err(format!("ILLEGAL_GENERATION (now {current})"));
        }
        if self.coordinator.state() == GroupState::CompletingRebalance {
            return Err("REBALANCE_IN_PROGRESS".to_owned());
        }
        Ok(())
    }

    /// Each consumer's partitions, by name.
    fn shares(&self) -> BTreeMap<String, Vec<u32>> {
        self.consumers
            .iter()
            .map(|c| (c.name.clone(), c.partitions.clone()))
            .collect()
    }

    fn print_trace(&mut self) {
        let trace = std::mem::replace(
            &mut self.trace,
            Table::new(&["time", "consumer", "request", "answer"]),
        );
        trace.print();
    }
}

/// `P0, P1` or `(none)`.
fn partition_list(partitions: &[u32]) -> String {
    if partitions.is_empty() {
        "(none)".to_owned()
    } else {
        partitions
            .iter()
            .map(|&n| p(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// --- 2. Consuming -------------------------------------------------------------------

fn consume(tour: &mut Tour) -> Res<Group> {
    report::section("2. The consumer group: two consumers, range assignment, manual commits");
    report::note(&format!(
        "Two consumers subscribe to {TOPIC} in group {GROUP}. A sans-IO GroupCoordinator runs \
         the group: the driver below hands it each JoinGroup, SyncGroup and Heartbeat with the \
         time, and drains its events (a waiting join is answered when the rebalance completes). \
         It runs Kafka's range assignor, the consumer's default, server-side as in KIP-848:"
    ));
    let mut group = Group::new(10_000)?;
    group.add()?;
    group.sync(0)?;
    group.add()?;
    group.settle()?;
    group.print_trace();
    let generation = group.coordinator.generation();
    check_eq(
        "the seeds' diagram",
        &group.shares(),
        &BTreeMap::from([
            ("consumer-1".to_owned(), vec![0, 1]),
            ("consumer-2".to_owned(), vec![2, 3]),
        ]),
    )?;
    report::note(&format!(
        "Generation {generation} is the seeds' diagram: Consumer 1: P0, P1 / Consumer 2: P2, P3. \
         Each consumer now reads its partitions from the committed offset (none yet: from 0, \
         auto.offset.reset = earliest), processes each order, and commits the offset after it \
         (enable.auto.commit = false, as in the seeds). A commit is one record batch in the \
         offset store, a compacted log of Kafka's __consumer_offsets records, fsynced before it \
         is acknowledged."
    ));

    let mut table = Table::new(&["consumer", "record", "processing order", "commit"]);
    let mut now = 13_000;
    let last_consumer = group.consumers.len() - 1;
    for consumer in 0..group.consumers.len() {
        let name = group.consumers[consumer].name.clone();
        let partitions = group.consumers[consumer].partitions.clone();
        let mut records = Vec::new();
        for &partition in &partitions {
            for (offset, order) in tour.fetch(partition, tour.position(partition))? {
                records.push((partition, offset, order));
            }
        }
        let count = records.len();
        for (k, (partition, offset, order)) in records.into_iter().enumerate() {
            now += 100;
            let processing = format!(
                "Processing order: {}, amount: {} ({})",
                order.id, order.amount, order.user
            );
            // The last commit of the last consumer is still on its way
            // when the group changes (section 3).
            let commit = if consumer == last_consumer && k + 1 == count {
                tour.in_flight = Some(InFlight {
                    consumer,
                    generation,
                    partition,
                    offset: offset + 1,
                    order: order.id.clone(),
                });
                format!("{} in flight (gen {generation})", offset + 1)
            } else {
                group
                    .may_commit(consumer, generation)
                    .map_err(|e| format!("commit refused: {e}"))?;
                tour.store
                    .commit_offsets(GROUP, &[(tp(partition), offset + 1)], wall(now))?;
                (offset + 1).to_string()
            };
            table.row([
                name.clone(),
                format!("{TOPIC} [{partition}] @ {offset}"),
                processing,
                commit,
            ]);
            tour.processed.push(Processed {
                consumer: name.clone(),
                partition,
                order,
                after_restart: false,
            });
        }
    }
    table.print();
    let in_flight = tour.in_flight.clone().ok_or("no commit in flight")?;
    check_eq(
        "orders processed",
        &tour.processed.len(),
        &(FIRST_ORDERS as usize),
    )?;
    report::note(&format!(
        "Every order was processed once, and every offset committed but one: {}'s commit of \
         {TOPIC} [{}] @ {} (after {}) is still on its way (a slow network, a long pause) when \
         the group changes.",
        group.consumers[in_flight.consumer].name,
        in_flight.partition,
        in_flight.offset,
        in_flight.order
    ));
    report::takeaway(
        "One reader per partition, committing after processing: work can repeat, never skip.",
    );
    Ok(group)
}

// --- 3. The group grows --------------------------------------------------------------

fn grow(tour: &mut Tour, group: &mut Group) -> Res {
    report::section("3. Five consumers, four partitions: one sits idle");
    report::note(
        "Three more consumers join. Each join starts a rebalance; the two members learn of it \
         from their next heartbeat and rejoin (eager protocol: giving up their partitions \
         first), and the range assignor splits four partitions among five members:",
    );
    group.now = 20_000;
    for _ in 0..3 {
        group.add()?;
    }
    group.settle()?;
    let generation = group.coordinator.generation();

    // The commit that was in flight arrives, stamped with the old generation.
    let in_flight = tour.in_flight.take().ok_or("no commit in flight")?;
    group.tick();
    let refused = group.may_commit(in_flight.consumer, in_flight.generation);
    let answer = match &refused {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("{error}: refused"),
    };
    group.log(
        in_flight.consumer,
        &format!(
            "OffsetCommit (gen {}, {} -> {})",
            in_flight.generation,
            p(in_flight.partition),
            in_flight.offset
        ),
        &answer,
    );
    check(
        "a commit from an old generation is refused",
        refused.is_err(),
    )?;
    group.print_trace();

    let mut table = Table::new(&[
        "consumer",
        "member id",
        "partitions",
        "starts at (committed)",
        "log end",
        "records to deliver",
    ])
    .numeric(&[3, 4, 5]);
    let mut idle = Vec::new();
    for c in &group.consumers {
        let id = c.id.as_ref().ok_or("a member without id")?;
        if c.partitions.is_empty() {
            idle.push(c.name.clone());
            table.row([
                c.name.clone(),
                id.to_string(),
                "(none): idle".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "0".to_owned(),
            ]);
            continue;
        }
        let starts: Vec<u64> = c.partitions.iter().map(|&n| tour.position(n)).collect();
        let ends: Vec<u64> = c
            .partitions
            .iter()
            .map(|&n| tour.logs[n as usize].next_offset())
            .collect();
        let backlog: u64 = ends.iter().zip(&starts).map(|(e, s)| e - s).sum();
        let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        table.row([
            c.name.clone(),
            id.to_string(),
            partition_list(&c.partitions),
            join(&starts),
            join(&ends),
            backlog.to_string(),
        ]);
    }
    table.print();
    check_eq("idle consumers", &idle.len(), &1)?;
    let owner = group
        .consumers
        .iter()
        .find(|c| c.partitions.contains(&in_flight.partition))
        .ok_or("nobody owns the partition")?;
    report::note(&format!(
        "Quiz Q3 of the seeds: with more consumers than partitions, the extra consumer ({}) \
         gets no partition and processes nothing; to scale further, add partitions first.{} \
         Generation {generation} gave {} to {}, which starts at the committed offset {}: {} will be delivered again, \
         because {}'s commit came too late. Kafka refuses such a commit the same way \
         (CommitFailedException: the group has already rebalanced).",
        idle.join(", "),
        starved_note(group, tour),
        p(in_flight.partition),
        owner.name,
        in_flight.offset - 1,
        in_flight.order,
        group.consumers[in_flight.consumer].name,
    ));
    report::takeaway("A group's parallelism is capped by its partitions; offsets move with them.");
    Ok(())
}

/// ` (Here consumer-2 and consumer-3 own partitions but no orders...)`:
/// the members whose partitions are all empty, if any.
fn starved_note(group: &Group, tour: &Tour) -> String {
    let starved: Vec<&str> = group
        .consumers
        .iter()
        .filter(|c| {
            !c.partitions.is_empty()
                && c.partitions
                    .iter()
                    .all(|&n| tour.logs[n as usize].next_offset() == 0)
        })
        .map(|c| c.name.as_str())
        .collect();
    let skew = "no orders, the key skew of section 1.)";
    match starved.as_slice() {
        [] => String::new(),
        [one] => format!(" (Here {one} owns a partition but {skew}"),
        [init @ .., last] => format!(
            " (Here {} and {last} own partitions but {skew}",
            init.join(", ")
        ),
    }
}

// --- 4. Restart -----------------------------------------------------------------------

fn restart(tour: Tour, grown: &Group) -> Res {
    report::section("4. Restart: recovery, and every partition resumes at its committed offset");
    let Tour {
        workspace,
        logs,
        store,
        processed,
        last_batch,
        ..
    } = tour;
    let before = {
        let offsets = store.group_offsets(GROUP);
        (0..PARTITIONS)
            .map(|n| (n, offsets.get(&tp(n)).map_or(0, |c| c.offset)))
            .collect::<BTreeMap<_, _>>()
    };
    // Partitions 0 and 1 shut down cleanly; 2 and 3 are dropped as a killed
    // process leaves them (every batch was fsynced, but no clean-shutdown
    // checkpoint was written).
    for (n, log) in logs.into_iter().enumerate() {
        if n < 2 {
            log.close()?;
        } else {
            drop(log);
        }
    }
    store.close()?;
    report::note(
        "The whole application stops: P0 and P1 are closed cleanly, P2 and P3 are dropped \
         without a close, as a killed process leaves them, and the offset store is closed. On \
         restart each log is opened again: a clean shutdown lets the open trust the files; \
         otherwise every batch after the recovery point is checked (length, CRC-32C, records) \
         and a torn tail would be cut off. Producer state (ids, epochs, last sequences) is \
         restored from its snapshot or rebuilt from the batch headers:",
    );
    let mut logs = Vec::new();
    let mut table = Table::new(&[
        "partition",
        "clean shutdown",
        "segments validated",
        "bytes truncated",
        "next offset",
        "producers restored",
    ])
    .numeric(&[2, 3, 4, 5]);
    for n in 0..PARTITIONS {
        let (log, recovery) = Log::open(workspace.partition(n)?, topic_config())?;
        check_eq("bytes truncated", &recovery.truncated_bytes, &0)?;
        check_eq("clean shutdown", &recovery.clean_shutdown, &(n < 2))?;
        table.row([
            p(n),
            if recovery.clean_shutdown { "yes" } else { "no" }.to_owned(),
            recovery.validated_segments.to_string(),
            recovery.truncated_bytes.to_string(),
            recovery.next_offset.to_string(),
            log.producer_count().to_string(),
        ]);
        logs.push(log);
    }
    table.print();
    let (store, _) = OffsetStore::open(workspace.offsets()?)?;
    let mut tour = Tour {
        workspace,
        logs,
        store,
        producer: Producer::new(RESTARTED_PRODUCER_ID),
        last_batch: BTreeMap::new(),
        processed,
        in_flight: None,
    };
    check_eq(
        "committed offsets after the restart",
        &tour.committed(),
        &before,
    )?;

    // The old producer's retry still finds its batch after the restart.
    let (&partition, (batch, order, first)) = last_batch
        .iter()
        .max_by_key(|(_, (_, order, _))| order.id.clone())
        .ok_or("nothing was sent")?;
    let again = tour.logs[partition as usize].append(batch.clone(), wall(30_000))?;
    check("a retry after the restart is a duplicate", again.duplicate)?;
    check_eq("its offset", &again.base_offset, &first.base_offset)?;
    report::note(&format!(
        "The committed offsets read back from the offset store are the ones committed before \
         the stop, and one more retry of {}'s batch (producer {PRODUCER_ID}, sequence {}) is \
         still answered as a duplicate of offset {}. Then a restarted producer (id \
         {RESTARTED_PRODUCER_ID}) sends five more orders:",
        order.id,
        batch.header().base_sequence,
        first.base_offset
    ));
    report::out!();
    for i in FIRST_ORDERS..FIRST_ORDERS + LATER_ORDERS {
        let line = tour.send(i, 31_000 + 100 * u64::from(i - FIRST_ORDERS))?;
        report::quote(&line);
    }

    // The five consumers rejoin the restarted coordinator: its state is
    // soft, rebuilt from the joins, and the assignment comes out the same.
    let mut group = Group::new(40_000)?;
    for _ in 0..grown.consumers.len() {
        group.add()?;
    }
    group.settle()?;
    check_eq(
        "the assignment after the restart",
        &group.shares(),
        &grown.shares(),
    )?;
    let generation = group.coordinator.generation();
    report::note(&format!(
        "The five consumers join the restarted coordinator (generation {generation}, the same \
         assignment as before) and each fetches its partitions from the committed offset:"
    ));
    let mut table = Table::new(&["consumer", "record", "processing order", "commit"]);
    let mut first_read = BTreeMap::new();
    let mut now = 42_000;
    for consumer in 0..group.consumers.len() {
        let name = group.consumers[consumer].name.clone();
        for partition in group.consumers[consumer].partitions.clone() {
            for (offset, order) in tour.fetch(partition, tour.position(partition))? {
                now += 100;
                first_read.entry(partition).or_insert(offset);
                let again = tour.processed.iter().any(|done| done.order.id == order.id);
                group
                    .may_commit(consumer, generation)
                    .map_err(|e| format!("commit refused: {e}"))?;
                tour.store
                    .commit_offsets(GROUP, &[(tp(partition), offset + 1)], wall(now))?;
                table.row([
                    name.clone(),
                    format!("{TOPIC} [{partition}] @ {offset}"),
                    format!(
                        "Processing order: {}, amount: {} ({}){}",
                        order.id,
                        order.amount,
                        order.user,
                        if again { "  <- again" } else { "" }
                    ),
                    (offset + 1).to_string(),
                ]);
                tour.processed.push(Processed {
                    consumer: name.clone(),
                    partition,
                    order,
                    after_restart: true,
                });
            }
        }
    }
    table.print();

    let mut resume = Table::new(&[
        "partition",
        "owner",
        "committed before the stop",
        "first offset read",
        "delivered again",
    ])
    .numeric(&[2, 3]);
    for n in 0..PARTITIONS {
        let committed = before[&n];
        let first = first_read.get(&n).copied();
        check_eq(
            &format!("where {} resumes", p(n)),
            &first.unwrap_or(committed),
            &committed,
        )?;
        let owner = group
            .consumers
            .iter()
            .find(|c| c.partitions.contains(&n))
            .map_or("-".to_owned(), |c| c.name.clone());
        let redelivered: Vec<String> = tour
            .processed
            .iter()
            .filter(|done| done.after_restart && done.partition == n)
            .filter(|done| {
                tour.processed
                    .iter()
                    .any(|old| !old.after_restart && old.order.id == done.order.id)
            })
            .map(|done| done.order.id.clone())
            .collect();
        resume.row([
            p(n),
            owner,
            committed.to_string(),
            first.map_or("-".to_owned(), |f| f.to_string()),
            if redelivered.is_empty() {
                "-".to_owned()
            } else {
                redelivered.join(", ")
            },
        ]);
    }
    resume.print();

    // Every order at least once; exactly one of them twice; per user in order.
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for done in &tour.processed {
        *times.entry(done.order.id.as_str()).or_default() += 1;
    }
    check_eq(
        "orders processed at least once",
        &times.len(),
        &((FIRST_ORDERS + LATER_ORDERS) as usize),
    )?;
    let twice: Vec<&str> = times
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(&id, _)| id)
        .collect();
    check_eq("orders processed twice", &twice.len(), &1)?;
    check(
        "no order processed more than twice",
        times.values().all(|&n| n <= 2),
    )?;
    let mut by_user = Table::new(&["user", "partition", "orders as processed, in time order"]);
    for u in 0..USERS {
        let user = format!("user-{u}");
        let seen: Vec<&Processed> = tour
            .processed
            .iter()
            .filter(|done| done.order.user == user)
            .collect();
        check(
            &format!("{user}'s orders processed in order"),
            seen.windows(2).all(|w| w[0].order.id <= w[1].order.id),
        )?;
        let partitions: BTreeSet<u32> = seen.iter().map(|d| d.partition).collect();
        by_user.row([
            user,
            partitions
                .iter()
                .map(|&n| p(n))
                .collect::<Vec<_>>()
                .join(", "),
            seen.iter()
                .map(|d| d.order.id.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    by_user.print();
    let twice_by = |after_restart: bool| {
        tour.processed
            .iter()
            .find(|d| d.after_restart == after_restart && d.order.id == twice[0])
            .map(|d| d.consumer.clone())
            .ok_or("the order processed twice has no processing")
    };
    let (first_by, again_by) = (twice_by(false)?, twice_by(true)?);
    report::note(&format!(
        "Each partition resumed exactly at its committed offset. {} orders, {} processings: \
         every order once, except {}, processed by {} before the stop and again by {} after \
         it, because its commit never landed. That is at-least-once delivery: the \
         consumer commits after processing, so a crash or a rebalance between the two repeats \
         the order. Processing must be idempotent (or committed atomically with its result) to \
         make the effect exactly-once.",
        times.len(),
        tour.processed.len(),
        twice[0],
        first_by,
        again_by,
    ));
    tour.store.close()?;
    for log in std::mem::take(&mut tour.logs) {
        log.close()?;
    }
    report::takeaway("Logs and offsets survive on disk; each partition resumes at its commit.");
    Ok(())
}
