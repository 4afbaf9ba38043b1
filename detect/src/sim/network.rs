//! The emulator: virtual time, the event queue, nodes that run, pause, stall or
//! crash, and the network between them (latency, loss, duplication, partitions).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::config::check_probability;
use super::{
    MembershipEvent, NetworkConfig, NodeStats, ResumeOrder, SimConfigError, SimEventKind, SimNode,
};

/// The latest virtual time a run reaches: 100 years (of 365 days). Durations given to
/// [`Sim::pause`], [`Sim::stall_receive`], [`Sim::run_for`] and
/// [`Sim::run_until_cond`] end there at the latest, and [`Sim::run_until`] stops
/// there, so the base `Instant` plus virtual time (plus at most
/// [`NetworkConfig::MAX_LATENCY`] in flight) never overflows.
pub const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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

/// A `run_*` call processed more events than [`NetworkConfig::event_budget`] allows: some
/// node is probably spinning (a timer that re-arms in the past, a packet storm). The
/// simulation stopped at `at`; its state is intact and inspectable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

// The `pub(super)` fields here and on `Sim` feed the record and its queries in `stats`.
pub(super) struct Slot<N> {
    pub(super) node: N,
    status: NodeStatus,
    departed: bool,
    inbox: VecDeque<(usize, Vec<u8>)>,
    /// Bumped whenever the node's wake-up is re-armed; stale `Wake`s carry an old one.
    timer_generation: u64,
    armed: Option<Duration>,
    group: u32,
    pub(super) stats: NodeStats,
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
    pub(super) now: Duration,
    rng: fastrand::Rng,
    net: NetworkConfig,
    pub(super) slots: Vec<Slot<N>>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    link_loss: BTreeMap<(usize, usize), f64>,
    pub(super) events: Vec<MembershipEvent>,
    pub(super) views: Vec<Vec<Option<SimEventKind>>>,
    out_buf: Vec<(usize, Vec<u8>)>,
    event_buf: Vec<(usize, SimEventKind)>,
    processed: u64,
}

impl<N: SimNode> Sim<N> {
    /// An empty simulation at virtual time zero over the network `net`. `seed` drives
    /// every network decision; `base` is what time zero means to the nodes (pass
    /// `Instant::now()` from a test or a program; the simulator never reads the clock).
    /// The argument order (config, then seed) is the suite's for every simulator.
    ///
    /// # Errors
    ///
    /// A field of `net` out of its limits ([`NetworkConfig::validate`]); nothing was built.
    pub fn new(net: NetworkConfig, seed: u64, base: Instant) -> Result<Self, SimConfigError> {
        net.validate()?;
        Ok(Sim {
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
        })
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
    pub fn net(&self) -> &NetworkConfig {
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
        let until = self.later(duration);
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
        let until = self.later(duration);
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
    ///
    /// # Errors
    ///
    /// `p` is not in `[0, 1]`; nothing changed.
    pub fn set_loss(&mut self, p: f64) -> Result<(), SimConfigError> {
        check_probability("loss", p)?;
        self.net.loss = p;
        Ok(())
    }

    /// Overrides the loss probability of the directed link `from → to`.
    ///
    /// # Errors
    ///
    /// `p` is not in `[0, 1]`; nothing changed.
    pub fn set_link_loss(&mut self, from: usize, to: usize, p: f64) -> Result<(), SimConfigError> {
        check_probability("link loss", p)?;
        self.link_loss.insert((from, to), p);
        Ok(())
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

    /// Runs every event due up to `deadline` (virtual, at most [`MAX_VIRTUAL_TIME`]),
    /// then sets the clock to it. Fails if the run exceeds [`NetworkConfig::event_budget`].
    pub fn run_until(&mut self, deadline: Duration) -> Result<(), Livelock> {
        let deadline = deadline.min(MAX_VIRTUAL_TIME);
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
        self.run_until(self.later(duration))
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
        let deadline = self.later(timeout);
        let every = every.max(Duration::from_nanos(1));
        loop {
            if done(self) {
                return Ok(Some(self.now));
            }
            if self.now >= deadline {
                return Ok(None);
            }
            self.run_until(self.later(every).min(deadline))?;
        }
    }

    /// Events processed since the simulation started.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    // ---- internals ----

    /// `now + d`, capped at [`MAX_VIRTUAL_TIME`]: no duration a caller passes can
    /// overflow virtual time, or the `Instant`s handed to the nodes.
    fn later(&self, d: Duration) -> Duration {
        self.now.saturating_add(d).min(MAX_VIRTUAL_TIME)
    }

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
            let at = self.now.saturating_add(self.latency());
            self.push(
                at,
                Action::Deliver {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
        }
        let at = self.now.saturating_add(self.latency());
        self.push(at, Action::Deliver { from, to, payload });
    }

    fn latency(&mut self) -> Duration {
        let lo = self.net.latency_min.as_nanos() as u64;
        let hi = (self.net.latency_max.as_nanos() as u64).max(lo);
        Duration::from_nanos(self.rng.u64(lo..=hi))
    }
}

#[cfg(test)]
mod tests;
