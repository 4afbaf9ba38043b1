//! Machinery for sections 1 and 2: a process of the seed run with its three
//! logical clocks and its own skewed physical clock, and the stamped events
//! and messages it produces.

use std::cmp::Ordering;
use std::sync::Arc;

use dsys_clocks::{
    Hlc, LamportClock, ManualClock, PhysicalClock, Timestamp, VectorClock, WallTime,
};

use crate::report::Res;

/// The seed's processes, in vector order.
pub(super) const NODES: [&str; 3] = ["A", "B", "C"];

/// A's physical clock at the start of the run, in ms since the epoch.
pub(super) const A_START_MS: u64 = 10_000;

/// One process of the seed scenario with its three logical clocks and its own
/// (skewed) physical clock.
pub(super) struct Process {
    pub(super) name: &'static str,
    /// How far this process's physical clock is from A's, in ms.
    pub(super) skew_ms: i64,
    pub(super) physical: Arc<ManualClock>,
    vector: VectorClock<&'static str>,
    lamport: LamportClock,
    pub(super) hlc: Hlc<Arc<ManualClock>>,
}

/// What a message carries: one stamp per clock.
pub(super) struct Message {
    vector: VectorClock<&'static str>,
    lamport: u64,
    hlc: Timestamp,
}

/// One stamped event.
pub(super) struct Event {
    pub(super) name: &'static str,
    pub(super) process: &'static str,
    pub(super) description: &'static str,
    pub(super) vector: VectorClock<&'static str>,
    pub(super) lamport: u64,
    pub(super) hlc: Timestamp,
    /// The process's physical clock when the event happened, in ms.
    pub(super) physical_ms: u64,
}

impl Process {
    pub(super) fn new(name: &'static str, skew_ms: i64) -> Self {
        let physical = Arc::new(ManualClock::new(WallTime::from_millis(
            A_START_MS.saturating_add_signed(skew_ms),
        )));
        Self {
            name,
            skew_ms,
            hlc: Hlc::new(Arc::clone(&physical)),
            physical,
            vector: VectorClock::new(),
            lamport: LamportClock::new(),
        }
    }

    fn stamp(&self, name: &'static str, description: &'static str) -> Event {
        Event {
            name,
            process: self.name,
            description,
            vector: self.vector.clone(),
            lamport: self.lamport.time(),
            hlc: self.hlc.last(),
            physical_ms: self.physical.now().as_millis(),
        }
    }

    /// A local event: every clock counts it.
    pub(super) fn local(&mut self, name: &'static str, description: &'static str) -> Res<Event> {
        self.vector.increment(&self.name)?;
        self.lamport.tick()?;
        self.hlc.now()?;
        Ok(self.stamp(name, description))
    }

    /// A send: every clock counts it, and the message carries the stamps.
    pub(super) fn send(
        &mut self,
        name: &'static str,
        description: &'static str,
    ) -> Res<(Event, Message)> {
        self.vector.increment(&self.name)?;
        let message = Message {
            lamport: self.lamport.send()?,
            hlc: self.hlc.now()?,
            vector: self.vector.clone(),
        };
        Ok((self.stamp(name, description), message))
    }

    /// A receive: every clock merges the message's stamp first.
    pub(super) fn receive(
        &mut self,
        name: &'static str,
        description: &'static str,
        message: &Message,
    ) -> Res<Event> {
        self.vector.receive(&self.name, &message.vector)?;
        self.lamport.receive(message.lamport)?;
        self.hlc.update(message.hlc)?;
        Ok(self.stamp(name, description))
    }
}

/// `[A, B, C]` counters, zeros included, as the seed writes them.
pub(super) fn as_array(clock: &VectorClock<&'static str>) -> [u64; 3] {
    NODES.map(|node| clock.get(&node))
}

/// `[a,b,c]`, as the seed writes a vector.
pub(super) fn seed_vector(clock: &VectorClock<&'static str>) -> String {
    let [a, b, c] = as_array(clock);
    format!("[{a},{b},{c}]")
}

/// Which of two events a scalar clock puts first.
pub(super) fn says<T: Ord>(x: &Event, y: &Event, sx: T, sy: T) -> String {
    match sx.cmp(&sy) {
        Ordering::Less => format!("{} first", x.name),
        Ordering::Greater => format!("{} first", y.name),
        Ordering::Equal => "tie".to_owned(),
    }
}

/// The largest distance between two processes' physical clocks, in ms.
pub(super) fn max_skew_ms(processes: &[Process]) -> u64 {
    let skews = processes.iter().map(|p| p.skew_ms);
    let (min, max) = (skews.clone().min(), skews.max());
    min.zip(max).map_or(0, |(min, max)| max.abs_diff(min))
}
