//! Deterministic simulation of two-phase commit (DESIGN.md, testing layer
//! 3): one coordinator and 2..=5 participants over a seeded in-process
//! network that loses, duplicates, reorders, delays and replays messages,
//! with crash-restarts of any node at any point (between any two drained
//! outputs, so before and after every log write and every send), and disks
//! that keep or lose any suffix of the records not yet acknowledged.
//!
//! Safety is checked at every output and every record that becomes
//! durable: atomicity (no tx both committed and aborted anywhere), Commit
//! messages and Committed decisions only after their record is durable, a
//! Yes vote only after its Prepared record is durable, an Abort answer to a
//! DecisionRequest only when the abort is final, one Decided per
//! transaction per incarnation. Liveness: faults stop, everybody restarts,
//! and the run reaches quiescence with every prepared participant decided
//! and the coordinator empty.
//!
//! Scenario `coordinator_dies_forever`: the coordinator dies for good (in
//! the middle of draining its outputs, so after some Prepares or Decisions
//! left); participants must finish by cooperative termination whenever one
//! of them knows the outcome or has not voted, and must stay blocked when
//! all are prepared and none knows (2PC's blocking problem).
//!
//! Seeds: `DSYS_TXN_SIM_SEEDS` (default 1000 per scenario); a single seed
//! replays with `DSYS_TXN_SIM_SEED=<seed>`. A failure prints its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dsys_txn::twopc::{
    Answer, Config, Coordinator, Message, Outcome, Output, Participant, ParticipantStatus,
    PersistId, Record, TxId, Vote,
};

type Id = u64;
const COORD: Id = 0;

fn config() -> Config {
    let mut c = Config::default();
    c.vote_timeout = Duration::from_millis(5000);
    c.participant_timeout = Duration::from_millis(3000);
    c.retry_interval = Duration::from_millis(200);
    c.decision_retention = Duration::from_secs(600);
    c
}

enum Machine {
    C(Coordinator<Id>),
    P(Participant<Id>),
}

impl Machine {
    fn handle_message(&mut self, from: Id, m: Message<Id>, now: Instant) {
        match self {
            Machine::C(c) => c.handle_message(from, m, now),
            Machine::P(p) => p.handle_message(from, m, now),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::C(c) => c.handle_timeout(now),
            Machine::P(p) => p.handle_timeout(now),
        }
    }
    fn on_persisted(&mut self, id: PersistId) {
        match self {
            Machine::C(c) => c.on_persisted(id),
            Machine::P(p) => p.on_persisted(id),
        }
    }
    fn poll_output(&mut self) -> Option<Output<Id>> {
        match self {
            Machine::C(c) => c.poll_output(),
            Machine::P(p) => p.poll_output(),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::C(c) => c.poll_timeout(),
            Machine::P(p) => p.poll_timeout(),
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            Machine::C(c) => c.is_empty(),
            Machine::P(p) => p.is_empty(),
        }
    }
    fn part(&self) -> &Participant<Id> {
        match self {
            Machine::P(p) => p,
            Machine::C(_) => panic!("not a participant"),
        }
    }
}

struct Node {
    m: Option<Machine>,
    incarnation: u64,
    /// Encoded records that survived (acknowledged, or kept by a crash).
    durable: Vec<Vec<u8>>,
    pending: Vec<(PersistId, Record<Id>)>,
    down_until: u64,
    dead_forever: bool,
}

#[derive(Clone)]
struct Packet {
    from: Id,
    to: Id,
    bytes: Vec<u8>,
    sent_at: Instant,
}

struct Plan {
    participants: Vec<Id>,
    votes: BTreeMap<Id, Vote>,
}

#[derive(Clone, Copy)]
struct Faults {
    loss: f64,
    dup: f64,
    replay: f64,
    crash: f64,
    crash_mid_drain: f64,
}

const NO_FAULTS: Faults = Faults {
    loss: 0.0,
    dup: 0.0,
    replay: 0.0,
    crash: 0.0,
    crash_mid_drain: 0.0,
};

struct Sim {
    rng: fastrand::Rng,
    config: Config,
    start: Instant,
    now: Instant,
    step: u64,
    nodes: Vec<Node>,
    net: Vec<Packet>,
    history: Vec<Packet>,
    app_votes: Vec<(Id, TxId)>,
    plans: BTreeMap<TxId, Plan>,
    next_tx: u64,
    faults: Faults,
    /// Every decision anyone announced or made durable, per tx.
    outcomes: BTreeMap<TxId, BTreeSet<(Id, Outcome)>>,
    /// Txs whose abort is final (the coordinator decided or presumed it,
    /// or a participant's Aborted record is durable).
    abort_final: BTreeSet<TxId>,
    /// The app must vote No: it rolled back, or lost the work in a crash.
    app_no: BTreeSet<(Id, TxId)>,
    /// The app applied a commit: asked again, it votes ReadOnly.
    app_committed: BTreeSet<(Id, TxId)>,
    /// The app voted ReadOnly.
    app_read_only: BTreeSet<(Id, TxId)>,
    announced: BTreeSet<(Id, u64, TxId)>,
    /// Scenario 2: the coordinator is to die at its next drain.
    coordinator_doomed: bool,
    /// Scenario 2, after the death: the apps vote no more.
    apps_frozen: bool,
    /// Apps that forget their rollbacks in a crash and vote as planned
    /// again. The protocol must stay atomic for them too, as long as only
    /// final aborts (durable, or decided by someone else) count.
    amnesiac: bool,
    /// How often a participant's app votes No.
    no_rate: f64,
    /// The message being handled, to tell an abort that was final (told by
    /// the coordinator or a peer) from a participant's own.
    handling: Option<Message<Id>>,
}

impl Sim {
    fn new(seed: u64, participants: usize) -> Self {
        let start = Instant::now();
        // Timeouts vary per seed: short participant timeouts against long
        // vote timeouts make in-doubt participants ask while the
        // coordinator still collects votes.
        let mut config = config();
        let mut r = fastrand::Rng::with_seed(seed ^ 0xc0f);
        config.vote_timeout = Duration::from_millis(r.u64(1000..=10_000));
        config.participant_timeout = Duration::from_millis(r.u64(300..=3000));
        config.retry_interval = Duration::from_millis(r.u64(50..=400));
        let mut nodes = Vec::new();
        for id in 0..=participants as Id {
            let m = if id == COORD {
                Machine::C(Coordinator::new(config.clone(), id).unwrap())
            } else {
                Machine::P(Participant::new(config.clone(), id).unwrap())
            };
            nodes.push(Node {
                m: Some(m),
                incarnation: 0,
                durable: Vec::new(),
                pending: Vec::new(),
                down_until: 0,
                dead_forever: false,
            });
        }
        Sim {
            rng: fastrand::Rng::with_seed(seed),
            config,
            start,
            now: start,
            step: 0,
            nodes,
            net: Vec::new(),
            history: Vec::new(),
            app_votes: Vec::new(),
            plans: BTreeMap::new(),
            next_tx: 1,
            faults: NO_FAULTS,
            outcomes: BTreeMap::new(),
            abort_final: BTreeSet::new(),
            app_no: BTreeSet::new(),
            app_committed: BTreeSet::new(),
            app_read_only: BTreeSet::new(),
            announced: BTreeSet::new(),
            coordinator_doomed: false,
            apps_frozen: false,
            amnesiac: false,
            no_rate: 0.06,
            handling: None,
        }
    }

    fn durable_records(&self, id: Id) -> impl Iterator<Item = Record<Id>> + '_ {
        self.nodes[id as usize]
            .durable
            .iter()
            .map(|b| Record::decode(b).expect("records we encoded decode"))
    }

    fn has_durable(&self, id: Id, pred: impl Fn(&Record<Id>) -> bool) -> bool {
        self.durable_records(id).any(|r| pred(&r))
    }

    fn is_one_phase(&self, tx: TxId) -> bool {
        self.plans[&tx].participants.len() == 1 && self.config.one_phase
    }

    fn note_outcome(&mut self, who: Id, tx: TxId, outcome: Outcome) {
        let set = self.outcomes.entry(tx).or_default();
        set.insert((who, outcome));
        let commit = set.iter().any(|(_, o)| *o == Outcome::Commit);
        let abort = set.iter().any(|(_, o)| *o == Outcome::Abort);
        assert!(!(commit && abort), "atomicity violated for {tx}: {set:?}");
    }

    fn make_durable(&mut self, id: Id, record: Record<Id>) {
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(Record::decode(&bytes).as_ref(), Ok(&record));
        self.nodes[id as usize].durable.push(bytes);
        match record {
            Record::Commit { tx, .. } => self.note_outcome(id, tx, Outcome::Commit),
            Record::Committed { tx, .. } => self.note_outcome(id, tx, Outcome::Commit),
            Record::Aborted { tx, .. }
                if self.is_one_phase(tx) && self.app_read_only.contains(&(id, tx)) =>
            {
                // The lone read-only participant forgot its vote in a crash,
                // a replayed CommitOnePhase asked again, and it aborted:
                // it changed nothing, and nobody else is there to mislead.
            }
            Record::Aborted { tx, .. } => {
                self.abort_final.insert(tx);
                self.note_outcome(id, tx, Outcome::Abort);
            }
            Record::End { .. } | Record::Prepared { .. } => {}
            _ => unreachable!(),
        }
    }

    fn alive(&self, id: Id) -> bool {
        self.nodes[id as usize].m.is_some()
    }

    /// Drains a node's outputs one by one; it may crash between any two.
    fn drain(&mut self, id: Id) {
        loop {
            let Some(m) = self.nodes[id as usize].m.as_mut() else {
                return;
            };
            let Some(out) = m.poll_output() else {
                return;
            };
            // The riskiest moment to crash: right after telling another
            // participant how a transaction ended.
            let answered = matches!(
                out,
                Output::Send {
                    message: Message::DecisionReply {
                        answer: Answer::Abort | Answer::Commit,
                        ..
                    },
                    ..
                }
            );
            self.output(id, out);
            if answered && self.faults.crash > 0.0 && self.rng.f64() < 0.1 {
                self.crash(id);
                return;
            }
            if id == COORD && self.coordinator_doomed && self.rng.f64() < 0.3 {
                self.die_forever();
                return;
            }
            if self.rng.f64() < self.faults.crash_mid_drain {
                self.crash(id);
                return;
            }
        }
    }

    fn output(&mut self, me: Id, out: Output<Id>) {
        let inc = self.nodes[me as usize].incarnation;
        if trace() {
            eprintln!("[{}] {me}#{inc} -> {out:?}", self.step);
        }
        match out {
            Output::Send { to, message } => {
                self.check_send(me, &message);
                let mut bytes = Vec::new();
                message.encode(&mut bytes);
                let p = Packet {
                    from: me,
                    to,
                    bytes,
                    sent_at: self.now,
                };
                self.history.push(p.clone());
                if self.rng.f64() < self.faults.loss {
                    return;
                }
                if self.rng.f64() < self.faults.dup {
                    self.net.push(p.clone());
                }
                self.net.push(p);
            }
            Output::Persist { id, record, .. } => {
                self.nodes[me as usize].pending.push((id, record));
            }
            Output::VoteRequested { coordinator, tx } => {
                assert_eq!(coordinator, COORD);
                assert_ne!(me, COORD);
                if !self.apps_frozen {
                    self.app_votes.push((me, tx));
                }
            }
            Output::Decided {
                coordinator,
                tx,
                outcome,
            } => {
                assert_eq!(coordinator, COORD);
                assert!(
                    self.announced.insert((me, inc, tx)),
                    "{me} announced {tx} twice in incarnation {inc}"
                );
                if outcome == Outcome::Commit {
                    self.app_committed.insert((me, tx));
                    if me == COORD {
                        let logged = self.has_durable(
                            COORD,
                            |r| matches!(r, Record::Commit { tx: t, .. } if *t == tx),
                        );
                        let any_yes = self.plans[&tx].participants.iter().any(|p| {
                            self.has_durable(
                                *p,
                                |r| matches!(r, Record::Prepared { tx: t, .. } if *t == tx),
                            )
                        });
                        assert!(
                            logged || !any_yes || self.is_one_phase(tx),
                            "coordinator announced commit of {tx} before its record was durable"
                        );
                    } else {
                        assert!(
                            self.has_durable(me, |r| {
                                matches!(r, Record::Committed { tx: t, .. } if *t == tx)
                            }),
                            "{me} announced commit of {tx} before Committed was durable"
                        );
                    }
                } else {
                    if me == COORD {
                        self.abort_final.insert(tx);
                    }
                    self.app_no.insert((me, tx));
                    let told = matches!(
                        self.handling,
                        Some(
                            Message::Decision { .. }
                                | Message::DecisionReply {
                                    answer: Answer::Abort,
                                    ..
                                }
                        )
                    );
                    if self.amnesiac && me != COORD && !told {
                        // Its own abort: not final, and an amnesiac app may
                        // vote Yes after a crash. A durable Aborted record
                        // counts when it is written.
                        return;
                    }
                    if self.app_read_only.contains(&(me, tx)) {
                        // A read-only voter forgot its vote in a crash and
                        // a replayed Prepare asked again: it changed nothing
                        // either way, and its abort is not final (it
                        // answers Unknown to other participants).
                        return;
                    }
                }
                self.note_outcome(me, tx, outcome);
            }
            _ => unreachable!("no other outputs"),
        }
    }

    fn check_send(&mut self, me: Id, message: &Message<Id>) {
        match *message {
            Message::Decision { tx, outcome } => {
                assert_eq!(me, COORD);
                match outcome {
                    Outcome::Commit => assert!(
                        self.has_durable(
                            COORD,
                            |r| matches!(r, Record::Commit { tx: t, .. } if *t == tx)
                        ),
                        "Commit for {tx} sent before the Commit record was durable"
                    ),
                    Outcome::Abort => {
                        self.abort_final.insert(tx);
                    }
                }
            }
            Message::Vote {
                tx,
                vote: Vote::Yes,
            } if me != COORD => {
                if self.is_one_phase(tx) {
                    assert!(
                        self.has_durable(
                            me,
                            |r| matches!(r, Record::Committed { tx: t, .. } if *t == tx)
                        ),
                        "{me}: one-phase Yes for {tx} before Committed was durable"
                    );
                } else {
                    assert!(
                        self.has_durable(
                            me,
                            |r| matches!(r, Record::Prepared { tx: t, .. } if *t == tx)
                        ),
                        "{me}: Yes vote for {tx} before Prepared was durable"
                    );
                }
            }
            Message::Ack { tx } => assert!(
                self.has_durable(
                    me,
                    |r| matches!(r, Record::Committed { tx: t, .. } if *t == tx)
                ),
                "{me}: Ack for {tx} before Committed was durable"
            ),
            Message::DecisionReply { tx, answer, .. } => match answer {
                Answer::Abort if me == COORD => {
                    // Presumed abort: nothing durable says Commit, or every
                    // Yes voter already committed (the tx was forgotten).
                    self.abort_final.insert(tx);
                }
                Answer::Abort => assert!(
                    self.abort_final.contains(&tx),
                    "{me} answered Abort for {tx} before the abort was final"
                ),
                Answer::Commit => assert!(
                    self.outcomes.get(&tx).is_some_and(|s| s
                        .iter()
                        .any(|(w, o)| *w == COORD && *o == Outcome::Commit)),
                    "{me} answered Commit for {tx} that the coordinator has not durably committed"
                ),
                Answer::Unknown => {}
            },
            _ => {}
        }
    }

    fn flush(&mut self, id: Id, all: bool) {
        let node = &mut self.nodes[id as usize];
        if node.m.is_none() || node.pending.is_empty() {
            return;
        }
        let k = if all {
            node.pending.len()
        } else {
            self.rng.usize(1..=node.pending.len())
        };
        let done: Vec<_> = node.pending.drain(..k).collect();
        let last = done.last().expect("k >= 1").0;
        for (_, r) in done {
            self.make_durable(id, r);
        }
        self.nodes[id as usize]
            .m
            .as_mut()
            .expect("alive")
            .on_persisted(last);
        self.drain(id);
    }

    fn crash(&mut self, id: Id) {
        let node = &mut self.nodes[id as usize];
        if node.m.is_none() {
            return;
        }
        if trace() {
            eprintln!("[{}] {id} CRASH", self.step);
        }
        node.m = None;
        let pending = std::mem::take(&mut node.pending);
        // The disk keeps any prefix of what was not acknowledged.
        let keep = self.rng.usize(0..=pending.len());
        for (_, r) in pending.into_iter().take(keep) {
            self.make_durable(id, r);
        }
        self.nodes[id as usize].down_until = self.step + self.rng.u64(1..40);
        self.app_votes.retain(|(p, _)| *p != id);
        if id != COORD {
            // The app loses the work of every tx not durably prepared.
            let txs: Vec<TxId> = self
                .plans
                .iter()
                .filter(|(_, p)| p.participants.contains(&id))
                .map(|(tx, _)| *tx)
                .collect();
            for tx in txs {
                let kept = self.has_durable(id, |r| {
                    matches!(r, Record::Prepared { tx: t, .. } | Record::Committed { tx: t, .. } if *t == tx)
                });
                if self.amnesiac {
                    // It forgets its rollbacks and redoes the work: asked
                    // again, it votes Yes.
                    self.app_no.remove(&(id, tx));
                    self.plans
                        .get_mut(&tx)
                        .expect("planned")
                        .votes
                        .insert(id, Vote::Yes);
                } else if !kept && !self.app_read_only.contains(&(id, tx)) {
                    self.app_no.insert((id, tx));
                }
            }
        }
    }

    fn restart(&mut self, id: Id) {
        if self.alive(id) || self.nodes[id as usize].dead_forever {
            return;
        }
        let records: Vec<Record<Id>> = self.durable_records(id).collect();
        let m = if id == COORD {
            Machine::C(Coordinator::recover(self.config.clone(), id, records, self.now).unwrap())
        } else {
            Machine::P(Participant::recover(self.config.clone(), id, records, self.now).unwrap())
        };
        let node = &mut self.nodes[id as usize];
        node.m = Some(m);
        node.incarnation += 1;
        self.drain(id);
    }

    fn die_forever(&mut self) {
        self.coordinator_doomed = false;
        let node = &mut self.nodes[COORD as usize];
        node.m = None;
        node.dead_forever = true;
        node.pending.clear();
        // Its messages in flight arrive now or never; nothing of it is
        // replayed later.
        // The applications give up on votes they had not given: a vote
        // given after this point would change who can help whom, and the
        // prediction below is about the state at the coordinator's death.
        self.apps_frozen = true;
        self.app_votes.clear();
        let from_coord: Vec<Packet> = self
            .net
            .iter()
            .filter(|p| p.from == COORD)
            .cloned()
            .collect();
        self.net.retain(|p| p.from != COORD && p.to != COORD);
        self.history.retain(|p| p.from != COORD);
        for p in from_coord {
            if self.rng.bool() {
                self.deliver(p);
            }
        }
    }

    fn deliver(&mut self, p: Packet) {
        let Some(m) = self.nodes[p.to as usize].m.as_mut() else {
            return;
        };
        let message = Message::decode(&p.bytes).expect("messages we encoded decode");
        if trace() {
            eprintln!("[{}] {} <- {}: {message:?}", self.step, p.to, p.from);
        }
        self.handling = Some(message.clone());
        m.handle_message(p.from, message, self.now);
        self.drain(p.to);
        self.handling = None;
    }

    fn fire_timers(&mut self) {
        for id in 0..self.nodes.len() as Id {
            let due = self.nodes[id as usize]
                .m
                .as_ref()
                .and_then(Machine::poll_timeout)
                .is_some_and(|t| t <= self.now);
            if due {
                self.nodes[id as usize]
                    .m
                    .as_mut()
                    .expect("alive")
                    .handle_timeout(self.now);
                self.drain(id);
            }
        }
    }

    fn begin(&mut self) {
        if !self.alive(COORD) {
            return;
        }
        let k = self.nodes.len() - 1;
        let tx = TxId(self.next_tx);
        self.next_tx += 1;
        let mut participants: Vec<Id> = (1..=k as Id).filter(|_| self.rng.bool()).collect();
        if participants.is_empty() {
            participants.push(self.rng.u64(1..=k as u64));
        }
        let mut votes = BTreeMap::new();
        for p in &participants {
            let r = self.rng.f64();
            let v = if r < 0.8 - self.no_rate {
                Vote::Yes
            } else if r < 0.8 {
                Vote::No
            } else {
                Vote::ReadOnly
            };
            votes.insert(*p, v);
        }
        self.plans.insert(
            tx,
            Plan {
                participants: participants.clone(),
                votes,
            },
        );
        for p in &participants {
            if self.rng.bool() && self.alive(*p) {
                let Some(Machine::P(part)) = self.nodes[*p as usize].m.as_mut() else {
                    unreachable!()
                };
                part.join(COORD, tx, self.now).unwrap();
            }
        }
        let Some(Machine::C(c)) = self.nodes[COORD as usize].m.as_mut() else {
            unreachable!()
        };
        c.begin(tx, participants, self.now).unwrap();
        self.drain(COORD);
    }

    fn app_vote(&mut self, i: usize) {
        let (p, tx) = self.app_votes.swap_remove(i);
        let planned = self.plans[&tx].votes[&p];
        // The app answers from what it did: a commit it applied or a
        // read-only vote it gave needs nothing more; work it rolled back or
        // lost is gone.
        let vote = if self.app_committed.contains(&(p, tx)) || self.app_read_only.contains(&(p, tx))
        {
            Vote::ReadOnly
        } else if self.app_no.contains(&(p, tx)) {
            Vote::No
        } else {
            planned
        };
        if vote == Vote::ReadOnly && self.alive(p) {
            self.app_read_only.insert((p, tx));
        }
        let now = self.now;
        if let Some(Machine::P(part)) = self.nodes[p as usize].m.as_mut() {
            // It may have aborted meanwhile: that is an error, not a change.
            let _ = part.vote(&COORD, tx, vote, now);
            self.drain(p);
        }
    }

    fn advance(&mut self, max_ms: u64) {
        self.now += Duration::from_millis(self.rng.u64(1..=max_ms));
        self.fire_timers();
    }

    /// One random step of the faulty phase.
    fn step(&mut self, max_txs: u64, may_crash_coordinator: bool) {
        self.step += 1;
        let r = self.rng.f64();
        if r < 0.32 {
            if !self.net.is_empty() {
                let i = self.rng.usize(..self.net.len());
                let p = self.net.swap_remove(i);
                self.deliver(p);
            }
        } else if r < 0.45 {
            self.advance(300);
        } else if r < 0.60 {
            let id = self.rng.u64(..self.nodes.len() as u64);
            self.flush(id, false);
        } else if r < 0.72 {
            if !self.app_votes.is_empty() {
                let i = self.rng.usize(..self.app_votes.len());
                self.app_vote(i);
            }
        } else if r < 0.78 {
            if self.next_tx <= max_txs {
                self.begin();
            }
        } else if r < 0.78 + self.faults.replay {
            // An old message, sent within the last 30 s (well inside the
            // decision retention: the network's message lifetime).
            if !self.history.is_empty() {
                let p = self.history[self.rng.usize(..self.history.len())].clone();
                if self.now.duration_since(p.sent_at) < Duration::from_secs(30) {
                    self.deliver(p);
                }
            }
        } else if r < 0.78 + self.faults.replay + self.faults.crash {
            let lo = if may_crash_coordinator { 0 } else { 1 };
            let id = self.rng.u64(lo..self.nodes.len() as u64);
            self.crash(id);
        } else {
            for id in 0..self.nodes.len() as Id {
                if !self.alive(id) && self.nodes[id as usize].down_until <= self.step {
                    self.restart(id);
                }
            }
            self.advance(50);
        }
    }

    /// Faults off, everybody up, until nothing is left to do.
    fn run_to_quiescence(&mut self, reorder_dup: bool, until: Option<Instant>) {
        let mut rounds = 0;
        loop {
            rounds += 1;
            // Blocked participants ask forever (every retry interval, each
            // on its own timer): bounded by `until`, not by rounds.
            let bound = if until.is_some() { 1_000_000 } else { 20_000 };
            assert!(rounds < bound, "no quiescence (livelock?)");
            for id in 0..self.nodes.len() as Id {
                self.restart(id);
            }
            let mut busy = false;
            while !self.app_votes.is_empty() {
                self.app_vote(0);
                busy = true;
            }
            for id in 0..self.nodes.len() as Id {
                if !self.nodes[id as usize].pending.is_empty() {
                    self.flush(id, true);
                    busy = true;
                }
            }
            let batch = std::mem::take(&mut self.net);
            busy |= !batch.is_empty();
            let mut batch = batch;
            if reorder_dup {
                self.rng.shuffle(&mut batch);
            }
            for p in batch {
                if reorder_dup && self.rng.f64() < 0.05 {
                    self.net.push(p.clone());
                }
                self.deliver(p);
            }
            if busy {
                continue;
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.m.as_ref().and_then(Machine::poll_timeout))
                .min();
            match (next, until) {
                (None, _) => return,
                (Some(_), Some(u)) if self.now >= u => return,
                (Some(t), Some(u)) => self.now = t.max(self.now).min(u),
                (Some(t), None) => self.now = t.max(self.now),
            }
            self.fire_timers();
        }
    }

    fn part_status(&self, p: Id, tx: TxId) -> Option<ParticipantStatus> {
        self.nodes[p as usize]
            .m
            .as_ref()
            .and_then(|m| m.part().status(&COORD, tx))
    }
}

/// `DSYS_TXN_SIM_TRACE=1` prints every output and delivery (with one seed).
fn trace() -> bool {
    std::env::var_os("DSYS_TXN_SIM_TRACE").is_some()
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("DSYS_TXN_SIM_SEED") {
        return vec![s.parse().expect("DSYS_TXN_SIM_SEED is a u64")];
    }
    let n: u64 = std::env::var("DSYS_TXN_SIM_SEEDS")
        .ok()
        .map(|s| s.parse().expect("DSYS_TXN_SIM_SEEDS is a count"))
        .unwrap_or(1000);
    (0..n).collect()
}

fn run_seeds(name: &str, f: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for seed in seeds() {
        if let Err(e) = std::panic::catch_unwind(|| f(seed)) {
            eprintln!("{name}: failed at seed {seed} (replay: DSYS_TXN_SIM_SEED={seed})");
            std::panic::resume_unwind(e);
        }
    }
}

fn crash_recover_seed(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x2bc);
    let participants = rng.usize(2..=5);
    let mut sim = Sim::new(seed, participants);
    sim.faults = Faults {
        loss: rng.f64() * 0.3,
        dup: rng.f64() * 0.2,
        replay: 0.03,
        crash: rng.f64() * 0.03,
        crash_mid_drain: rng.f64() * 0.01,
    };
    let max_txs = rng.u64(2..=12);
    sim.amnesiac = rng.f64() < 0.3;
    sim.no_rate = rng.f64() * 0.3;
    for _ in 0..rng.u64(200..900) {
        sim.step(max_txs, true);
    }
    assert!(
        sim.now.duration_since(sim.start) < sim.config.decision_retention / 4,
        "the run outlived the retention the replays rely on"
    );
    sim.faults = NO_FAULTS;
    sim.run_to_quiescence(false, None);
    if std::env::var_os("DSYS_TXN_SIM_STATS").is_some() {
        let two_phase_commits = sim
            .durable_records(COORD)
            .filter(|r| matches!(r, Record::Commit { .. }))
            .count();
        let aborts = sim
            .outcomes
            .values()
            .filter(|s| s.iter().any(|(_, o)| *o == Outcome::Abort))
            .count();
        eprintln!(
            "seed {seed}: {} txs, {two_phase_commits} logged commits, {aborts} aborted",
            sim.plans.len()
        );
    }

    // Liveness: everything decided, everything forgotten.
    for id in 0..sim.nodes.len() as Id {
        let m = sim.nodes[id as usize].m.as_ref().expect("all restarted");
        assert!(
            m.is_empty(),
            "node {id} still holds transactions at quiescence"
        );
    }
    for p in 1..=participants as Id {
        let prepared: Vec<TxId> = sim
            .durable_records(p)
            .filter_map(|r| match r {
                Record::Prepared { tx, .. } => Some(tx),
                _ => None,
            })
            .collect();
        for tx in prepared {
            assert!(
                sim.outcomes
                    .get(&tx)
                    .is_some_and(|s| s.iter().any(|(w, _)| *w == p)),
                "participant {p} prepared {tx} and never decided it"
            );
        }
    }
    for (tx, set) in &sim.outcomes {
        if set.contains(&(COORD, Outcome::Commit)) {
            for p in &sim.plans[tx].participants {
                let prepared = sim.has_durable(
                    *p,
                    |r| matches!(r, Record::Prepared { tx: t, .. } if t == tx),
                );
                let committed = sim.has_durable(
                    *p,
                    |r| matches!(r, Record::Committed { tx: t, .. } if t == tx),
                );
                assert!(
                    !prepared || committed,
                    "{p} prepared committed {tx} but has no Committed record"
                );
            }
        }
    }
}

#[test]
fn crash_recover_lossy_network() {
    run_seeds("crash_recover_lossy_network", crash_recover_seed);
}

#[derive(Default)]
struct Tally {
    blocked: u64,
    resolved: u64,
}

fn coordinator_dies_seed(seed: u64) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xdead);
    let participants = rng.usize(2..=5);
    let mut sim = Sim::new(seed, participants);
    sim.faults = Faults {
        loss: rng.f64() * 0.2,
        dup: rng.f64() * 0.2,
        replay: 0.02,
        crash: 0.02,
        crash_mid_drain: 0.005,
    };
    let max_txs = rng.u64(1..=4);
    let doom_at = rng.u64(20..250);
    for i in 0..400 {
        if i == doom_at {
            sim.coordinator_doomed = true;
        }
        if sim.nodes[COORD as usize].dead_forever {
            break;
        }
        sim.step(max_txs, false);
    }
    if !sim.nodes[COORD as usize].dead_forever {
        sim.coordinator_doomed = true;
        sim.die_forever();
    }
    // From here: participants do not crash, and the network reorders and
    // duplicates but loses nothing (a lost one-off answer from a node that
    // then forgot would make the prediction below depend on luck).
    sim.faults = NO_FAULTS;
    for id in 1..=participants as Id {
        sim.restart(id);
    }
    use ParticipantStatus as S;
    let mut predictions = Vec::new();
    for (tx, plan) in &sim.plans {
        let statuses: Vec<(Id, Option<S>)> = plan
            .participants
            .iter()
            .map(|p| (*p, sim.part_status(*p, *tx)))
            .collect();
        let knows = plan.participants.iter().any(|p| {
            sim.nodes[*p as usize]
                .m
                .as_ref()
                .is_some_and(|m| m.part().answer_for(&COORD, *tx) != Answer::Unknown)
        }) || sim.net.iter().any(|p| {
            matches!(
                Message::<Id>::decode(&p.bytes),
                Ok(Message::DecisionReply { tx: t, answer: Answer::Commit | Answer::Abort, .. }) if t == *tx
            )
        });
        let in_doubt: Vec<Id> = statuses
            .iter()
            .filter(|(_, s)| matches!(s, Some(S::Prepared | S::LoggingPrepared)))
            .map(|(p, _)| *p)
            .collect();
        predictions.push((*tx, knows, in_doubt));
    }
    let until = sim.now + Duration::from_secs(60);
    sim.run_to_quiescence(true, Some(until));

    let mut tally = Tally::default();
    for (tx, knows, in_doubt) in predictions {
        if in_doubt.is_empty() {
            continue;
        }
        let decided: Vec<Id> = in_doubt
            .iter()
            .copied()
            .filter(|p| {
                !matches!(
                    sim.part_status(*p, tx),
                    Some(S::Prepared | S::LoggingPrepared)
                )
            })
            .collect();
        if knows {
            tally.resolved += 1;
            assert_eq!(
                decided,
                in_doubt,
                "{tx}: a participant knew the outcome, yet {:?} stayed in doubt",
                in_doubt
                    .iter()
                    .filter(|p| !decided.contains(p))
                    .collect::<Vec<_>>()
            );
        } else {
            tally.blocked += 1;
            assert!(
                decided.is_empty(),
                "{tx}: nobody knew the outcome, yet {decided:?} decided without the coordinator"
            );
        }
    }
    tally
}

#[test]
fn coordinator_dies_forever() {
    let total = std::sync::Mutex::new(Tally::default());
    run_seeds("coordinator_dies_forever", |seed| {
        let t = coordinator_dies_seed(seed);
        let mut total = total.lock().unwrap();
        total.blocked += t.blocked;
        total.resolved += t.resolved;
    });
    let total = total.into_inner().unwrap();
    eprintln!(
        "coordinator_dies_forever: {} in-doubt txs resolved cooperatively, {} blocked",
        total.resolved, total.blocked
    );
    if seeds().len() >= 200 {
        assert!(
            total.resolved > 0,
            "no seed exercised cooperative termination"
        );
        assert!(total.blocked > 0, "no seed exercised the blocking case");
    }
}
