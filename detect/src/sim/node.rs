//! The node adapter: what the simulator needs from a membership state machine, and
//! [`Swim<u32>`](crate::Swim) behind it.

use std::time::Instant;

use crate::{Event, State, Swim};

/// A protocol state machine the simulator can drive, addressed by node index.
///
/// The simulator calls one input method (`handle_packet`, `handle_timeout`, `join`,
/// `leave`), then [`drain`](SimNode::drain)s what it produced, then asks for the next
/// [`poll_timeout`](SimNode::poll_timeout). Implementations map their own node ids to
/// indices (`0..` in the order nodes were added to the [`Sim`]).
///
/// [`Sim`]: super::Sim
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

    fn leave(&mut self, _now: Instant) {
        // SWIM leaves without reading time; other adapters (foca's) may need it.
        Swim::leave(self);
    }

    fn state_of(&self, subject: usize) -> Option<State> {
        let id = u32::try_from(subject).ok()?;
        Swim::state_of(self, &id)
    }
}
