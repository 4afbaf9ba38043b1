//! A seeded, sans-IO network emulator for membership protocols, and the scenarios that
//! measure them.
//!
//! [`Sim`] runs any number of [`SimNode`]s (state machines addressed by index) over an
//! emulated network in **virtual time**: a base [`Instant`] chosen by the caller plus a
//! [`Duration`] that only the simulator advances. Nothing here reads a clock, sleeps or
//! uses a global RNG: the same seed, the same nodes and the same calls give the same
//! run, event for event, so a failing seed can be replayed.
//!
//! The network model ([`NetConfig`] and the commands on [`Sim`]):
//!
//! - **latency**: each packet takes a delay drawn uniformly from
//!   `latency_min..=latency_max`, so packets also overtake each other (reordering);
//! - **loss**: a global drop probability, overridden per directed link by
//!   [`Sim::set_link_loss`];
//! - **duplication**: with probability `duplicate` a second copy travels with its own
//!   delay;
//! - **partitions**: [`Sim::partition`] splits the nodes into groups; packets crossing
//!   groups are dropped (checked when sent and again on arrival) until [`Sim::heal`];
//! - **crashes**: [`Sim::crash`] stops a node for good; packets to it are dropped and
//!   its timers never fire ([`Sim::restart`] puts a fresh state machine in its place);
//! - **pauses** (a GC or whole-process stall): [`Sim::pause`] freezes a node; it neither
//!   handles packets nor fires timers. Packets sent to it queue up and, when it
//!   resumes, it handles them in arrival order together with its overdue timer, all at
//!   the resume instant, interleaved as [`ResumeOrder`] says;
//! - **receive stalls** (slow message processing, the case Lifeguard was designed for:
//!   a starved receive loop while timers still run): [`Sim::stall_receive`] queues the
//!   packets sent to a node and hands them over, in arrival order, when the stall ends;
//!   meanwhile its timers fire and its packets go out as usual.
//!
//! Every membership event a node reports is recorded with the virtual time, observer,
//! subject and [`SimEventKind`]; the simulator also keeps each observer's latest view of
//! each subject and counts packets and bytes per node. [`Sim::first_events`],
//! [`Sim::events_between`] and [`Latencies`] turn the record into detection and
//! dissemination figures, and the [`scenario`] module composes them into the standard
//! measurements (crash detection, join propagation, false positives under loss and with
//! a paused node, traffic).
//!
//! [`Swim<u32>`](crate::swim::Swim) implements [`SimNode`] (its `u32` ids are the node
//! indices), so a cluster runs in a few lines:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use dsys_detect::sim::{NetConfig, Sim, SimEventKind};
//! use dsys_detect::swim::{Config, Swim};
//!
//! let base = Instant::now(); // the only clock read, and it is the caller's
//! let mut sim = Sim::new(7, base, NetConfig::default());
//! for i in 0..20u32 {
//!     let node = Swim::new(i, Config::default(), u64::from(i), sim.instant()).unwrap();
//!     let index = sim.add_node(node);
//!     if index > 0 {
//!         sim.join(index, &[0]);
//!     }
//! }
//! let converged = sim
//!     .run_until_cond(Duration::from_secs(30), Duration::from_millis(250), |s| s.views_converged())
//!     .expect("no livelock");
//! assert!(converged.is_some(), "20 nodes see each other within 30 s");
//!
//! sim.crash(5);
//! let crashed_at = sim.now();
//! sim.run_for(Duration::from_secs(40)).expect("no livelock");
//! let observers = sim.live_nodes();
//! let detection = sim.first_events(5, crashed_at, &[SimEventKind::Down], &observers);
//! assert_eq!(detection.missing, 0, "every live member marked the crashed node Down");
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::swim::{Event, State, Swim};

/// A protocol state machine the simulator can drive, addressed by node index.
///
/// The simulator calls one input method (`handle_packet`, `handle_timeout`, `join`,
/// `leave`), then [`drain`](SimNode::drain)s what it produced, then asks for the next
/// [`poll_timeout`](SimNode::poll_timeout). Implementations map their own node ids to
/// indices (`0..` in the order nodes were added to the [`Sim`]).
pub trait SimNode {
    /// A packet from node `from` arrived. Returns `false` when the node rejected it
    /// (undecodable, unexpected); the simulator counts rejections per node.
    fn handle_packet(&mut self, from: usize, payload: &[u8], now: Instant) -> bool;

    /// The deadline returned by `poll_timeout` passed (it may be called late, never
    /// early: `now >= deadline`).
    fn handle_timeout(&mut self, now: Instant);

    /// When the node next wants [`handle_timeout`](SimNode::handle_timeout), if ever.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// Moves every pending outgoing packet (destination index, payload) into `out` and
    /// every membership event (subject index, kind) into `events`.
    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, events: &mut Vec<(usize, SimEventKind)>);

    /// Asks the node to join the cluster through the given members.
    fn join(&mut self, seeds: &[usize], now: Instant);

    /// Asks the node to leave the cluster gracefully.
    fn leave(&mut self, now: Instant);

    /// The node's current opinion of `subject`, `None` if it does not know it.
    fn state_of(&self, subject: usize) -> Option<State>;
}

/// What an observer reported about a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimEventKind {
    /// The subject became a live member in the observer's view.
    Up,
    /// The observer suspects the subject (it is still counted as a member).
    Suspect,
    /// The observer declared the subject failed.
    Down,
    /// The subject left gracefully.
    Left,
    /// A subject that was down or had left is a live member again.
    Rejoined,
}

impl SimEventKind {
    /// Whether an observer whose latest event about a subject is `self` counts the
    /// subject as a live member (`Up`, `Suspect`, `Rejoined`).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SimEventKind::Up | SimEventKind::Suspect | SimEventKind::Rejoined
        )
    }
}

/// One recorded membership event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipEvent {
    /// Virtual time since the simulation's base instant.
    pub at: Duration,
    /// The node that reported it.
    pub observer: usize,
    /// The node it is about.
    pub subject: usize,
    /// What was reported.
    pub kind: SimEventKind,
}

/// In which order a node that resumes from a pause handles what piled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumeOrder {
    /// Like an event loop that `select!`s fairly between its socket and its timer:
    /// while both have work, each step picks one at random (seeded).
    #[default]
    Interleaved,
    /// Overdue timers first, then the queued packets.
    TimersFirst,
    /// Queued packets first, then overdue timers.
    PacketsFirst,
}

/// The emulated network. Build it from [`NetConfig::default`] and adjust fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NetConfig {
    /// Shortest one-way delay (default 1 ms).
    pub latency_min: Duration,
    /// Longest one-way delay (default 10 ms); delays are uniform in between.
    pub latency_max: Duration,
    /// Probability that a packet is dropped, on links without an override (default 0).
    pub loss: f64,
    /// Probability that a delivered packet arrives twice (default 0).
    pub duplicate: f64,
    /// How a resumed node works through its backlog.
    pub resume_order: ResumeOrder,
    /// Livelock guard: a `run_*` call may process at most
    /// `10_000 + event_budget · nodes · ⌈virtual seconds⌉` events, and at most
    /// `10_000 + event_budget · nodes` without virtual time advancing. A healthy SWIM
    /// node needs a few dozen per second; the default is 10 000.
    pub event_budget: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(10),
            loss: 0.0,
            duplicate: 0.0,
            resume_order: ResumeOrder::Interleaved,
            event_budget: 10_000,
        }
    }
}

/// Whether a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Handles packets and timers as they come.
    Running,
    /// Frozen until the given virtual time: no timers, packets queue up.
    Paused {
        /// When it resumes.
        until: Duration,
    },
    /// Timers fire and packets go out, but packets to it queue up until the given
    /// virtual time.
    ReceiveStalled {
        /// When the queued packets are handed over.
        until: Duration,
    },
    /// Stopped for good (until [`Sim::restart`]).
    Crashed,
}

/// Packet and byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }

    /// `self - earlier`, saturating: the traffic between two snapshots.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// Per-node counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Packets the node sent (whether or not they arrived).
    pub sent: Traffic,
    /// Packets the node handled.
    pub received: Traffic,
    /// Packets from this node the network dropped (loss, partition, dead or unknown
    /// destination).
    pub dropped: u64,
    /// Packets the node handled and rejected ([`SimNode::handle_packet`] returned false).
    pub rejected: u64,
}

/// A `run_*` call processed more events than [`NetConfig::event_budget`] allows: some
/// node is probably spinning (a timer that re-arms in the past, a packet storm). The
/// simulation stopped at `at`; its state is intact and inspectable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "livelock suspected: {events} events processed in this run, stopped at virtual time {at:?}"
)]
pub struct Livelock {
    /// Virtual time of the last processed event.
    pub at: Duration,
    /// Events processed by the call that gave up.
    pub events: u64,
}

enum Action {
    Deliver {
        from: usize,
        to: usize,
        payload: Vec<u8>,
    },
    Wake {
        node: usize,
        generation: u64,
    },
    Resume {
        node: usize,
    },
}

/// A queued action; the heap pops the smallest `(at, seq)` first, so events at the same
/// instant run in the order they were scheduled and runs are deterministic.
struct Entry {
    at: Duration,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Slot<N> {
    node: N,
    status: NodeStatus,
    departed: bool,
    inbox: VecDeque<(usize, Vec<u8>)>,
    /// Bumped whenever the node's wake-up is re-armed; stale `Wake`s carry an old one.
    timer_generation: u64,
    armed: Option<Duration>,
    group: u32,
    stats: NodeStats,
}

impl<N> Slot<N> {
    fn fires_timers(&self) -> bool {
        matches!(
            self.status,
            NodeStatus::Running | NodeStatus::ReceiveStalled { .. }
        )
    }
}

/// The simulator: nodes, the emulated network, virtual time and the record.
///
/// Commands (`add_node`, `join`, `crash`, `pause`, `partition`...) act at the current
/// virtual time; `run_until` / `run_for` / `run_until_cond` / `step` advance it. Node
/// outputs produced by a command are sent immediately.
pub struct Sim<N> {
    base: Instant,
    now: Duration,
    rng: fastrand::Rng,
    net: NetConfig,
    slots: Vec<Slot<N>>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    link_loss: BTreeMap<(usize, usize), f64>,
    events: Vec<MembershipEvent>,
    views: Vec<Vec<Option<SimEventKind>>>,
    out_buf: Vec<(usize, Vec<u8>)>,
    event_buf: Vec<(usize, SimEventKind)>,
    processed: u64,
}

impl<N: SimNode> Sim<N> {
    /// An empty simulation at virtual time zero. `base` is what time zero means to the
    /// nodes (pass `Instant::now()` from a test or a program; the simulator never reads
    /// the clock), `seed` drives every network decision.
    pub fn new(seed: u64, base: Instant, net: NetConfig) -> Self {
        Sim {
            base,
            now: Duration::ZERO,
            rng: fastrand::Rng::with_seed(seed),
            net,
            slots: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            link_loss: BTreeMap::new(),
            events: Vec::new(),
            views: Vec::new(),
            out_buf: Vec::new(),
            event_buf: Vec::new(),
            processed: 0,
        }
    }

    // ---- getters ----

    /// Virtual time since the base instant.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The current virtual time as an `Instant` (what nodes are handed).
    pub fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// The base instant (virtual time zero).
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Number of nodes ever added (indices are `0..len()`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no node was added yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The network configuration.
    pub fn net(&self) -> &NetConfig {
        &self.net
    }

    /// Node `i`'s state machine. Panics if `i` is not a node index.
    pub fn node(&self, i: usize) -> &N {
        &self.slots[i].node
    }

    /// Node `i`'s state machine, mutably (inputs given through it are not seen by the
    /// simulator until the node is next driven). Panics if `i` is not a node index.
    pub fn node_mut(&mut self, i: usize) -> &mut N {
        &mut self.slots[i].node
    }

    /// Whether node `i` runs, is paused or crashed. Panics if `i` is not a node index.
    pub fn status(&self, i: usize) -> NodeStatus {
        self.slots[i].status
    }

    /// Whether [`Sim::leave`] was called for node `i`.
    pub fn has_left(&self, i: usize) -> bool {
        self.slots[i].departed
    }

    /// Nodes that are expected to be members: not crashed and not departed (paused
    /// nodes are included).
    pub fn live_nodes(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|&i| self.is_live(i)).collect()
    }

    /// Whether node `i` is expected to be a member (not crashed, not departed).
    pub fn is_live(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        slot.status != NodeStatus::Crashed && !slot.departed
    }

    /// Node `i`'s counters.
    pub fn stats(&self, i: usize) -> &NodeStats {
        &self.slots[i].stats
    }

    /// Traffic sent by all nodes so far.
    pub fn traffic(&self) -> Traffic {
        let mut total = Traffic::default();
        for slot in &self.slots {
            total.packets += slot.stats.sent.packets;
            total.bytes += slot.stats.sent.bytes;
        }
        total
    }

    /// Every membership event so far, in time order.
    pub fn events(&self) -> &[MembershipEvent] {
        &self.events
    }

    /// The events with `from <= at < to`.
    pub fn events_between(&self, from: Duration, to: Duration) -> &[MembershipEvent] {
        let start = self.events.partition_point(|e| e.at < from);
        let end = self.events.partition_point(|e| e.at < to);
        &self.events[start..end.max(start)]
    }

    /// The latest event `observer` reported about `subject`.
    pub fn view(&self, observer: usize, subject: usize) -> Option<SimEventKind> {
        self.views
            .get(observer)
            .and_then(|v| v.get(subject))
            .copied()
            .flatten()
    }

    /// Whether `observer`'s latest event about `subject` makes it a live member.
    pub fn sees_live(&self, observer: usize, subject: usize) -> bool {
        self.view(observer, subject)
            .is_some_and(SimEventKind::is_live)
    }

    /// Whether every live node's events say every other live node is a member
    /// ([`SimEventKind::is_live`]). `O(n²)`.
    pub fn views_converged(&self) -> bool {
        let live = self.live_nodes();
        live.iter()
            .all(|&o| live.iter().all(|&s| o == s || self.sees_live(o, s)))
    }

    /// Whether every live node's [`SimNode::state_of`] says every other live node is
    /// [`State::Alive`]: stricter than [`views_converged`](Sim::views_converged) (no
    /// lingering suspicion) and independent of the event stream. `O(n²)` queries.
    pub fn states_converged(&self) -> bool {
        let live = self.live_nodes();
        live.iter().all(|&o| {
            live.iter()
                .all(|&s| o == s || self.slots[o].node.state_of(s) == Some(State::Alive))
        })
    }

    /// Pairs `(observer, subject)` of live nodes where the observer does not hold the
    /// subject `Alive` (for failure messages), at most `limit` of them.
    pub fn unconverged_pairs(&self, limit: usize) -> Vec<(usize, usize, Option<State>)> {
        let live = self.live_nodes();
        let mut out = Vec::new();
        for &o in &live {
            for &s in &live {
                if o != s {
                    let state = self.slots[o].node.state_of(s);
                    if state != Some(State::Alive) {
                        out.push((o, s, state));
                        if out.len() >= limit {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    /// For each of `observers`, the delay from `since` to its first event about
    /// `subject` whose kind is in `kinds`; observers without one count as missing.
    pub fn first_events(
        &self,
        subject: usize,
        since: Duration,
        kinds: &[SimEventKind],
        observers: &[usize],
    ) -> Latencies {
        let mut first: BTreeMap<usize, Option<Duration>> =
            observers.iter().map(|&o| (o, None)).collect();
        let mut pending = first.len();
        for e in self.events_between(since, Duration::MAX) {
            if pending == 0 {
                break;
            }
            if e.subject != subject || !kinds.contains(&e.kind) {
                continue;
            }
            if let Some(slot @ None) = first.get_mut(&e.observer) {
                *slot = Some(e.at - since);
                pending -= 1;
            }
        }
        let mut out = Latencies::default();
        for v in first.into_values() {
            match v {
                Some(d) => out.samples.push(d),
                None => out.missing += 1,
            }
        }
        out
    }

    // ---- commands ----

    /// Adds a running node; returns its index. Its first wake-up is scheduled from its
    /// `poll_timeout`, and anything it already has to send is sent.
    pub fn add_node(&mut self, node: N) -> usize {
        let i = self.slots.len();
        self.slots.push(Slot {
            node,
            status: NodeStatus::Running,
            departed: false,
            inbox: VecDeque::new(),
            timer_generation: 0,
            armed: None,
            group: 0,
            stats: NodeStats::default(),
        });
        self.flush(i);
        self.rearm(i);
        i
    }

    /// Crash-restart: node `i` becomes `node` (a fresh state machine, typically with
    /// the same id), running, with nothing queued. Counters and the record are kept.
    pub fn restart(&mut self, i: usize, node: N) {
        let slot = &mut self.slots[i];
        slot.node = node;
        slot.status = NodeStatus::Running;
        slot.departed = false;
        slot.inbox.clear();
        slot.armed = None;
        slot.timer_generation += 1;
        self.flush(i);
        self.rearm(i);
    }

    /// Node `i` joins through `seeds` ([`SimNode::join`]). Ignored for a crashed node.
    pub fn join(&mut self, i: usize, seeds: &[usize]) {
        if self.slots[i].status == NodeStatus::Crashed {
            return;
        }
        let now = self.instant();
        self.slots[i].node.join(seeds, now);
        self.flush(i);
        self.rearm(i);
    }

    /// Node `i` leaves gracefully ([`SimNode::leave`]); it keeps running (to spread the
    /// news) but no longer counts as live. Ignored for a crashed node.
    pub fn leave(&mut self, i: usize) {
        if self.slots[i].status == NodeStatus::Crashed {
            return;
        }
        let now = self.instant();
        self.slots[i].departed = true;
        self.slots[i].node.leave(now);
        self.flush(i);
        self.rearm(i);
    }

    /// Node `i` stops for good: it handles nothing more, packets to it are dropped.
    pub fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.status = NodeStatus::Crashed;
        slot.inbox.clear();
        slot.armed = None;
        slot.timer_generation += 1;
    }

    /// Freezes node `i` for `duration`: no packets, no timers (extends a pause or a
    /// receive stall already under way into a pause; ignored for a crashed node). See
    /// [`ResumeOrder`] for what happens on resume.
    pub fn pause(&mut self, i: usize, duration: Duration) {
        let until = self.now + duration;
        let slot = &mut self.slots[i];
        let until = match slot.status {
            NodeStatus::Crashed => return,
            NodeStatus::Running => until,
            NodeStatus::Paused { until: old } | NodeStatus::ReceiveStalled { until: old } => {
                old.max(until)
            }
        };
        slot.status = NodeStatus::Paused { until };
        self.push(until, Action::Resume { node: i });
    }

    /// Stalls node `i`'s receive path for `duration`: packets to it queue up and are
    /// handled in arrival order when the stall ends, while its timers keep firing and
    /// its packets keep going out. Extends a stall already under way; a paused node
    /// stays paused, at least that long; ignored for a crashed node.
    pub fn stall_receive(&mut self, i: usize, duration: Duration) {
        let until = self.now + duration;
        let slot = &mut self.slots[i];
        let (status, until) = match slot.status {
            NodeStatus::Crashed => return,
            NodeStatus::Running => (NodeStatus::ReceiveStalled { until }, until),
            NodeStatus::ReceiveStalled { until: old } => {
                let until = old.max(until);
                (NodeStatus::ReceiveStalled { until }, until)
            }
            NodeStatus::Paused { until: old } => {
                let until = old.max(until);
                (NodeStatus::Paused { until }, until)
            }
        };
        slot.status = status;
        self.push(until, Action::Resume { node: i });
    }

    /// Splits the network: each listed group can only talk within itself; nodes not
    /// listed form one more group together. Replaces any previous partition.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        for slot in &mut self.slots {
            slot.group = 0;
        }
        for (g, members) in groups.iter().enumerate() {
            for &i in *members {
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.group = g as u32 + 1;
                }
            }
        }
    }

    /// Removes the partition.
    pub fn heal(&mut self) {
        for slot in &mut self.slots {
            slot.group = 0;
        }
    }

    /// Sets the global loss probability.
    pub fn set_loss(&mut self, p: f64) {
        self.net.loss = p;
    }

    /// Overrides the loss probability of the directed link `from → to`.
    pub fn set_link_loss(&mut self, from: usize, to: usize, p: f64) {
        self.link_loss.insert((from, to), p);
    }

    /// Removes every per-link loss override.
    pub fn clear_link_loss(&mut self) {
        self.link_loss.clear();
    }

    // ---- driving ----

    /// Processes the next queued event, if any; returns its virtual time. No budget.
    pub fn step(&mut self) -> Option<Duration> {
        let entry = self.queue.pop()?;
        self.now = self.now.max(entry.at);
        self.processed += 1;
        self.dispatch(entry.action);
        Some(self.now)
    }

    /// Runs every event due up to `deadline` (virtual), then sets the clock to it.
    /// Fails if the run exceeds [`NetConfig::event_budget`].
    pub fn run_until(&mut self, deadline: Duration) -> Result<(), Livelock> {
        let nodes = self.slots.len().max(1) as u64;
        let secs = deadline.saturating_sub(self.now).as_secs_f64().ceil() as u64;
        let per_instant = 10_000 + self.net.event_budget.saturating_mul(nodes);
        let total = per_instant.saturating_add(
            self.net
                .event_budget
                .saturating_mul(nodes)
                .saturating_mul(secs),
        );
        let mut events = 0u64;
        let mut same_instant = 0u64;
        while self.queue.peek().is_some_and(|e| e.at <= deadline) {
            let before = self.now;
            self.step();
            events += 1;
            if self.now == before {
                same_instant += 1;
            } else {
                same_instant = 0;
            }
            if events > total || same_instant > per_instant {
                return Err(Livelock {
                    at: self.now,
                    events,
                });
            }
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    /// `run_until(now + duration)`.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), Livelock> {
        self.run_until(self.now + duration)
    }

    /// Runs in steps of `every` until `done(self)` holds (checked before each step) or
    /// `timeout` of virtual time has passed; returns the virtual time at which `done`
    /// was first seen to hold, `None` on timeout.
    pub fn run_until_cond(
        &mut self,
        timeout: Duration,
        every: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<Option<Duration>, Livelock> {
        let deadline = self.now + timeout;
        let every = every.max(Duration::from_nanos(1));
        loop {
            if done(self) {
                return Ok(Some(self.now));
            }
            if self.now >= deadline {
                return Ok(None);
            }
            self.run_until((self.now + every).min(deadline))?;
        }
    }

    /// Events processed since the simulation started.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    // ---- internals ----

    fn push(&mut self, at: Duration, action: Action) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Entry { at, seq, action });
    }

    fn dispatch(&mut self, action: Action) {
        match action {
            Action::Deliver { from, to, payload } => self.deliver(from, to, payload),
            Action::Wake { node, generation } => {
                let slot = &mut self.slots[node];
                if slot.timer_generation != generation || !slot.fires_timers() {
                    return;
                }
                slot.armed = None;
                let now = self.base + self.now;
                slot.node.handle_timeout(now);
                self.flush(node);
                self.rearm(node);
            }
            Action::Resume { node } => match self.slots[node].status {
                NodeStatus::Paused { until } if until == self.now => self.resume(node),
                NodeStatus::ReceiveStalled { until } if until == self.now => {
                    self.slots[node].status = NodeStatus::Running;
                    while let Some((from, payload)) = self.slots[node].inbox.pop_front() {
                        self.handle_one_packet(node, from, &payload);
                    }
                    self.rearm(node);
                }
                _ => {}
            },
        }
    }

    fn deliver(&mut self, from: usize, to: usize, payload: Vec<u8>) {
        let Some(slot) = self.slots.get(to) else {
            return;
        };
        if slot.status == NodeStatus::Crashed || slot.group != self.slots[from].group {
            self.slots[from].stats.dropped += 1;
            return;
        }
        if let NodeStatus::Paused { .. } | NodeStatus::ReceiveStalled { .. } = slot.status {
            self.slots[to].inbox.push_back((from, payload));
            return;
        }
        self.handle_one_packet(to, from, &payload);
        self.rearm(to);
    }

    fn handle_one_packet(&mut self, to: usize, from: usize, payload: &[u8]) {
        let now = self.base + self.now;
        let slot = &mut self.slots[to];
        slot.stats.received.add(payload.len());
        if !slot.node.handle_packet(from, payload, now) {
            slot.stats.rejected += 1;
        }
        self.flush(to);
    }

    fn timer_due(&self, i: usize) -> bool {
        self.slots[i]
            .node
            .poll_timeout()
            .is_some_and(|t| t <= self.base + self.now)
    }

    fn resume(&mut self, i: usize) {
        {
            let slot = &mut self.slots[i];
            slot.status = NodeStatus::Running;
            slot.armed = None;
            slot.timer_generation += 1;
        }
        let now = self.base + self.now;
        let order = self.net.resume_order;
        loop {
            let has_packet = !self.slots[i].inbox.is_empty();
            let due = self.timer_due(i);
            let timer_now = match (has_packet, due) {
                (false, false) => break,
                (true, false) => false,
                (false, true) => true,
                (true, true) => match order {
                    ResumeOrder::TimersFirst => true,
                    ResumeOrder::PacketsFirst => false,
                    ResumeOrder::Interleaved => self.rng.bool(),
                },
            };
            if timer_now {
                self.slots[i].node.handle_timeout(now);
                self.flush(i);
                // A node whose deadline stays in the past would spin here; the rest of
                // the backlog is still handled and the spin shows up in `run_until`.
                if self.timer_due(i) && self.slots[i].inbox.is_empty() {
                    break;
                }
            } else {
                let (from, payload) = self.slots[i]
                    .inbox
                    .pop_front()
                    .expect("has_packet checked the inbox is non-empty");
                self.handle_one_packet(i, from, &payload);
            }
        }
        self.rearm(i);
    }

    fn rearm(&mut self, i: usize) {
        let now = self.now;
        let base = self.base;
        let slot = &mut self.slots[i];
        if !slot.fires_timers() {
            return;
        }
        match slot.node.poll_timeout() {
            None => {
                if slot.armed.is_some() {
                    slot.armed = None;
                    slot.timer_generation += 1;
                }
            }
            Some(t) => {
                let at = t.saturating_duration_since(base).max(now);
                if slot.armed != Some(at) {
                    slot.armed = Some(at);
                    slot.timer_generation += 1;
                    let generation = slot.timer_generation;
                    self.push(
                        at,
                        Action::Wake {
                            node: i,
                            generation,
                        },
                    );
                }
            }
        }
    }

    fn flush(&mut self, i: usize) {
        let mut out = std::mem::take(&mut self.out_buf);
        let mut events = std::mem::take(&mut self.event_buf);
        self.slots[i].node.drain(&mut out, &mut events);
        for (subject, kind) in events.drain(..) {
            self.record(i, subject, kind);
        }
        for (to, payload) in out.drain(..) {
            self.send(i, to, payload);
        }
        self.out_buf = out;
        self.event_buf = events;
    }

    fn record(&mut self, observer: usize, subject: usize, kind: SimEventKind) {
        self.events.push(MembershipEvent {
            at: self.now,
            observer,
            subject,
            kind,
        });
        if self.views.len() <= observer {
            self.views.resize_with(observer + 1, Vec::new);
        }
        let view = &mut self.views[observer];
        if view.len() <= subject {
            view.resize(subject + 1, None);
        }
        view[subject] = Some(kind);
    }

    fn send(&mut self, from: usize, to: usize, payload: Vec<u8>) {
        self.slots[from].stats.sent.add(payload.len());
        let reachable = self
            .slots
            .get(to)
            .is_some_and(|dst| dst.group == self.slots[from].group);
        if !reachable {
            self.slots[from].stats.dropped += 1;
            return;
        }
        let loss = self
            .link_loss
            .get(&(from, to))
            .copied()
            .unwrap_or(self.net.loss);
        if loss > 0.0 && self.rng.f64() < loss {
            self.slots[from].stats.dropped += 1;
            return;
        }
        if self.net.duplicate > 0.0 && self.rng.f64() < self.net.duplicate {
            let at = self.now + self.latency();
            self.push(
                at,
                Action::Deliver {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
        }
        let at = self.now + self.latency();
        self.push(at, Action::Deliver { from, to, payload });
    }

    fn latency(&mut self) -> Duration {
        let lo = self.net.latency_min.as_nanos() as u64;
        let hi = (self.net.latency_max.as_nanos() as u64).max(lo);
        Duration::from_nanos(self.rng.u64(lo..=hi))
    }
}

/// Delays measured per observer, plus how many observers never got there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    /// One delay per observer that reached the condition.
    pub samples: Vec<Duration>,
    /// Observers that did not reach it within the run.
    pub missing: usize,
}

impl Latencies {
    /// Appends another measurement's samples and missing count.
    pub fn merge(&mut self, other: &Latencies) {
        self.samples.extend_from_slice(&other.samples);
        self.missing += other.missing;
    }

    /// The largest sample, if every observer got there (`None` if some are missing
    /// or there are no samples): "the time until everyone".
    pub fn all(&self) -> Option<Duration> {
        if self.missing > 0 {
            None
        } else {
            self.samples.iter().max().copied()
        }
    }

    /// Mean, median, p99 (nearest rank) and maximum of the samples, `None` if empty.
    pub fn summary(&self) -> Option<Summary> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = sorted.iter().sum();
        Some(Summary {
            count: n,
            mean: total / n as u32,
            p50: rank(0.50),
            p99: rank(0.99),
            max: sorted[n - 1],
        })
    }
}

/// Summary statistics of a [`Latencies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// `Swim<u32>` in the simulator: node ids are the indices.
impl SimNode for Swim<u32> {
    fn handle_packet(&mut self, _from: usize, payload: &[u8], now: Instant) -> bool {
        Swim::handle_packet(self, payload, now).is_ok()
    }

    fn handle_timeout(&mut self, now: Instant) {
        Swim::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Swim::poll_timeout(self)
    }

    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, events: &mut Vec<(usize, SimEventKind)>) {
        while let Some(t) = self.poll_transmit() {
            out.push((t.to as usize, t.payload));
        }
        while let Some(e) = self.poll_event() {
            events.push(match e {
                Event::Up(n) => (n as usize, SimEventKind::Up),
                Event::Suspect { node, .. } => (node as usize, SimEventKind::Suspect),
                Event::Down { node, .. } => (node as usize, SimEventKind::Down),
                Event::Left(n) => (n as usize, SimEventKind::Left),
                Event::Rejoined(n) => (n as usize, SimEventKind::Rejoined),
            });
        }
    }

    fn join(&mut self, seeds: &[usize], now: Instant) {
        Swim::join(self, seeds.iter().map(|&s| s as u32), now);
    }

    fn leave(&mut self, now: Instant) {
        Swim::leave(self, now);
    }

    fn state_of(&self, subject: usize) -> Option<State> {
        let id = u32::try_from(subject).ok()?;
        Swim::state_of(self, &id)
    }
}

pub mod scenario {
    //! The standard measurements, generic over the implementation: the same plan and
    //! seed give every implementation the same network, the same join times, the same
    //! crash victims and the same pause schedule (these come from a scenario RNG that
    //! does not depend on what the nodes do), so figures can be compared side by side.
    //!
    //! [`run`] performs, on one simulation: bootstrap (everyone joins through node 0
    //! and converges), steady-state traffic, churn (a member crashes, and once everyone
    //! has marked it Down a replacement joins, so the cluster size stays put), a period of
    //! uniform packet loss, and slow-node phases (one node repeatedly paused, or its
    //! receive path stalled). The phase functions are public so tests can compose their
    //! own runs.

    use std::time::{Duration, Instant};

    use super::{Latencies, Livelock, NetConfig, Sim, SimEventKind, SimNode, Traffic};

    /// What to measure, and for how long. [`Plan::new`] gives the defaults used by the
    /// `swim_vs_foca` report.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub struct Plan {
        /// Cluster size after bootstrap.
        pub nodes: usize,
        /// Seeds the network and the scenario RNG.
        pub seed: u64,
        /// The network (its `loss` applies from the start; the loss phase adds its own).
        pub net: NetConfig,
        /// The implementations' protocol period, to express delays in periods.
        pub probe_interval: Duration,
        /// Bootstrap joins are spread uniformly over this window.
        pub join_window: Duration,
        /// Give up on bootstrap convergence after this long.
        pub converge_timeout: Duration,
        /// Steady-state traffic is measured over this window.
        pub traffic_window: Duration,
        /// Churn rounds: crash a random member, wait until every live member has
        /// marked it Down, join a replacement through a random member, wait until
        /// every member has it Up, wait `churn_gap`.
        pub churn: usize,
        /// Quiet time after each churn round.
        pub churn_gap: Duration,
        /// Give up on a join or a crash reaching everyone after this long.
        pub spread_timeout: Duration,
        /// Quiet time between phases (not measured).
        pub settle: Duration,
        /// Loss probability of the loss phase.
        pub loss: f64,
        /// Length of the loss phase.
        pub loss_duration: Duration,
        /// Slow-node phases, one after the other, each on a node picked at random.
        pub slow: Vec<SlowPhase>,
    }

    /// How a slow node misbehaves (see [`Sim::pause`] and [`Sim::stall_receive`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum StallKind {
        /// The whole process freezes (GC, SIGSTOP, a starved VM).
        Pause,
        /// Only the receive path stalls; timers and sends go on (the Lifeguard paper's
        /// "slow message processing").
        Receive,
    }

    /// One slow-node phase: a node stalls repeatedly for `duration`; Downs are counted
    /// over that time plus the plan's `settle`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SlowPhase {
        /// What kind of stall.
        pub kind: StallKind,
        /// Stall lengths are uniform in this range.
        pub stall: (Duration, Duration),
        /// Gaps between stalls are uniform in this range.
        pub gap: (Duration, Duration),
        /// How long the node keeps stalling.
        pub duration: Duration,
    }

    impl SlowPhase {
        /// Whole-process pauses of 2–5 s (longer than a protocol period, shorter than
        /// the suspicion timeout), 2–6 s apart, for 120 s.
        pub fn pauses() -> Self {
            SlowPhase {
                kind: StallKind::Pause,
                stall: (Duration::from_secs(2), Duration::from_secs(5)),
                gap: (Duration::from_secs(2), Duration::from_secs(6)),
                duration: Duration::from_secs(120),
            }
        }

        /// Receive stalls of 2–5 s, 2–6 s apart, for 120 s.
        pub fn receive_stalls() -> Self {
            SlowPhase {
                kind: StallKind::Receive,
                ..Self::pauses()
            }
        }

        /// Receive stalls of 10–25 s (longer than the shortest suspicion timeout, so a
        /// plain-SWIM slow node declares the members it suspects Down before it reads
        /// their refutations), 5–10 s apart, for 120 s.
        pub fn long_receive_stalls() -> Self {
            SlowPhase {
                kind: StallKind::Receive,
                stall: (Duration::from_secs(10), Duration::from_secs(25)),
                gap: (Duration::from_secs(5), Duration::from_secs(10)),
                duration: Duration::from_secs(120),
            }
        }
    }

    impl Plan {
        /// Defaults: 1 s protocol period, joins over 2 s, convergence within
        /// 60 s + 60 ms per node, 10 s traffic window, 10 churn rounds, 120 s of
        /// 5 % loss, then the three [`SlowPhase`] presets (pauses, receive stalls, long
        /// receive stalls).
        pub fn new(nodes: usize, seed: u64) -> Self {
            Plan {
                nodes,
                seed,
                net: NetConfig::default(),
                probe_interval: Duration::from_secs(1),
                join_window: Duration::from_secs(2),
                converge_timeout: Duration::from_secs(60)
                    + Duration::from_millis(60) * nodes as u32,
                traffic_window: Duration::from_secs(10),
                churn: 10,
                churn_gap: Duration::from_secs(5),
                spread_timeout: Duration::from_secs(90),
                settle: Duration::from_secs(15),
                loss: 0.05,
                loss_duration: Duration::from_secs(120),
                slow: vec![
                    SlowPhase::pauses(),
                    SlowPhase::receive_stalls(),
                    SlowPhase::long_receive_stalls(),
                ],
            }
        }

        /// The scenario RNG of one phase: independent of the network RNG and of what
        /// the nodes do, so every implementation gets the same draws.
        fn scenario_rng(&self, phase: u64) -> fastrand::Rng {
            fastrand::Rng::with_seed(self.seed ^ 0x5eed_5ce7_a210_0000 ^ phase)
        }
    }

    /// Down events of nodes that had not failed.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct FalseDowns {
        /// Down events (one per observer and occurrence).
        pub events: usize,
        /// Distinct (observer, subject) pairs.
        pub pairs: usize,
        /// Distinct subjects.
        pub subjects: usize,
    }

    /// Traffic per live node per second of virtual time.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Rate {
        /// Packets sent per node per second.
        pub msgs: f64,
        /// Bytes sent per node per second.
        pub bytes: f64,
    }

    /// Everything [`run`] measured for one implementation.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Report {
        /// Cluster size.
        pub nodes: usize,
        /// When bootstrap converged (all live nodes see all live nodes), `None` if it
        /// did not within the plan's timeout.
        pub bootstrap: Option<Duration>,
        /// Steady-state traffic.
        pub traffic: Rate,
        /// Per observer: from a join until the observer had the new node Up.
        pub join: Latencies,
        /// Per join: until every live member had the new node Up (missing: joins that
        /// never reached everyone).
        pub join_all: Latencies,
        /// Per observer: from a crash until the observer marked the node Down.
        pub crash: Latencies,
        /// Per crash: until every live member had marked it Down.
        pub crash_all: Latencies,
        /// False Downs during the loss phase.
        pub loss_false: FalseDowns,
        /// Traffic during the loss phase.
        pub loss_traffic: Rate,
        /// One outcome per slow-node phase of the plan, in order.
        pub slow: Vec<SlowOutcome>,
    }

    /// Adds `plan.nodes` nodes built by `make(index, now)`: node 0 at time zero, the
    /// others at uniform random times within the join window, each joining through
    /// node 0; then runs until every node's events show every other node live.
    /// Returns the simulation and the convergence time (`None`: timed out).
    pub fn bootstrap<N: SimNode>(
        plan: &Plan,
        base: Instant,
        mut make: impl FnMut(usize, Instant) -> N,
    ) -> Result<(Sim<N>, Option<Duration>), Livelock> {
        let mut rng = plan.scenario_rng(1);
        let mut sim = Sim::new(plan.seed, base, plan.net.clone());
        let window = plan.join_window.as_nanos() as u64;
        let mut times: Vec<u64> = (1..plan.nodes).map(|_| rng.u64(0..=window)).collect();
        times.sort_unstable();
        let first = make(0, sim.instant());
        sim.add_node(first);
        for (k, t) in times.into_iter().enumerate() {
            sim.run_until(Duration::from_nanos(t))?;
            let node = make(k + 1, sim.instant());
            let i = sim.add_node(node);
            sim.join(i, &[0]);
        }
        let every = check_every(plan.nodes);
        let converged = sim.run_until_cond(plan.converge_timeout, every, Sim::views_converged)?;
        Ok((sim, converged))
    }

    /// Convergence checks are `O(n²)`; check less often in big clusters.
    fn check_every(nodes: usize) -> Duration {
        if nodes > 300 {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(100)
        }
    }

    /// Packets and bytes sent per live node per second over the next `window`.
    pub fn traffic<N: SimNode>(sim: &mut Sim<N>, window: Duration) -> Result<Rate, Livelock> {
        let before = sim.traffic();
        sim.run_for(window)?;
        Ok(rate(sim, sim.traffic().since(before), window))
    }

    fn rate<N: SimNode>(sim: &Sim<N>, t: Traffic, window: Duration) -> Rate {
        let per = sim.live_nodes().len().max(1) as f64 * window.as_secs_f64().max(1e-9);
        Rate {
            msgs: t.packets as f64 / per,
            bytes: t.bytes as f64 / per,
        }
    }

    /// Adds `node` (already built with the next index), joins it through `seed`, and
    /// runs until every live member has it Up or `timeout` passes. Returns the
    /// per-observer delays (observers: the live members at join time).
    pub fn join<N: SimNode>(
        sim: &mut Sim<N>,
        node: N,
        seed: usize,
        timeout: Duration,
    ) -> Result<Latencies, Livelock> {
        let observers = sim.live_nodes();
        let i = sim.add_node(node);
        let start = sim.now();
        sim.join(i, &[seed]);
        let every = check_every(observers.len());
        sim.run_until_cond(timeout, every, |s| {
            observers
                .iter()
                .all(|&o| !s.is_live(o) || s.sees_live(o, i))
        })?;
        let live: Vec<usize> = observers.into_iter().filter(|&o| sim.is_live(o)).collect();
        Ok(sim.first_events(i, start, &[SimEventKind::Up, SimEventKind::Rejoined], &live))
    }

    /// Crashes `victim` and runs until every live member that had it live marks it
    /// Down, or `timeout` passes. Returns the per-observer delays.
    pub fn crash<N: SimNode>(
        sim: &mut Sim<N>,
        victim: usize,
        timeout: Duration,
    ) -> Result<Latencies, Livelock> {
        let observers: Vec<usize> = sim
            .live_nodes()
            .into_iter()
            .filter(|&o| o != victim && sim.sees_live(o, victim))
            .collect();
        sim.crash(victim);
        let start = sim.now();
        let every = Duration::from_millis(100);
        sim.run_until_cond(timeout, every, |s| {
            observers
                .iter()
                .all(|&o| !s.is_live(o) || s.view(o, victim) == Some(SimEventKind::Down))
        })?;
        let live: Vec<usize> = observers.into_iter().filter(|&o| sim.is_live(o)).collect();
        Ok(sim.first_events(victim, start, &[SimEventKind::Down], &live))
    }

    /// Counts Down events in `from..to` whose subject satisfies `counted` and is live
    /// (not crashed, not departed), excluding self-reports.
    pub fn downs<N: SimNode>(
        sim: &Sim<N>,
        from: Duration,
        to: Duration,
        counted: impl Fn(usize) -> bool,
    ) -> FalseDowns {
        let mut pairs = std::collections::BTreeSet::new();
        let mut subjects = std::collections::BTreeSet::new();
        let mut events = 0;
        for e in sim.events_between(from, to) {
            if e.kind == SimEventKind::Down
                && e.observer != e.subject
                && e.subject < sim.len()
                && sim.is_live(e.subject)
                && counted(e.subject)
            {
                events += 1;
                pairs.insert((e.observer, e.subject));
                subjects.insert(e.subject);
            }
        }
        FalseDowns {
            events,
            pairs: pairs.len(),
            subjects: subjects.len(),
        }
    }

    /// Runs `duration` with loss probability `loss` on every link (per-link overrides
    /// untouched), then restores the previous loss. Returns the Downs of live nodes
    /// during the phase and the traffic.
    pub fn lossy<N: SimNode>(
        sim: &mut Sim<N>,
        loss: f64,
        duration: Duration,
    ) -> Result<(FalseDowns, Rate), Livelock> {
        let previous = sim.net().loss;
        sim.set_loss(loss);
        let start = sim.now();
        let rate = traffic(sim, duration)?;
        sim.set_loss(previous);
        Ok((downs(sim, start, sim.now(), |_| true), rate))
    }

    /// What [`slow_node`] observed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SlowOutcome {
        /// The phase that was run.
        pub phase: SlowPhase,
        /// The slow node.
        pub node: usize,
        /// Downs of healthy nodes (every node but the slow one).
        pub healthy: FalseDowns,
        /// Downs of the slow node.
        pub slow: FalseDowns,
        /// Stalls performed.
        pub stalls: usize,
        /// Longest stall.
        pub longest: Duration,
    }

    /// Stalls `node` repeatedly as `phase` says (lengths and gaps drawn from `rng`),
    /// then runs `tail` more without stalls. Counts Downs over the whole time,
    /// separately for healthy nodes and the slow one.
    pub fn slow_node<N: SimNode>(
        sim: &mut Sim<N>,
        node: usize,
        phase: &SlowPhase,
        tail: Duration,
        rng: &mut fastrand::Rng,
    ) -> Result<SlowOutcome, Livelock> {
        let start = sim.now();
        let end = start + phase.duration;
        let uniform = |rng: &mut fastrand::Rng, (lo, hi): (Duration, Duration)| {
            let lo = lo.as_nanos() as u64;
            Duration::from_nanos(rng.u64(lo..=(hi.as_nanos() as u64).max(lo)))
        };
        let mut stalls = 0;
        let mut longest = Duration::ZERO;
        while sim.now() < end {
            let stall = uniform(rng, phase.stall).min(end - sim.now());
            let gap = uniform(rng, phase.gap);
            match phase.kind {
                StallKind::Pause => sim.pause(node, stall),
                StallKind::Receive => sim.stall_receive(node, stall),
            }
            stalls += 1;
            longest = longest.max(stall);
            sim.run_until((sim.now() + stall + gap).min(end))?;
        }
        sim.run_for(tail)?;
        Ok(SlowOutcome {
            phase: *phase,
            node,
            healthy: downs(sim, start, sim.now(), |s| s != node),
            slow: downs(sim, start, sim.now(), |s| s == node),
            stalls,
            longest,
        })
    }

    /// The whole measurement for one implementation: bootstrap, traffic, churn, loss,
    /// slow nodes (see the module docs). `make(index, now)` builds node
    /// `index`.
    pub fn run<N: SimNode>(
        plan: &Plan,
        base: Instant,
        mut make: impl FnMut(usize, Instant) -> N,
    ) -> Result<Report, Livelock> {
        let mut rng = plan.scenario_rng(2);
        let (mut sim, converged) = bootstrap(plan, base, &mut make)?;
        let mut report = Report {
            nodes: plan.nodes,
            bootstrap: converged,
            ..Report::default()
        };
        sim.run_for(plan.settle)?;
        report.traffic = traffic(&mut sim, plan.traffic_window)?;

        for _ in 0..plan.churn {
            let live = sim.live_nodes();
            if live.len() < 3 {
                break;
            }
            let victim = live[rng.usize(..live.len())];
            let lat = crash(&mut sim, victim, plan.spread_timeout)?;
            push_all(&mut report.crash_all, &lat);
            report.crash.merge(&lat);

            let live = sim.live_nodes();
            let seed = live[rng.usize(..live.len())];
            let node = make(sim.len(), sim.instant());
            let lat = join(&mut sim, node, seed, plan.spread_timeout)?;
            push_all(&mut report.join_all, &lat);
            report.join.merge(&lat);
            sim.run_for(plan.churn_gap)?;
        }
        sim.run_for(plan.settle)?;

        let (loss_false, loss_traffic) = lossy(&mut sim, plan.loss, plan.loss_duration)?;
        report.loss_false = loss_false;
        report.loss_traffic = loss_traffic;
        sim.run_for(plan.settle)?;

        for phase in &plan.slow {
            let live = sim.live_nodes();
            let slow = live[rng.usize(..live.len())];
            report
                .slow
                .push(slow_node(&mut sim, slow, phase, plan.settle, &mut rng)?);
        }
        Ok(report)
    }

    fn push_all(all: &mut Latencies, one: &Latencies) {
        match one.all() {
            Some(d) => all.samples.push(d),
            None => all.missing += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request (a packet starting with 0) with a reply (1) and sends a
    /// request to `peer` every 100 ms; logs what it handled, in order.
    struct Echo {
        me: usize,
        peer: usize,
        next: Instant,
        out: Vec<(usize, Vec<u8>)>,
        /// (`'p'` packet or `'t'` timeout, sender or self, first byte, when)
        log: Vec<(char, usize, u8, Instant)>,
    }

    impl Echo {
        fn new(me: usize, peer: usize, now: Instant) -> Self {
            Echo {
                me,
                peer,
                next: now + Duration::from_millis(100),
                out: Vec::new(),
                log: Vec::new(),
            }
        }

        fn count(&self, what: char, byte: u8) -> usize {
            self.log
                .iter()
                .filter(|l| l.0 == what && (what == 't' || l.2 == byte))
                .count()
        }
    }

    impl SimNode for Echo {
        fn handle_packet(&mut self, from: usize, payload: &[u8], now: Instant) -> bool {
            self.log.push(('p', from, payload[0], now));
            if payload[0] == 0 {
                self.out.push((from, vec![1, self.me as u8]));
            }
            true
        }
        fn handle_timeout(&mut self, now: Instant) {
            assert!(now >= self.next, "never woken early");
            self.log.push(('t', self.me, 0, now));
            self.out.push((self.peer, vec![0, self.me as u8]));
            self.next = now + Duration::from_millis(100);
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Some(self.next)
        }
        fn drain(
            &mut self,
            out: &mut Vec<(usize, Vec<u8>)>,
            _events: &mut Vec<(usize, SimEventKind)>,
        ) {
            out.append(&mut self.out);
        }
        fn join(&mut self, _seeds: &[usize], _now: Instant) {}
        fn leave(&mut self, _now: Instant) {}
        fn state_of(&self, _subject: usize) -> Option<State> {
            Some(State::Alive)
        }
    }

    fn pair(seed: u64, net: NetConfig) -> Sim<Echo> {
        let mut sim = Sim::new(seed, Instant::now(), net);
        let now = sim.instant();
        sim.add_node(Echo::new(0, 1, now));
        sim.add_node(Echo::new(1, 0, now));
        sim
    }

    #[test]
    fn requests_are_answered() {
        let mut sim = pair(1, NetConfig::default());
        sim.run_for(Duration::from_secs(10)).unwrap();
        for i in 0..2 {
            let n = sim.node(i);
            assert_eq!(n.count('t', 0), 100);
            // The last request may still be in flight.
            assert!((99..=100).contains(&n.count('p', 1)), "{}", n.count('p', 1));
        }
        assert_eq!(sim.stats(0).sent.packets, sim.stats(1).received.packets + 1);
    }

    #[test]
    fn same_seed_same_run() {
        let run = |seed| {
            let net = NetConfig {
                loss: 0.2,
                duplicate: 0.1,
                ..NetConfig::default()
            };
            let mut sim = pair(seed, net);
            sim.run_for(Duration::from_secs(20)).unwrap();
            let base = sim.base();
            let log: Vec<_> = sim
                .node(0)
                .log
                .iter()
                .map(|l| (l.0, l.1, l.2, l.3 - base))
                .collect();
            (log, sim.traffic())
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn loss_drops_about_the_configured_share() {
        let net = NetConfig {
            loss: 0.3,
            ..NetConfig::default()
        };
        let mut sim = pair(9, net);
        sim.run_for(Duration::from_secs(100)).unwrap();
        let sent = sim.stats(0).sent.packets as f64;
        let dropped = sim.stats(0).dropped as f64;
        assert!(
            (0.25..0.35).contains(&(dropped / sent)),
            "{}",
            dropped / sent
        );
    }

    #[test]
    fn partition_blocks_and_heal_restores() {
        let mut sim = pair(2, NetConfig::default());
        sim.partition(&[&[0]]);
        sim.run_for(Duration::from_secs(1)).unwrap();
        assert_eq!(sim.node(0).count('p', 0) + sim.node(1).count('p', 0), 0);
        sim.heal();
        sim.run_for(Duration::from_secs(1)).unwrap();
        assert!(sim.node(0).count('p', 0) > 0);
    }

    #[test]
    fn crashed_node_stops_and_drops() {
        let mut sim = pair(3, NetConfig::default());
        sim.run_for(Duration::from_millis(550)).unwrap();
        sim.crash(1);
        let before = sim.node(1).log.len();
        sim.run_for(Duration::from_secs(2)).unwrap();
        assert_eq!(sim.node(1).log.len(), before);
        assert!(sim.stats(0).dropped >= 19);
        assert_eq!(sim.live_nodes(), vec![0]);
    }

    #[test]
    fn paused_node_handles_backlog_at_resume() {
        for order in [
            ResumeOrder::TimersFirst,
            ResumeOrder::PacketsFirst,
            ResumeOrder::Interleaved,
        ] {
            let net = NetConfig {
                resume_order: order,
                ..NetConfig::default()
            };
            let mut sim = pair(4, net);
            sim.run_for(Duration::from_millis(150)).unwrap();
            sim.pause(1, Duration::from_secs(1));
            let resume = sim.instant() + Duration::from_secs(1);
            let before = sim.node(1).log.len();
            sim.run_for(Duration::from_millis(999)).unwrap();
            assert_eq!(sim.node(1).log.len(), before, "{order:?}: frozen");
            sim.run_for(Duration::from_millis(2)).unwrap();
            let at_resume: Vec<_> = sim.node(1).log[before..]
                .iter()
                .filter(|l| l.3 == resume)
                .map(|l| l.0)
                .collect();
            // Ten requests queued (node 1 sent none, so no replies), one overdue timeout.
            assert_eq!(
                at_resume.iter().filter(|&&c| c == 't').count(),
                1,
                "{order:?}"
            );
            assert_eq!(at_resume.len(), 11, "{order:?}: {at_resume:?}");
            match order {
                ResumeOrder::TimersFirst => assert_eq!(at_resume[0], 't'),
                ResumeOrder::PacketsFirst => assert_eq!(*at_resume.last().unwrap(), 't'),
                ResumeOrder::Interleaved => {}
            }
            // Queued packets are handled in arrival order: requests carry no sequence
            // number, but every queued packet was sent by node 0.
            assert!(
                sim.node(1).log[before..]
                    .iter()
                    .all(|l| l.0 == 't' || l.1 == 0)
            );
        }
    }

    #[test]
    fn receive_stall_queues_packets_but_not_timers() {
        let mut sim = pair(6, NetConfig::default());
        sim.run_for(Duration::from_millis(150)).unwrap();
        sim.stall_receive(1, Duration::from_secs(1));
        let end = sim.instant() + Duration::from_secs(1);
        let before = sim.node(1).log.len();
        sim.run_for(Duration::from_millis(999)).unwrap();
        let during: Vec<char> = sim.node(1).log[before..].iter().map(|l| l.0).collect();
        assert_eq!(during, vec!['t'; 10], "timers keep firing, packets wait");
        // Its requests went out and node 0 answered them.
        assert!(sim.node(0).count('p', 0) >= 10);
        sim.run_for(Duration::from_millis(2)).unwrap();
        let at_end = sim
            .node(1)
            .log
            .iter()
            .filter(|l| l.3 == end && l.0 == 'p')
            .count();
        assert!(
            at_end >= 19,
            "ten requests and the replies handled at once: {at_end}"
        );
        assert_eq!(sim.status(1), NodeStatus::Running);
    }

    #[test]
    fn spinning_node_is_reported_as_livelock() {
        struct Spin(Instant);
        impl SimNode for Spin {
            fn handle_packet(&mut self, _: usize, _: &[u8], _: Instant) -> bool {
                true
            }
            fn handle_timeout(&mut self, _now: Instant) {}
            fn poll_timeout(&self) -> Option<Instant> {
                Some(self.0)
            }
            fn drain(
                &mut self,
                out: &mut Vec<(usize, Vec<u8>)>,
                _: &mut Vec<(usize, SimEventKind)>,
            ) {
                out.push((0, vec![0]));
            }
            fn join(&mut self, _: &[usize], _: Instant) {}
            fn leave(&mut self, _: Instant) {}
            fn state_of(&self, _: usize) -> Option<State> {
                None
            }
        }
        let net = NetConfig {
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            event_budget: 10,
            ..NetConfig::default()
        };
        let base = Instant::now();
        let mut sim = Sim::new(0, base, net);
        sim.add_node(Spin(base));
        let err = sim.run_for(Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.at, Duration::ZERO);
    }

    #[test]
    fn summary_uses_nearest_rank() {
        let l = Latencies {
            samples: (1..=100).map(Duration::from_millis).collect(),
            missing: 0,
        };
        let s = l.summary().unwrap();
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(l.all(), Some(Duration::from_millis(100)));
    }
}
