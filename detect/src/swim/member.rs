//! Member states and the precedence of news about them (SWIM §4.2).

use std::time::Instant;

use super::lifeguard::Suspicion;

/// What this node believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Answering probes, or not yet suspected.
    Alive,
    /// Missed a probe; declared down unless it refutes before the suspicion times out.
    Suspect,
    /// Declared failed. It can come back only with a higher incarnation.
    Down,
    /// Left the cluster on purpose.
    Left,
}

impl State {
    /// Alive or suspect: still a member, probed and gossiped to.
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }
}

/// The kind of a piece of news, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    Alive,
    Suspect,
    Down,
    Left,
}

/// Whether news `claim` at `incarnation` overrides what we hold, `(state, held)`
/// (SWIM §4.2, with memberlist's rules for down and left members):
/// - alive wins only with a higher incarnation, whatever the state;
/// - suspect wins over alive at the same or a higher incarnation, and over suspect at a
///   higher one (the same incarnation is a confirmation, not an override);
/// - down and left win over alive and suspect at the same or a higher incarnation;
///   left also over down (a departure explains the silence), never the reverse.
pub(crate) fn overrides(claim: Claim, incarnation: u32, state: State, held: u32) -> bool {
    match (claim, state) {
        (Claim::Alive, _) => incarnation > held,
        (Claim::Suspect, State::Alive) => incarnation >= held,
        (Claim::Suspect, State::Suspect) => incarnation > held,
        (Claim::Suspect, State::Down | State::Left) => false,
        (Claim::Down | Claim::Left, State::Alive | State::Suspect) => incarnation >= held,
        (Claim::Left, State::Down) => incarnation >= held,
        (Claim::Down, State::Down | State::Left) | (Claim::Left, State::Left) => false,
    }
}

/// One member's record.
#[derive(Debug, Clone)]
pub(crate) struct Member<N> {
    pub(crate) state: State,
    pub(crate) incarnation: u32,
    /// Who first suspected, or declared down, the current incarnation.
    pub(crate) by: Option<N>,
    pub(crate) suspicion: Option<Suspicion<N>>,
    /// When the member entered its current state.
    pub(crate) since: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The precedence table, row by row (SWIM §4.2).
    #[test]
    fn precedence_table() {
        use Claim as C;
        use State as S;
        let cases = [
            (C::Alive, 2, S::Alive, 1, true),
            (C::Alive, 1, S::Alive, 1, false),
            (C::Alive, 2, S::Suspect, 1, true),
            (C::Alive, 1, S::Suspect, 1, false),
            (C::Alive, 2, S::Down, 1, true),
            (C::Alive, 1, S::Down, 1, false),
            (C::Alive, 2, S::Left, 1, true),
            (C::Suspect, 1, S::Alive, 1, true),
            (C::Suspect, 0, S::Alive, 1, false),
            (C::Suspect, 1, S::Suspect, 1, false),
            (C::Suspect, 2, S::Suspect, 1, true),
            (C::Suspect, 9, S::Down, 1, false),
            (C::Down, 1, S::Alive, 1, true),
            (C::Down, 0, S::Alive, 1, false),
            (C::Down, 1, S::Suspect, 1, true),
            (C::Down, 9, S::Down, 1, false),
            (C::Down, 9, S::Left, 1, false),
            (C::Left, 1, S::Alive, 1, true),
            (C::Left, 1, S::Down, 1, true),
            (C::Left, 0, S::Down, 1, false),
            (C::Left, 9, S::Left, 1, false),
        ];
        for (claim, inc, state, held, expected) in cases {
            assert_eq!(
                overrides(claim, inc, state, held),
                expected,
                "{claim:?}@{inc} over {state:?}@{held}"
            );
        }
    }
}
