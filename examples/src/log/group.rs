//! The consumer group's driver: each consumer's JoinGroup, SyncGroup and
//! Heartbeat requests to the sans-IO `GroupCoordinator`, its events drained
//! after every request, and a trace of requests and answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dsys_log::group::{
    AssignorKind, GroupConfig, GroupCoordinator, GroupEvent, GroupState, HeartbeatError, MemberId,
    Subscription,
};

use super::topic::{PARTITIONS, TOPIC, at, p};
use crate::report::{Res, Table, check_eq};

/// A consumer of the group, as the driver sees it.
pub(super) struct Consumer {
    pub(super) name: String,
    pub(super) id: Option<MemberId>,
    /// The generation its last join was answered with; `None` while the
    /// join waits for the rebalance.
    pub(super) generation: Option<u32>,
    pub(super) partitions: Vec<u32>,
}

/// The seeds' consumer group around a [`GroupCoordinator`]: the driver
/// sends each consumer's requests, drains the coordinator's events, and
/// logs every request and answer.
pub(super) struct Group {
    pub(super) coordinator: GroupCoordinator,
    pub(super) consumers: Vec<Consumer>,
    /// The story's clock, in milliseconds; every request takes 100 ms.
    pub(super) now: u64,
    /// The coordinator's monotonic clock: the instant of the story's `now`
    /// is `origin + now ms` (the coordinator measures elapsed time with
    /// `Instant`s; the log's wall-clock `Timestamp`s are the story's `now`).
    pub(super) origin: Instant,
    pub(super) trace: Table,
}

impl Group {
    pub(super) fn new(now: u64) -> Res<Self> {
        let mut config = GroupConfig::default();
        config.assignor = AssignorKind::Range;
        let topics = BTreeMap::from([(TOPIC.to_owned(), PARTITIONS)]);
        Ok(Group {
            coordinator: GroupCoordinator::new(config, topics)?,
            consumers: Vec::new(),
            now,
            origin: Instant::now(),
            trace: Table::new(&["time", "consumer", "request", "answer"]),
        })
    }

    /// Advances the story's clock by one request and returns the instant
    /// to hand the coordinator.
    pub(super) fn tick(&mut self) -> Instant {
        self.now += 100;
        self.origin + Duration::from_millis(self.now)
    }

    pub(super) fn log(&mut self, consumer: usize, request: &str, answer: &str) {
        let name = self.consumers[consumer].name.clone();
        self.trace
            .row([at(self.now), name, request.to_owned(), answer.to_owned()]);
    }

    /// A new consumer `consumer-<n>` sends its first JoinGroup.
    pub(super) fn add(&mut self) -> Res<usize> {
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
    pub(super) fn join(&mut self, consumer: usize) -> Res {
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
    pub(super) fn drain(&mut self) {
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
    pub(super) fn heartbeat(&mut self, consumer: usize) -> Res<bool> {
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
    pub(super) fn sync(&mut self, consumer: usize) -> Res {
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

    pub(super) fn member(&self, consumer: usize) -> Res<(MemberId, u32)> {
        let c = &self.consumers[consumer];
        let id = c.id.clone().ok_or("the consumer never joined")?;
        let generation = c.generation.ok_or("the consumer's join is unanswered")?;
        Ok((id, generation))
    }

    /// Drives a rebalance to the end: the members that have not rejoined
    /// learn of it from a heartbeat and rejoin; then every member syncs.
    pub(super) fn settle(&mut self) -> Res {
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
    pub(super) fn may_commit(&self, consumer: usize, generation: u32) -> Result<(), String> {
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
    pub(super) fn shares(&self) -> BTreeMap<String, Vec<u32>> {
        self.consumers
            .iter()
            .map(|c| (c.name.clone(), c.partitions.clone()))
            .collect()
    }

    pub(super) fn print_trace(&mut self) {
        let trace = std::mem::replace(
            &mut self.trace,
            Table::new(&["time", "consumer", "request", "answer"]),
        );
        trace.print();
    }
}

/// `P0, P1` or `(none)`.
pub(super) fn partition_list(partitions: &[u32]) -> String {
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
