//! Section 2's machinery: a coordinator and three participant shards on a
//! tiny network (a queue of messages delivered in order), each node's log a
//! `Vec` of records acknowledged as soon as they are appended, and virtual
//! time (`base + Duration`; nothing printed depends on it). Every delivery,
//! forced log write and decision goes into a trace that the chapter prints.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use dsys_txn::twopc::{
    Config, Coordinator, Message, Outcome, Output, Participant, ParticipantStatus, Record, TxId,
    Vote, VoteError,
};

use crate::report::Res;

/// Nodes are named.
pub(super) type Node = &'static str;
/// The coordinator.
pub(super) const COORDINATOR: Node = "coordinator";
/// The three shards of the order, sorted (a Prepare lists them in order).
pub(super) const SHARDS: [Node; 3] = ["inventory", "orders", "payments"];
/// How long a prepared shard waits for the decision before it asks.
pub(super) const ASK_AFTER: Duration = Duration::from_secs(2);

/// One row of the trace.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) from: Node,
    /// `-` for something a node does on its own.
    pub(super) to: Node,
    pub(super) what: String,
    pub(super) note: &'static str,
}

/// The coordinator, the shards, their logs and the network.
pub(super) struct Cluster {
    /// Virtual time: one real `Instant`, taken once, plus durations.
    now: Instant,
    /// `None` while crashed.
    coordinator: Option<Coordinator<Node>>,
    coordinator_log: Vec<Record<Node>>,
    participants: BTreeMap<Node, Participant<Node>>,
    logs: BTreeMap<Node, Vec<Record<Node>>>,
    net: VecDeque<(Node, Node, Message<Node>)>,
    /// The vote each shard's application gives when asked; absent: it does
    /// not answer (yet).
    votes: BTreeMap<Node, Vote>,
    /// Crash the coordinator right after its first Decision message leaves.
    crash_after_first_decision: bool,
    pub(super) trace: Vec<Line>,
    /// While muted, deliveries are counted instead of traced.
    muted: bool,
    pub(super) muted_messages: u64,
    /// Decisions reported, by node, in order.
    pub(super) decided: BTreeMap<Node, Vec<Outcome>>,
}

/// The shards' configuration: ask after [`ASK_AFTER`], then every second.
fn shard_config(ask_after: Duration) -> Config {
    let mut config = Config::default();
    config.participant_timeout = ask_after;
    config.retry_interval = Duration::from_secs(1);
    config
}

impl Cluster {
    /// A coordinator and the three shards; `slow` (if any) waits 30 s
    /// before giving up on its own, the others ask after [`ASK_AFTER`].
    pub(super) fn new(slow: Option<Node>) -> Res<Self> {
        let mut participants = BTreeMap::new();
        let mut logs = BTreeMap::new();
        for shard in SHARDS {
            let ask_after = if slow == Some(shard) {
                Duration::from_secs(30)
            } else {
                ASK_AFTER
            };
            participants.insert(shard, Participant::new(shard_config(ask_after), shard)?);
            logs.insert(shard, Vec::new());
        }
        Ok(Self {
            now: Instant::now(),
            coordinator: Some(Coordinator::new(Config::default(), COORDINATOR)?),
            coordinator_log: Vec::new(),
            participants,
            logs,
            net: VecDeque::new(),
            votes: BTreeMap::new(),
            crash_after_first_decision: false,
            trace: Vec::new(),
            muted: false,
            muted_messages: 0,
            decided: BTreeMap::new(),
        })
    }

    /// Every shard's application will vote `votes[shard]` when asked on
    /// `tx`; with `join`, each starts work on it first (so that it may abort
    /// it on its own until it votes).
    pub(super) fn work(&mut self, tx: TxId, votes: &[(Node, Vote)], join: bool) -> Res {
        for (shard, p) in &mut self.participants {
            if join {
                p.join(COORDINATOR, tx, self.now)?;
            }
            if let Some((_, vote)) = votes.iter().find(|(s, _)| s == shard) {
                self.votes.insert(shard, *vote);
            }
        }
        Ok(())
    }

    /// The coordinator begins `tx` with the three shards.
    pub(super) fn begin(&mut self, tx: TxId) -> Res {
        let coordinator = self.coordinator.as_mut().ok_or("the coordinator is down")?;
        coordinator.begin(tx, SHARDS, self.now)?;
        self.drain()
    }

    /// The coordinator crashes: its memory is gone, its log stays.
    pub(super) fn crash_coordinator(&mut self) {
        self.coordinator = None;
        self.note(COORDINATOR, "CRASHES", "");
    }

    /// The coordinator will crash right after its first Decision leaves.
    pub(super) fn crash_coordinator_after_first_decision(&mut self) {
        self.crash_after_first_decision = true;
    }

    /// The coordinator restarts from its log.
    pub(super) fn restart_coordinator(&mut self) -> Res {
        let records = self.coordinator_log.clone();
        let what = if records.is_empty() {
            "RESTARTS: empty log"
        } else {
            "RESTARTS from its log"
        };
        self.coordinator = Some(Coordinator::recover(
            Config::default(),
            COORDINATOR,
            records,
            self.now,
        )?);
        self.note(COORDINATOR, what, "");
        self.drain()
    }

    /// `shard`'s application finally votes on `tx`: what the participant said.
    pub(super) fn late_vote(
        &mut self,
        shard: Node,
        tx: TxId,
        vote: Vote,
    ) -> Res<Result<(), VoteError>> {
        let p = self.participants.get_mut(shard).ok_or("no such shard")?;
        let result = p.vote(&COORDINATOR, tx, vote, self.now);
        self.drain()?;
        Ok(result)
    }

    /// Where `tx` stands at `shard`.
    pub(super) fn status(&self, shard: Node, tx: TxId) -> Option<ParticipantStatus> {
        self.participants
            .get(shard)
            .and_then(|p| p.status(&COORDINATOR, tx))
    }

    /// The coordinator's log.
    pub(super) fn coordinator_log(&self) -> &[Record<Node>] {
        &self.coordinator_log
    }

    /// Transactions the coordinator holds (0 when it is down).
    pub(super) fn coordinator_holds(&self) -> usize {
        self.coordinator.as_ref().map_or(0, Coordinator::len)
    }

    /// Stops (or starts) tracing each delivery.
    pub(super) fn mute(&mut self, muted: bool) {
        self.muted = muted;
    }

    fn note(&mut self, node: Node, what: &str, note: &'static str) {
        self.trace.push(Line {
            from: node,
            to: "-",
            what: what.to_owned(),
            note,
        });
    }

    /// Handles every node's outputs: logs written (and acknowledged at once),
    /// votes given, messages queued, decisions noted.
    fn drain(&mut self) -> Res {
        loop {
            let mut any = false;
            while let Some(out) = self.coordinator.as_mut().and_then(Coordinator::poll_output) {
                any = true;
                match out {
                    Output::Send { to, message } => {
                        let decision = matches!(message, Message::Decision { .. });
                        self.net.push_back((COORDINATOR, to, message));
                        if decision && self.crash_after_first_decision {
                            self.crash_after_first_decision = false;
                            self.crash_coordinator();
                        }
                    }
                    Output::Persist { id, record, force } => {
                        self.log_line(COORDINATOR, &record, force);
                        self.coordinator_log.push(record);
                        if let Some(c) = self.coordinator.as_mut() {
                            c.on_persisted(id);
                        }
                    }
                    Output::Decided { outcome, .. } => self.decide(COORDINATOR, outcome),
                    _ => {}
                }
            }
            for shard in SHARDS {
                let p = self.participants.get_mut(shard).ok_or("no such shard")?;
                let mut outputs = Vec::new();
                while let Some(out) = p.poll_output() {
                    outputs.push(out);
                }
                for out in outputs {
                    any = true;
                    match out {
                        Output::Send { to, message } => self.net.push_back((shard, to, message)),
                        Output::Persist { id, record, force } => {
                            self.log_line(shard, &record, force);
                            self.logs.get_mut(shard).ok_or("no log")?.push(record);
                            self.participants
                                .get_mut(shard)
                                .ok_or("no such shard")?
                                .on_persisted(id);
                        }
                        Output::VoteRequested { coordinator, tx } => {
                            if let Some(vote) = self.votes.get(shard).copied() {
                                self.participants
                                    .get_mut(shard)
                                    .ok_or("no such shard")?
                                    .vote(&coordinator, tx, vote, self.now)?;
                            } else if !self.muted {
                                self.note(shard, "asked to vote: still busy", "");
                            }
                        }
                        Output::Decided { outcome, .. } => self.decide(shard, outcome),
                        _ => {}
                    }
                }
            }
            if !any {
                return Ok(());
            }
        }
    }

    fn log_line(&mut self, node: Node, record: &Record<Node>, force: bool) {
        let name = match record {
            Record::Commit { .. } => "Commit",
            Record::End { .. } => "End",
            Record::Prepared { .. } => "Prepared",
            Record::Committed { .. } => "Committed",
            Record::Aborted { .. } => "Aborted",
            _ => "?",
        };
        let how = if force { "forced" } else { "lazy" };
        if !self.muted {
            self.note(node, &format!("logs {name} ({how})"), "");
        }
    }

    fn decide(&mut self, node: Node, outcome: Outcome) {
        self.decided.entry(node).or_default().push(outcome);
        if !self.muted {
            self.note(node, &format!("DECIDES {outcome:?}"), "");
        }
    }

    /// Delivers messages until none is left.
    fn settle(&mut self) -> Res {
        self.drain()?;
        while let Some((from, to, message)) = self.net.pop_front() {
            let what = describe(&message);
            let down = to == COORDINATOR && self.coordinator.is_none();
            if self.muted {
                self.muted_messages += 1;
            } else {
                self.trace.push(Line {
                    from,
                    to,
                    what,
                    note: if down { "lost: coordinator down" } else { "" },
                });
            }
            if to == COORDINATOR {
                if let Some(c) = self.coordinator.as_mut() {
                    c.handle_message(from, message, self.now);
                }
            } else {
                let p = self.participants.get_mut(to).ok_or("no such node")?;
                p.handle_message(from, message, self.now);
            }
            self.drain()?;
        }
        Ok(())
    }

    /// Delivers everything, then lets virtual time run for `d`, firing every
    /// timer that comes due (and delivering what it sends).
    pub(super) fn run_for(&mut self, d: Duration) -> Res {
        let until = self.now + d;
        self.settle()?;
        loop {
            let next = self
                .participants
                .values()
                .filter_map(Participant::poll_timeout)
                .chain(
                    self.coordinator
                        .as_ref()
                        .and_then(Coordinator::poll_timeout),
                )
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    if let Some(c) = self.coordinator.as_mut() {
                        c.handle_timeout(self.now);
                    }
                    for p in self.participants.values_mut() {
                        p.handle_timeout(self.now);
                    }
                    self.settle()?;
                }
                _ => break,
            }
        }
        self.now = until;
        Ok(())
    }
}

/// A message in a few words.
fn describe(message: &Message<Node>) -> String {
    match message {
        Message::Prepare { tx, .. } => format!("Prepare {tx}"),
        Message::CommitOnePhase { tx } => format!("CommitOnePhase {tx}"),
        Message::Vote { vote, .. } => format!("Vote {vote:?}"),
        Message::Decision { outcome, .. } => format!("Decision {outcome:?}"),
        Message::Ack { .. } => "Ack".to_owned(),
        Message::DecisionRequest { .. } => "DecisionRequest".to_owned(),
        Message::DecisionReply { answer, .. } => format!("DecisionReply {answer:?}"),
        other => format!("{other:?}"),
    }
}
