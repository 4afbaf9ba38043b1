//! The SWIM machinery of section 3: the schedule of what happens to the
//! cluster, a member adapter that keeps its own events (`by` included) for the
//! simulator, and the run that builds the cluster and replays the incident.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dsys_detect::sim::{NetworkConfig, Sim, SimEventKind, SimNode, Traffic};
use dsys_detect::{Event, State, Swim, SwimConfig};

use super::{
    CONVERGE_LIMIT, CRASH_AT, CRASHED, FREEZE, FREEZES_AFTER_CRASH, NODES, RUN_AFTER_CRASH,
    SIM_SEED, SLOW,
};
use crate::report::Res;

/// When things happen to the cluster, in virtual time.
pub(super) struct Schedule {
    pub(super) crash: Duration,
    /// `(start, end)` of each freeze.
    pub(super) freezes: [(Duration, Duration); 2],
    pub(super) end: Duration,
}

impl Schedule {
    pub(super) fn starting(crash: Duration) -> Self {
        Self {
            crash,
            freezes: FREEZES_AFTER_CRASH.map(|after| (crash + after, crash + after + FREEZE)),
            end: crash + RUN_AFTER_CRASH,
        }
    }

    /// Whether the slow member woke up at `at`.
    pub(super) fn wakes_at(&self, at: Duration) -> bool {
        self.freezes.iter().any(|&(_, end)| end == at)
    }
}

/// What a member reported, with the virtual time it reported it at.
#[derive(Debug, Clone)]
pub(super) enum Report {
    /// A membership event, with its `by` (the simulator's own record keeps
    /// only the kind).
    Event(Event<u32>),
    /// The member raised its own incarnation: it refuted news of its failure.
    Refuted { incarnation: u32, health: u32 },
}

/// A SWIM member in the simulator that keeps its own events, `by` included.
pub(super) struct Watched {
    pub(super) swim: Swim<u32>,
    pub(super) base: Instant,
    /// The `now` of the input being handled; its outputs are drained right
    /// after it.
    pub(super) now: Instant,
    pub(super) incarnation: u32,
    pub(super) reports: Vec<(Duration, Report)>,
}

impl SimNode for Watched {
    fn handle_packet(&mut self, from: usize, payload: &[u8], now: Instant) -> bool {
        self.now = now;
        SimNode::handle_packet(&mut self.swim, from, payload, now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        SimNode::handle_timeout(&mut self.swim, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        SimNode::poll_timeout(&self.swim)
    }

    fn drain(&mut self, out: &mut Vec<(usize, Vec<u8>)>, events: &mut Vec<(usize, SimEventKind)>) {
        let at = self.now.saturating_duration_since(self.base);
        while let Some(transmit) = self.swim.poll_transmit() {
            out.push((transmit.to as usize, transmit.payload));
        }
        while let Some(event) = self.swim.poll_event() {
            let (subject, kind) = what(&event);
            events.push((subject as usize, kind));
            self.reports.push((at, Report::Event(event)));
        }
        if self.swim.incarnation() > self.incarnation {
            self.incarnation = self.swim.incarnation();
            self.reports.push((
                at,
                Report::Refuted {
                    incarnation: self.incarnation,
                    health: self.swim.health_score(),
                },
            ));
        }
    }

    fn join(&mut self, seeds: &[usize], now: Instant) {
        self.now = now;
        SimNode::join(&mut self.swim, seeds, now);
    }

    fn leave(&mut self, now: Instant) {
        self.now = now;
        SimNode::leave(&mut self.swim, now);
    }

    fn state_of(&self, subject: usize) -> Option<State> {
        SimNode::state_of(&self.swim, subject)
    }
}

/// An event's subject and kind.
pub(super) fn what(event: &Event<u32>) -> (u32, SimEventKind) {
    match event {
        Event::Up(node) => (*node, SimEventKind::Up),
        Event::Suspect { node, .. } => (*node, SimEventKind::Suspect),
        Event::Down { node, .. } => (*node, SimEventKind::Down),
        Event::Left(node) => (*node, SimEventKind::Left),
        Event::Rejoined(node) => (*node, SimEventKind::Rejoined),
    }
}

/// An event's accuser: `by` of Suspect and Down.
pub(super) fn accuser(event: &Event<u32>) -> Option<u32> {
    match event {
        Event::Suspect { by, .. } | Event::Down { by, .. } => Some(*by),
        _ => None,
    }
}

/// The cluster after the story, and what its members reported.
pub(super) struct Story {
    pub(super) sim: Sim<Watched>,
    pub(super) schedule: Schedule,
    pub(super) converged: Duration,
    /// `(at, observer, report)` from the crash on, in time order (members
    /// in id order within an instant).
    pub(super) reports: Vec<(Duration, u32, Report)>,
    /// Packets and bytes a member sent per second, before the crash and
    /// from the crash to the end.
    pub(super) steady: (f64, f64),
    pub(super) incident: (f64, f64),
}

impl Story {
    pub(super) fn run(base: Instant, config: &SwimConfig, net: NetworkConfig) -> Res<Self> {
        let mut sim = Sim::new(net, SIM_SEED, base)?;
        for id in 0..NODES {
            let swim = Swim::new(
                id,
                config.clone(),
                SIM_SEED * 1000 + u64::from(id),
                sim.instant(),
            )?;
            let index = sim.add_node(Watched {
                swim,
                base,
                now: sim.instant(),
                incarnation: 0,
                reports: Vec::new(),
            });
            if index > 0 {
                sim.join(index, &[0]);
            }
        }
        let converged = sim
            .run_until_cond(
                CONVERGE_LIMIT,
                Duration::from_millis(100),
                Sim::<Watched>::states_converged,
            )?
            .ok_or("the members find each other")?;
        let schedule =
            Schedule::starting(CRASH_AT.max(Duration::from_secs(converged.as_secs() + 4)));

        let window = Duration::from_secs(3);
        sim.run_until(schedule.crash - window)?;
        let before = sim.traffic();
        sim.run_until(schedule.crash)?;
        let steady = rate(sim.traffic().since(before), NODES, window);

        let before = sim.traffic();
        sim.crash(CRASHED as usize);
        for (start, end) in schedule.freezes {
            sim.run_until(start)?;
            sim.pause(SLOW as usize, end - start);
        }
        sim.run_until(schedule.end)?;
        let incident = rate(
            sim.traffic().since(before),
            NODES - 1,
            schedule.end - schedule.crash,
        );

        let mut reports = Vec::new();
        for id in 0..NODES {
            for (at, report) in &sim.node(id as usize).reports {
                if *at >= schedule.crash {
                    reports.push((*at, id, report.clone()));
                }
            }
        }
        reports.sort_by_key(|(at, observer, _)| (*at, *observer));
        Ok(Self {
            sim,
            schedule,
            converged,
            reports,
            steady,
            incident,
        })
    }

    /// The membership events, with their observers.
    pub(super) fn events(&self) -> impl Iterator<Item = (Duration, u32, &Event<u32>)> + '_ {
        self.reports
            .iter()
            .filter_map(|(at, observer, report)| match report {
                Report::Event(event) => Some((*at, *observer, event)),
                Report::Refuted { .. } => None,
            })
    }

    /// For each member, its first report of `kind` about `subject`: when,
    /// and whom it named.
    pub(super) fn first(
        &self,
        subject: u32,
        kind: SimEventKind,
    ) -> BTreeMap<u32, (Duration, Option<u32>)> {
        let mut first = BTreeMap::new();
        for (at, observer, event) in self.events() {
            if what(event) == (subject, kind) {
                first.entry(observer).or_insert((at, accuser(event)));
            }
        }
        first
    }

    /// Members other than `subject` that can report on it: all but it and the
    /// crashed member.
    pub(super) fn others(subject: u32) -> usize {
        NODES as usize - 1 - usize::from(subject != CRASHED)
    }

    /// The healthy members that somebody suspected or declared Down.
    pub(super) fn wrongly_accused(&self) -> BTreeSet<u32> {
        self.events()
            .filter(|(_, _, event)| accuser(event).is_some())
            .map(|(_, _, event)| what(event).0)
            .filter(|&subject| subject != CRASHED && subject != SLOW)
            .collect()
    }
}

/// The shortest a suspicion lasts in this cluster: `suspicion_mult x log10 n`
/// protocol periods (memberlist's `suspicionTimeout`, SWIM section 4.2).
pub(super) fn min_suspicion(config: &SwimConfig) -> Duration {
    config
        .probe_interval
        .mul_f64(f64::from(config.suspicion_mult) * f64::from(NODES).log10())
}

/// Packets and bytes per member per second.
pub(super) fn rate(traffic: Traffic, members: u32, over: Duration) -> (f64, f64) {
    let per = f64::from(members) * over.as_secs_f64();
    (traffic.packets as f64 / per, traffic.bytes as f64 / per)
}
