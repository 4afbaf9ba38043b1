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
//!
//! This file is the story: what each section does, checks and prints, in
//! reading order. The machinery it uses lives beside it: `topic.rs` (the
//! topic, the orders and the story's clock), `files.rs` (the directories and
//! the log configuration), `producer.rs` (the idempotent producer),
//! `tour.rs` (the logs, the offset store and what the sections share) and
//! `group.rs` (the consumer group's driver around the coordinator).

mod files;
mod group;
mod producer;
mod topic;
mod tour;

use std::collections::{BTreeMap, BTreeSet};

use dsys_log::{Log, LogConfig, MemDir, OffsetStore};

use crate::report::{self, Res, Table, check, check_eq};
use files::topic_config;
use group::{Group, partition_list};
use producer::{Producer, one_record};
use topic::{
    FIRST_ORDERS, GROUP, LATER_ORDERS, Order, PARTITIONS, PRODUCER_ID, RESTARTED_PRODUCER_ID,
    TOPIC, USERS, p, tp, wall,
};
use tour::{InFlight, Processed, Tour};

/// Runs the chapter.
pub(crate) fn run() -> Res {
    let mut tour = Tour::open()?;
    produce(&mut tour)?;
    let mut group = consume(&mut tour)?;
    grow(&mut tour, &mut group)?;
    restart(tour, &group)?;
    Ok(())
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
