//! An independent adversarial simulation of `dsys_txn::twopc`, with a fault
//! model unlike `twopc_simulation.rs`:
//!
//! - two coordinators (nodes 0 and 1) that are also participants, share
//!   participants 0..=4 and draw `TxId`s from separate counters starting at
//!   1 (every id collides across coordinators); a coordinator may list
//!   itself; one node hosts both roles, so messages are routed by type
//!   (DecisionRequest by its `coordinator` field);
//! - a hostile but not Byzantine network: loss, duplication, reordering,
//!   replays of any message ever sent (previous incarnations, after clock
//!   jumps past `decision_retention`), and forgeries from strangers
//!   (nodes 90, 91 that are in no transaction): Commit/Abort answers,
//!   DecisionRequest floods, Prepares for unknown transactions, and
//!   Prepares "from" a real coordinator with a different participant list;
//! - crashes between any two outputs (before and after each log write and
//!   each send), restarts whose log keeps a random prefix of the
//!   unacknowledged records (a torn last record dropped), crash loops
//!   during recovery;
//! - clock jumps, and a small `max_transactions` on some participants;
//! - an application that follows the documented contract: it holds write
//!   or read work (in half the seeds lost in a crash unless prepared, in
//!   the others durable until a decision reaches it), sometimes `join`s,
//!   votes Yes/No on live work, ReadOnly on read work and on what it
//!   already committed, No on work it lost or never had, and sometimes
//!   never votes.
//!
//! Safety, checked at every decision: a coordinator's Commit only when
//! every writer's Prepared (or one-phase Committed) record is durable; a
//! participant's Commit only with its Committed record durable; never a
//! Commit anywhere (coordinator or participant) together with an Abort at
//! the coordinator or at a writer, or with a writer's work lost unprepared;
//! strangers' messages never create state. Liveness: faults stop, every
//! node restarts, and every coordinator empties and no participant is left
//! undecided.
//!
//! Seeds: `DSYS_TXN_ADV_SEEDS` (default 1000); replay one with
//! `DSYS_TXN_ADV_SEED=<seed>`. A failure prints its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dsys_txn::twopc::{
    Answer, Config, Coordinator, Message, Outcome, Output, Participant, ParticipantStatus,
    PersistId, Record, TxId, Vote,
};

type Id = u64;
type Key = (Id, TxId);
const NODES: Id = 5;
const COORDS: [Id; 2] = [0, 1];
const STRANGERS: [Id; 2] = [90, 91];

fn config(small: bool) -> Config {
    let mut c = Config::default();
    c.vote_timeout = Duration::from_millis(3000);
    c.participant_timeout = Duration::from_millis(2000);
    c.retry_interval = Duration::from_millis(250);
    c.decision_retention = Duration::from_secs(60);
    if small {
        c.max_transactions = 6;
    }
    c
}

#[derive(Default)]
struct Log {
    /// (record, durable, persist id of this incarnation if not durable)
    records: Vec<(Record<Id>, bool, Option<PersistId>)>,
}

impl Log {
    fn durable_has(&self, pred: impl Fn(&Record<Id>) -> bool) -> bool {
        self.records.iter().any(|(r, d, _)| *d && pred(r))
    }
    /// Marks everything durable; the highest id to acknowledge.
    fn flush(&mut self) -> Option<PersistId> {
        let mut last = None;
        for (_, d, id) in &mut self.records {
            *d = true;
            if let Some(id) = id.take() {
                last = Some(id);
            }
        }
        last
    }
    /// A crash: a random prefix of the unacknowledged suffix survives (a
    /// torn record is the app's to drop); what survives was read back by
    /// recovery and counts as durable from then on.
    fn crash(&mut self, rng: &mut fastrand::Rng) {
        let first = self.records.iter().position(|(_, d, _)| !*d);
        if let Some(first) = first {
            let keep = rng.usize(first..=self.records.len());
            self.records.truncate(keep);
        }
        for (_, d, id) in &mut self.records {
            *d = true;
            *id = None;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    Write,
    Read,
}

#[derive(Default)]
struct Node {
    coord: Option<Coordinator<Id>>,
    part: Option<Participant<Id>>,
    alive: bool,
    clog: Log,
    plog: Log,
    /// The app's data: transactions it committed (durable).
    committed: BTreeSet<Key>,
    /// The app's live work (volatile).
    work: BTreeMap<Key, Work>,
    /// Vote requests not yet answered.
    asked: Vec<Key>,
}

struct TxInfo {
    participants: Vec<Id>,
    writers: BTreeSet<Id>,
}

#[derive(Clone)]
struct Packet {
    from: Id,
    to: Id,
    msg: Message<Id>,
    at: Instant,
}

struct Sim {
    seed: u64,
    rng: fastrand::Rng,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    small: BTreeSet<Id>,
    net: Vec<Packet>,
    history: Vec<Packet>,
    next_tx: BTreeMap<Id, u64>,
    txs: BTreeMap<Key, TxInfo>,
    commit_seen: BTreeSet<Key>,
    abort_seen: BTreeMap<Key, String>,
    faults: bool,
    /// A coordinator node that never comes back (cooperative termination).
    dead_for_good: Option<Id>,
    /// Transactions that got a Prepare with a forged list: safety must
    /// hold, but a victim may ignore its real peers' requests, so they are
    /// left out of the cooperative-termination liveness check.
    forged: BTreeSet<Key>,
    /// The app's unvoted work survives its crashes (kept in a database)
    /// until a Decided rolls it back or commits it: a replayed Prepare or
    /// CommitOnePhase after a crash may then be voted Yes.
    durable_work: bool,
    stats: BTreeMap<&'static str, u64>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let now = Instant::now();
        let small: BTreeSet<Id> = (0..NODES).filter(|_| rng.u8(..4) == 0).collect();
        let mut nodes = Vec::new();
        for id in 0..NODES {
            let mut n = Node {
                alive: true,
                ..Node::default()
            };
            if COORDS.contains(&id) {
                n.coord = Some(Coordinator::new(config(false), id).unwrap());
            }
            n.part = Some(Participant::new(config(small.contains(&id)), id).unwrap());
            nodes.push(n);
        }
        Sim {
            seed,
            rng,
            start: now,
            now,
            nodes,
            small,
            net: Vec::new(),
            history: Vec::new(),
            next_tx: COORDS.iter().map(|c| (*c, 1)).collect(),
            txs: BTreeMap::new(),
            commit_seen: BTreeSet::new(),
            abort_seen: BTreeMap::new(),
            faults: true,
            dead_for_good: None,
            forged: BTreeSet::new(),
            durable_work: false,
            stats: BTreeMap::new(),
        }
    }

    fn stat(&mut self, name: &'static str) {
        *self.stats.entry(name).or_default() += 1;
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {}: {what}", self.seed)
    }

    fn check_atomic(&self, key: Key) {
        if self.commit_seen.contains(&key)
            && let Some(why) = self.abort_seen.get(&key)
        {
            self.fail(format!("{key:?} committed somewhere and {why}"));
        }
    }

    fn send(&mut self, from: Id, to: Id, msg: Message<Id>) {
        let p = Packet {
            from,
            to,
            msg,
            at: self.now,
        };
        if self.history.len() < 4000 {
            self.history.push(p.clone());
        } else {
            let i = self.rng.usize(..self.history.len());
            self.history[i] = p.clone();
        }
        if self.faults && self.rng.u8(..10) == 0 {
            return; // lost
        }
        let copies = if self.faults && self.rng.u8(..10) == 0 {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = Duration::from_millis(self.rng.u64(0..400));
            self.net.push(Packet {
                at: self.now + delay,
                ..p.clone()
            });
        }
    }

    /// Routes a message at node `to`: the coordinator role takes votes,
    /// acks and requests about its own transactions; the participant role
    /// the rest.
    fn deliver(&mut self, p: Packet) {
        let Some(n) = self.nodes.get_mut(p.to as usize) else {
            return;
        };
        if !n.alive {
            return;
        }
        if trace() {
            eprintln!(
                "{:?} deliver {} -> {}: {:?}",
                self.now - self.start,
                p.from,
                p.to,
                p.msg
            );
        }
        let to_coord = match &p.msg {
            Message::Vote { .. } | Message::Ack { .. } => true,
            Message::DecisionRequest { coordinator, .. } => *coordinator == p.to,
            _ => false,
        };
        let now = self.now;
        match (to_coord, n.coord.as_mut()) {
            (true, Some(c)) => c.handle_message(p.from, p.msg, now),
            (true, None) => return,
            (false, _) => n
                .part
                .as_mut()
                .expect("alive")
                .handle_message(p.from, p.msg, now),
        }
        self.drain(p.to);
    }

    /// Drains both roles' outputs, crashing between two of them now and
    /// then.
    fn drain(&mut self, id: Id) {
        loop {
            if !self.nodes[id as usize].alive {
                return;
            }
            if self.faults && self.rng.u16(..400) == 0 {
                self.crash(id);
                return;
            }
            let n = &mut self.nodes[id as usize];
            let out = match n.coord.as_mut().and_then(|c| c.poll_output()) {
                Some(o) => (true, o),
                None => match n.part.as_mut().and_then(|p| p.poll_output()) {
                    Some(o) => (false, o),
                    None => return,
                },
            };
            self.output(id, out.0, out.1);
        }
    }

    fn output(&mut self, me: Id, coord_role: bool, out: Output<Id>) {
        if trace() {
            let role = if coord_role { "c" } else { "p" };
            eprintln!("{:?} {me}{role} out {out:?}", self.now - self.start);
        }
        match out {
            Output::Send { to, message } => {
                if coord_role && let Message::Decision { tx, outcome } = &message {
                    // The coordinator's Commit leaves only once durable.
                    if *outcome == Outcome::Commit
                        && !self.nodes[me as usize]
                            .clog
                            .durable_has(|r| matches!(r, Record::Commit { tx: t, .. } if t == tx))
                    {
                        self.fail(format!("{me} sent Commit {tx} before its record"));
                    }
                }
                self.send(me, to, message);
            }
            Output::Persist { id, record, .. } => {
                let n = &mut self.nodes[me as usize];
                let log = if coord_role { &mut n.clog } else { &mut n.plog };
                log.records.push((record, false, Some(id)));
            }
            Output::VoteRequested { coordinator, tx } => {
                let n = &mut self.nodes[me as usize];
                n.asked.push((coordinator, tx));
                // Asked again about a transaction it committed (the
                // participant forgot it after the retention, and a
                // coordinator still retries): the app MUST answer
                // ReadOnly before `participant_timeout`, or the participant
                // aborts on its own what the app committed.
                if n.committed.contains(&(coordinator, tx)) || self.rng.bool() {
                    let i = n.asked.len() - 1;
                    self.app_vote_at(me, i);
                }
            }
            Output::Decided {
                coordinator,
                tx,
                outcome,
            } => self.decided(me, coord_role, (coordinator, tx), outcome),
            _ => {}
        }
    }

    fn decided(&mut self, me: Id, coord_role: bool, key: Key, outcome: Outcome) {
        if STRANGERS.contains(&key.0) || !self.txs.contains_key(&key) {
            // A stranger's (or a not-yet-begun) transaction: the app never
            // had work in it; nothing to check but that it never commits.
            if outcome == Outcome::Commit {
                self.fail(format!("{me} committed {key:?}, which nobody began"));
            }
            return;
        }
        let info = &self.txs[&key];
        match (coord_role, outcome) {
            (true, Outcome::Commit) => {
                for w in info.writers.clone() {
                    let ok = self.nodes[w as usize].plog.durable_has(|r| match r {
                        Record::Prepared {
                            coordinator, tx, ..
                        }
                        | Record::Committed { coordinator, tx } => (*coordinator, *tx) == key,
                        _ => false,
                    });
                    if !ok {
                        self.fail(format!(
                            "coordinator committed {key:?} without {w}'s durable vote"
                        ));
                    }
                }
                self.commit_seen.insert(key);
                self.stat("commits");
            }
            (true, Outcome::Abort) => {
                self.abort_seen
                    .insert(key, "the coordinator aborted".into());
                self.stat("aborts");
            }
            (false, Outcome::Commit) => {
                let n = &mut self.nodes[me as usize];
                let ok = n.plog.durable_has(
                    |r| matches!(r, Record::Committed { coordinator, tx } if (*coordinator, *tx) == key),
                );
                if !ok {
                    self.fail(format!("{me} committed {key:?} before its record"));
                }
                n.work.remove(&key);
                n.committed.insert(key);
                self.commit_seen.insert(key);
            }
            (false, Outcome::Abort) => {
                let n = &mut self.nodes[me as usize];
                n.work.remove(&key);
                if info.writers.contains(&me) {
                    self.abort_seen.insert(key, format!("writer {me} aborted"));
                }
            }
        }
        self.check_atomic(key);
    }

    /// The app answers one pending vote request (or drops it: timeout).
    fn app_vote(&mut self, me: Id) {
        let n = &self.nodes[me as usize];
        if n.asked.is_empty() || !n.alive {
            return;
        }
        let i = self.rng.usize(..n.asked.len());
        self.app_vote_at(me, i);
    }

    fn app_vote_at(&mut self, me: Id, i: usize) {
        let n = &mut self.nodes[me as usize];
        let key = n.asked.swap_remove(i);
        if self.faults && !n.committed.contains(&key) && self.rng.u8(..20) == 0 {
            return; // never answered: the participant times out
        }
        let vote = if n.committed.contains(&key) {
            Vote::ReadOnly
        } else {
            match n.work.get(&key) {
                Some(Work::Read) => Vote::ReadOnly,
                Some(Work::Write) if self.rng.u8(..10) > 0 => Vote::Yes,
                _ => Vote::No,
            }
        };
        if vote == Vote::ReadOnly {
            n.work.remove(&key);
        }
        let now = self.now;
        if trace() {
            eprintln!("{:?} {me} app votes {vote:?} on {key:?}", now - self.start);
        }
        let _ = n
            .part
            .as_mut()
            .expect("alive")
            .vote(&key.0, key.1, vote, now);
        self.drain(me);
    }

    fn crash(&mut self, id: Id) {
        if trace() {
            eprintln!("{:?} CRASH {id}", self.now - self.start);
        }
        self.stat("crashes");
        let mut rng = fastrand::Rng::with_seed(self.rng.u64(..));
        let n = &mut self.nodes[id as usize];
        n.alive = false;
        n.coord = None;
        n.part = None;
        n.asked.clear();
        n.clog.crash(&mut rng);
        n.plog.crash(&mut rng);
        if self.durable_work {
            return;
        }
        // Live work is volatile: a writer that had not durably voted Yes
        // lost it, which is an abort of its share.
        let lost: Vec<Key> = n
            .work
            .iter()
            .filter(|(_, w)| **w == Work::Write)
            .map(|(k, _)| *k)
            .collect();
        n.work.clear();
        for key in lost {
            let prepared = self.nodes[id as usize].plog.durable_has(|r| match r {
                Record::Prepared {
                    coordinator, tx, ..
                }
                | Record::Committed { coordinator, tx } => (*coordinator, *tx) == key,
                _ => false,
            });
            if !prepared {
                self.abort_seen
                    .insert(key, format!("writer {id} lost its unprepared work"));
                self.check_atomic(key);
            }
        }
    }

    fn restart(&mut self, id: Id) {
        self.restart_at(id, 0);
    }

    fn restart_at(&mut self, id: Id, depth: u32) {
        if self.dead_for_good == Some(id) {
            return;
        }
        if trace() {
            eprintln!("{:?} RESTART {id}", self.now - self.start);
        }
        self.stat("restarts");
        let now = self.now;
        let small = self.small.contains(&id);
        let n = &mut self.nodes[id as usize];
        n.alive = true;
        if COORDS.contains(&id) {
            let records = n.clog.records.iter().map(|(r, _, _)| r.clone());
            n.coord = Some(
                Coordinator::recover(config(false), id, records, now)
                    .unwrap_or_else(|e| panic!("seed {}: coordinator {id}: {e}", self.seed)),
            );
        }
        let records = n.plog.records.iter().map(|(r, _, _)| r.clone());
        n.part = Some(
            Participant::recover(config(small), id, records, now)
                .unwrap_or_else(|e| panic!("seed {}: participant {id}: {e}", self.seed)),
        );
        if self.faults && depth < 3 && self.rng.u8(..4) == 0 {
            // A crash loop: down again after a few recovery outputs (its
            // resends, its re-delivered decisions), before or after a
            // flush.
            self.stat("crash_loops");
            for _ in 0..self.rng.usize(..4) {
                let n = &mut self.nodes[id as usize];
                let out = match n.coord.as_mut().and_then(|c| c.poll_output()) {
                    Some(o) => (true, o),
                    None => match n.part.as_mut().and_then(|p| p.poll_output()) {
                        Some(o) => (false, o),
                        None => break,
                    },
                };
                self.output(id, out.0, out.1);
                if !self.nodes[id as usize].alive {
                    return;
                }
            }
            if self.rng.bool() {
                self.flush_quiet(id);
            }
            if self.nodes[id as usize].alive {
                self.crash(id);
            }
            self.restart_at(id, depth + 1);
            return;
        }
        self.drain(id);
    }

    fn flush(&mut self, id: Id) {
        self.flush_quiet(id);
        self.drain(id);
    }

    /// Makes the logs durable and acknowledges, without draining.
    fn flush_quiet(&mut self, id: Id) {
        let n = &mut self.nodes[id as usize];
        if !n.alive {
            return;
        }
        if trace() {
            eprintln!("{:?} flush {id}", self.now - self.start);
        }
        if let Some(last) = n.clog.flush() {
            n.coord.as_mut().expect("alive").on_persisted(last);
        }
        if let Some(last) = n.plog.flush() {
            n.part.as_mut().expect("alive").on_persisted(last);
        }
    }

    fn tick(&mut self, id: Id) {
        let now = self.now;
        let n = &mut self.nodes[id as usize];
        if !n.alive {
            return;
        }
        if let Some(c) = n.coord.as_mut()
            && c.poll_timeout().is_some_and(|t| t <= now)
        {
            c.handle_timeout(now);
        }
        if let Some(p) = n.part.as_mut()
            && p.poll_timeout().is_some_and(|t| t <= now)
        {
            p.handle_timeout(now);
        }
        self.drain(id);
    }

    fn begin(&mut self) {
        let c = COORDS[self.rng.usize(..COORDS.len())];
        if !self.nodes[c as usize].alive {
            return;
        }
        let count = self.rng.usize(1..=4);
        let mut list: Vec<Id> = (0..NODES).collect();
        self.rng.shuffle(&mut list);
        list.truncate(count);
        list.sort_unstable();
        let tx = TxId(self.next_tx[&c]);
        *self.next_tx.get_mut(&c).expect("a coordinator") += 1;
        let key = (c, tx);
        // The work reaches the live participants first (the app's RPCs).
        let mut writers = BTreeSet::new();
        for &p in &list {
            let n = &mut self.nodes[p as usize];
            if !n.alive {
                continue;
            }
            let work = if self.rng.u8(..5) == 0 {
                Work::Read
            } else {
                writers.insert(p);
                Work::Write
            };
            n.work.insert(key, work);
            if self.rng.bool() {
                let now = self.now;
                let _ = n.part.as_mut().expect("alive").join(c, tx, now);
            }
        }
        self.txs.insert(
            key,
            TxInfo {
                participants: list.clone(),
                writers,
            },
        );
        let now = self.now;
        let r = self.nodes[c as usize]
            .coord
            .as_mut()
            .expect("alive")
            .begin(tx, list, now);
        if r.is_err() {
            self.txs.remove(&key);
            return;
        }
        self.stat("begun");
        for p in 0..NODES {
            self.drain(p);
        }
    }

    /// Forgeries and replays.
    fn hostile(&mut self) {
        let now = self.now;
        let stranger = STRANGERS[self.rng.usize(..STRANGERS.len())];
        let victim = self.rng.u64(..NODES);
        if !self.nodes[victim as usize].alive {
            return;
        }
        match self.rng.u8(..6) {
            0 if !self.history.is_empty() => {
                // A replay of any message ever sent, any incarnation ago.
                let p = self.history[self.rng.usize(..self.history.len())].clone();
                self.stat("replays");
                self.deliver(p);
            }
            1 => {
                // A stranger's answer, true or false: must be ignored.
                let Some(key) = self.random_key() else { return };
                let answer = [Answer::Commit, Answer::Abort][self.rng.usize(..2)];
                let before = self.part_len(victim);
                self.deliver(Packet {
                    from: stranger,
                    to: victim,
                    msg: Message::DecisionReply {
                        coordinator: key.0,
                        tx: key.1,
                        answer,
                    },
                    at: now,
                });
                self.assert_no_growth(victim, before);
            }
            2 => {
                // A flood of requests about unknown transactions.
                let before = self.part_len(victim);
                for _ in 0..20 {
                    let coordinator = self.rng.u64(..100);
                    let tx = TxId(self.rng.u64(1000..u64::MAX));
                    self.deliver(Packet {
                        from: stranger,
                        to: victim,
                        msg: Message::DecisionRequest { coordinator, tx },
                        at: now,
                    });
                }
                self.assert_no_growth(victim, before);
            }
            3 => {
                // A stranger's Commit/Abort/Ack/Vote for a real tx id.
                let Some(key) = self.random_key() else { return };
                let msg = match self.rng.u8(..4) {
                    0 => Message::Decision {
                        tx: key.1,
                        outcome: Outcome::Commit,
                    },
                    1 => Message::Decision {
                        tx: key.1,
                        outcome: Outcome::Abort,
                    },
                    2 => Message::Ack { tx: key.1 },
                    _ => Message::Vote {
                        tx: key.1,
                        vote: Vote::Yes,
                    },
                };
                let before = self.part_len(victim);
                self.deliver(Packet {
                    from: stranger,
                    to: victim,
                    msg,
                    at: now,
                });
                self.assert_no_growth(victim, before);
            }
            4 => {
                // A stranger acting as a coordinator: Prepares for
                // transactions nobody began (they take table slots).
                let tx = TxId(self.rng.u64(1..50));
                let mut list = vec![victim, self.rng.u64(..NODES)];
                list.sort_unstable();
                list.dedup();
                self.stat("stranger_prepares");
                self.deliver(Packet {
                    from: stranger,
                    to: victim,
                    msg: Message::Prepare {
                        tx,
                        participants: list,
                    },
                    at: now,
                });
            }
            _ => {
                // "From" a real coordinator: a Prepare for one of its
                // transactions with another participant list that still
                // names the receiver.
                let Some(key) = self.random_key() else { return };
                let info = &self.txs[&key];
                // Only for a two-phase transaction: a Prepare for a
                // one-phase one makes the participant's 2PC Yes read as
                // the one-phase commit (Byzantine, or TxId reuse: see the
                // module docs), which no non-Byzantine network produces.
                if !info.participants.contains(&victim) || info.participants.len() < 2 {
                    return;
                }
                let mut list: Vec<Id> = (0..NODES)
                    .filter(|p| *p == victim || self.rng.bool())
                    .collect();
                list.sort_unstable();
                self.stat("forged_lists");
                self.forged.insert(key);
                self.deliver(Packet {
                    from: key.0,
                    to: victim,
                    msg: Message::Prepare {
                        tx: key.1,
                        participants: list,
                    },
                    at: now,
                });
            }
        }
    }

    fn random_key(&mut self) -> Option<Key> {
        if self.txs.is_empty() {
            return None;
        }
        let i = self.rng.usize(..self.txs.len());
        self.txs.keys().nth(i).copied()
    }

    fn part_len(&self, id: Id) -> Option<usize> {
        let n = &self.nodes[id as usize];
        n.alive.then(|| n.part.as_ref().expect("alive").len())
    }

    fn assert_no_growth(&self, id: Id, before: Option<usize>) {
        let after = self.part_len(id);
        if let (Some(b), Some(a)) = (before, after)
            && a > b
        {
            self.fail(format!(
                "a stranger's message made {id} hold {b} -> {a} txs"
            ));
        }
    }

    fn deliver_one(&mut self) {
        let due: Vec<usize> = (0..self.net.len())
            .filter(|i| self.net[*i].at <= self.now)
            .collect();
        if due.is_empty() {
            return;
        }
        let i = due[self.rng.usize(..due.len())];
        let p = self.net.swap_remove(i);
        self.deliver(p);
    }

    fn step(&mut self) {
        match self.rng.u8(..100) {
            0..=4 => self.begin(),
            5..=44 => self.deliver_one(),
            45..=59 => {
                self.now += Duration::from_millis(self.rng.u64(1..200));
                for id in 0..NODES {
                    self.tick(id);
                }
            }
            60..=71 => {
                let id = self.rng.u64(..NODES);
                self.flush(id);
            }
            72..=79 => {
                let id = self.rng.u64(..NODES);
                self.app_vote(id);
            }
            80..=81 => {
                let id = self.rng.u64(..NODES);
                if self.nodes[id as usize].alive {
                    self.crash(id);
                }
            }
            82..=87 => {
                let id = self.rng.u64(..NODES);
                if !self.nodes[id as usize].alive {
                    self.restart(id);
                }
            }
            88..=93 => self.hostile(),
            94 if self.rng.u8(..5) == 0 => {
                // A clock jump past the retention: decided transactions
                // are forgotten while messages about them still fly.
                self.stat("clock_jumps");
                self.now += Duration::from_secs(self.rng.u64(30..200));
                for id in 0..NODES {
                    self.tick(id);
                }
            }
            _ => {}
        }
    }

    /// Faults stop; everyone restarts; the run must settle.
    fn heal(&mut self) {
        self.faults = false;
        for id in 0..NODES {
            if !self.nodes[id as usize].alive {
                self.restart(id);
            }
        }
        for _ in 0..400 {
            while !self.net.is_empty() {
                let p = self.net.remove(0);
                self.deliver(p);
            }
            for id in 0..NODES {
                self.flush(id);
                while !self.nodes[id as usize].asked.is_empty() {
                    self.app_vote(id);
                }
            }
            self.now += Duration::from_millis(250);
            for id in 0..NODES {
                self.tick(id);
            }
            // Requests to a coordinator dead for good never stop.
            let settled = (self.dead_for_good.is_some() || self.net.is_empty())
                && self.nodes.iter().all(|n| {
                    !n.alive
                        || n.coord.as_ref().is_none_or(|c| self.coordinator_done(c))
                            && n.clog.records.iter().all(|r| r.1)
                            && n.plog.records.iter().all(|r| r.1)
                });
            let cooperative = self
                .dead_for_good
                .is_none_or(|d| self.cooperative_violation(d).is_none());
            if settled && cooperative && self.undecided().is_empty() {
                return;
            }
        }
        let coords: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| n.coord.as_ref().map_or(0, Coordinator::len))
            .collect();
        self.fail(format!(
            "did not settle: coordinators hold {coords:?}, undecided {:?}, {:?}",
            self.undecided(),
            self.dead_for_good
                .and_then(|d| self.cooperative_violation(d)),
        ));
    }

    /// Empty, or (with a node dead for good) holding only transactions
    /// that wait for that node's vote or acknowledgement.
    fn coordinator_done(&self, c: &Coordinator<Id>) -> bool {
        let Some(dead) = self.dead_for_good else {
            return c.is_empty();
        };
        let mut waiting = 0;
        for (key, info) in &self.txs {
            if key.0 == *c.id() && c.status(key.1).is_some() {
                if !info.participants.contains(&dead) {
                    return false;
                }
                waiting += 1;
            }
        }
        c.len() == waiting
    }

    fn undecided(&self) -> Vec<(Id, Key, ParticipantStatus)> {
        let mut out = Vec::new();
        for (id, n) in self.nodes.iter().enumerate() {
            let Some(p) = n.part.as_ref() else {
                continue; // dead for good
            };
            for key in self.txs.keys() {
                if Some(key.0) == self.dead_for_good {
                    continue; // checked by `cooperative_check`
                }
                match p.status(&key.0, key.1) {
                    None
                    | Some(
                        ParticipantStatus::Committed
                        | ParticipantStatus::Aborted
                        | ParticipantStatus::ReadOnly,
                    ) => {}
                    Some(s) => out.push((id as Id, *key, s)),
                }
            }
        }
        out
    }
}

fn trace() -> bool {
    std::env::var_os("DSYS_TXN_ADV_TRACE").is_some()
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("DSYS_TXN_ADV_SEED") {
        return vec![s.parse().expect("DSYS_TXN_ADV_SEED is a u64")];
    }
    let n: u64 = std::env::var("DSYS_TXN_ADV_SEEDS")
        .ok()
        .map_or(1000, |s| s.parse().expect("DSYS_TXN_ADV_SEEDS is a u64"));
    (0..n).map(|i| 0xAD5E_0000 + i).collect()
}

impl Sim {
    /// The coordinator node `dead` is gone for good (with its
    /// participant role): for each of its transactions, once the others
    /// settle, a participant that is still in doubt means that no live
    /// participant of it would answer Commit or Abort (blocking is
    /// allowed only when nobody knows).
    fn cooperative_check(&mut self, dead: Id) {
        if let Some(why) = self.cooperative_violation(dead) {
            self.fail(why);
        }
        let mut blocked_txs = 0;
        for (key, info) in &self.txs {
            if key.0 != dead || self.forged.contains(key) {
                continue;
            }
            let blocked = info.participants.iter().any(|p| {
                self.nodes[*p as usize].part.as_ref().is_some_and(|p| {
                    matches!(
                        p.status(&key.0, key.1),
                        Some(ParticipantStatus::Prepared | ParticipantStatus::LoggingPrepared)
                    )
                })
            });
            if blocked {
                blocked_txs += 1;
            }
        }
        *self.stats.entry("blocked_nobody_knows").or_default() += blocked_txs;
    }

    fn cooperative_violation(&self, dead: Id) -> Option<String> {
        for (key, info) in &self.txs {
            if key.0 != dead || self.forged.contains(key) {
                continue;
            }
            let live: Vec<&Participant<Id>> = info
                .participants
                .iter()
                .filter_map(|p| self.nodes[*p as usize].part.as_ref())
                .collect();
            let knows = live
                .iter()
                .any(|p| p.answer_for(&key.0, key.1) != Answer::Unknown);
            let blocked = live.iter().any(|p| {
                matches!(
                    p.status(&key.0, key.1),
                    Some(ParticipantStatus::Prepared | ParticipantStatus::LoggingPrepared)
                )
            });
            if knows && blocked {
                return Some(format!(
                    "{key:?}: a participant knows the outcome, another is still in doubt"
                ));
            }
        }
        None
    }
}

fn run(seed: u64, kill_coordinator: bool) -> BTreeMap<&'static str, u64> {
    let mut sim = Sim::new(seed);
    sim.durable_work = sim.rng.bool();
    for i in 0..1500 {
        if kill_coordinator && i == 1000 {
            // Mid-drain is covered by the random crashes; here the node
            // simply never returns.
            let dead = COORDS[sim.rng.usize(..COORDS.len())];
            if sim.nodes[dead as usize].alive {
                sim.crash(dead);
            }
            sim.dead_for_good = Some(dead);
        }
        sim.step();
    }
    sim.heal();
    if let Some(dead) = sim.dead_for_good {
        sim.cooperative_check(dead);
    }
    sim.stats
}

fn run_all(kill_coordinator: bool, expect: &[&str]) {
    let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in seeds() {
        let stats = std::panic::catch_unwind(|| run(seed, kill_coordinator))
            .unwrap_or_else(|_| panic!("failed at seed {seed} (DSYS_TXN_ADV_SEED={seed})"));
        for (k, v) in stats {
            *total.entry(k).or_default() += v;
        }
    }
    eprintln!("{total:?}");
    // The run must exercise what it claims to.
    if seeds().len() >= 100 {
        for key in expect {
            assert!(
                total.get(key).copied().unwrap_or(0) > 0,
                "no {key}: {total:?}"
            );
        }
    }
}

#[test]
fn hostile_network_colliding_ids_crash_loops() {
    run_all(
        false,
        &[
            "commits",
            "aborts",
            "crashes",
            "crash_loops",
            "replays",
            "forged_lists",
            "clock_jumps",
            "stranger_prepares",
        ],
    );
}

#[test]
fn coordinator_dies_for_good_under_the_same_faults() {
    run_all(true, &["commits", "aborts", "blocked_nobody_knows"]);
}

// ---- Targeted checks of properties the review probed (they held). ----

fn drain_p(p: &mut Participant<Id>) -> Vec<Output<Id>> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

/// A participant full of strangers' Prepares still answers requests and
/// finishes the transactions it holds; it refuses new ones (counted) and
/// never holds more than `max_transactions`; requests about unknown
/// transactions allocate nothing.
#[test]
fn full_participant_keeps_serving_what_it_holds() {
    let now = Instant::now();
    let mut cfg = config(false);
    cfg.max_transactions = 4;
    let mut p = Participant::new(cfg, 2).unwrap();
    // A real transaction, prepared.
    p.handle_message(
        0,
        Message::Prepare {
            tx: TxId(1),
            participants: vec![2, 3],
        },
        now,
    );
    drain_p(&mut p);
    p.vote(&0, TxId(1), Vote::Yes, now).unwrap();
    drain_p(&mut p);
    p.on_persisted(PersistId(1));
    drain_p(&mut p);
    // A flood from strangers fills the table.
    for tx in 0..100 {
        p.handle_message(
            90,
            Message::Prepare {
                tx: TxId(tx),
                participants: vec![2, 90],
            },
            now,
        );
    }
    assert_eq!(p.len(), 4);
    assert_eq!(p.counters().refused_full, 97);
    drain_p(&mut p);
    // A real coordinator's new Prepare is refused (the flood blocks new
    // work until the strangers' entries time out and their retention ends).
    p.handle_message(
        1,
        Message::Prepare {
            tx: TxId(1),
            participants: vec![2],
        },
        now,
    );
    assert_eq!(p.status(&1, TxId(1)), None);
    // Requests about unknown transactions are answered and allocate nothing.
    for tx in 0..1000 {
        p.handle_message(
            91,
            Message::DecisionRequest {
                coordinator: 7,
                tx: TxId(tx),
            },
            now,
        );
    }
    assert_eq!(p.len(), 4);
    assert_eq!(drain_p(&mut p).len(), 1000);
    // The held transaction still answers its peer and takes its decision.
    p.handle_message(
        3,
        Message::DecisionRequest {
            coordinator: 0,
            tx: TxId(1),
        },
        now,
    );
    assert!(drain_p(&mut p).iter().any(|o| matches!(
        o,
        Output::Send {
            to: 3,
            message: Message::DecisionReply {
                answer: Answer::Unknown,
                ..
            }
        }
    )));
    p.handle_message(
        0,
        Message::Decision {
            tx: TxId(1),
            outcome: Outcome::Commit,
        },
        now,
    );
    let outs = drain_p(&mut p);
    let Some(Output::Persist { id, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    p.on_persisted(*id);
    assert_eq!(p.status(&0, TxId(1)), Some(ParticipantStatus::Committed));
}

/// A participant that forgot a decided transaction (retention over) says
/// Unknown, never Abort, to a peer that still asks.
#[test]
fn forgotten_decision_is_unknown_not_abort() {
    let now = Instant::now();
    let cfg = config(false);
    let retention = cfg.decision_retention;
    let mut p = Participant::recover(
        cfg,
        2,
        [
            Record::Prepared {
                coordinator: 0,
                tx: TxId(1),
                participants: vec![2, 3],
            },
            Record::Committed {
                coordinator: 0,
                tx: TxId(1),
            },
        ],
        now,
    )
    .unwrap();
    drain_p(&mut p);
    let later = now + retention;
    p.handle_timeout(later);
    assert!(p.is_empty());
    p.handle_message(
        3,
        Message::DecisionRequest {
            coordinator: 0,
            tx: TxId(1),
        },
        later,
    );
    let outs = drain_p(&mut p);
    assert_eq!(
        outs,
        vec![Output::Send {
            to: 3,
            message: Message::DecisionReply {
                coordinator: 0,
                tx: TxId(1),
                answer: Answer::Unknown,
            },
        }]
    );
}

/// Every strict prefix of an encoding is refused, so is every extension,
/// and a list count far beyond the input is refused before allocating.
#[test]
fn codec_refuses_prefixes_extensions_and_huge_counts() {
    let messages: Vec<Message<u64>> = vec![
        Message::Prepare {
            tx: TxId(u64::MAX),
            participants: vec![1, 2, 3],
        },
        Message::CommitOnePhase { tx: TxId(0) },
        Message::Vote {
            tx: TxId(5),
            vote: Vote::ReadOnly,
        },
        Message::Decision {
            tx: TxId(5),
            outcome: Outcome::Abort,
        },
        Message::Ack { tx: TxId(5) },
        Message::DecisionRequest {
            coordinator: 9,
            tx: TxId(5),
        },
        Message::DecisionReply {
            coordinator: 9,
            tx: TxId(5),
            answer: Answer::Unknown,
        },
    ];
    for m in messages {
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(Message::<u64>::decode(&b).as_ref(), Ok(&m));
        for cut in 0..b.len() {
            assert!(
                Message::<u64>::decode(&b[..cut]).is_err(),
                "{m:?} cut {cut}"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(
            Message::<u64>::decode(&longer),
            Err(dsys_txn::twopc::DecodeError::TrailingBytes(1))
        );
    }
    // Count 1024 (the bound) with 8 bytes of ids: refused as truncated.
    let mut b = vec![1];
    b.extend_from_slice(&7u64.to_be_bytes());
    b.extend_from_slice(&1024u16.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    assert_eq!(
        Message::<u64>::decode(&b),
        Err(dsys_txn::twopc::DecodeError::Truncated)
    );
    // Count 65535: refused by the bound.
    let mut b = vec![1];
    b.extend_from_slice(&7u64.to_be_bytes());
    b.extend_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(
        Message::<u64>::decode(&b),
        Err(dsys_txn::twopc::DecodeError::ParticipantCount(65535))
    );
}

/// A participant listed twice, or a list without the receiver, never
/// reaches the state machines.
#[test]
fn duplicated_or_foreign_lists_are_refused() {
    let now = Instant::now();
    let mut c = Coordinator::new(config(false), 0).unwrap();
    assert!(c.begin(TxId(1), [2, 3, 2], now).is_err());
    assert!(c.is_empty());
    let mut p = Participant::new(config(false), 2).unwrap();
    for list in [vec![2, 2], vec![3, 2], vec![3, 4], vec![]] {
        p.handle_message(
            0,
            Message::Prepare {
                tx: TxId(1),
                participants: list,
            },
            now,
        );
    }
    assert!(p.is_empty());
    assert_eq!(p.counters().malformed, 4);
}

/// Before its Prepare arrives, a joined transaction has no participant
/// list to check askers against: any node's DecisionRequest aborts it
/// (durably) and is answered Abort. Safe (nothing was voted), documented
/// on `Participant::handle_message`; once the list is known, strangers are
/// ignored.
#[test]
fn joined_before_prepare_any_asker_aborts() {
    let now = Instant::now();
    let mut p = Participant::new(config(false), 2).unwrap();
    p.join(0, TxId(1), now).unwrap();
    p.handle_message(
        90,
        Message::DecisionRequest {
            coordinator: 0,
            tx: TxId(1),
        },
        now,
    );
    assert_eq!(p.status(&0, TxId(1)), Some(ParticipantStatus::LoggingAbort));
    // With the list known, a stranger is ignored.
    p.join(0, TxId(2), now).unwrap();
    p.handle_message(
        0,
        Message::Prepare {
            tx: TxId(2),
            participants: vec![2, 3],
        },
        now,
    );
    p.handle_message(
        90,
        Message::DecisionRequest {
            coordinator: 0,
            tx: TxId(2),
        },
        now,
    );
    assert_eq!(p.status(&0, TxId(2)), Some(ParticipantStatus::AwaitingVote));
    assert_eq!(p.counters().unknown_sender, 1);
}
