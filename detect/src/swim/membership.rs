//! Applying membership news (SWIM §4.2): incarnation numbers, the alive → suspect →
//! down transitions, refutation, suspicion timeouts with Lifeguard's confirmations
//! (§4.3), and bounded memory for down and departed members.

use std::time::Instant;

use super::id::NodeId;
use super::lifeguard::Suspicion;
use super::member::{Claim, Member, State, overrides};
use super::wire::Update;
use super::{Event, Swim};

impl<N: NodeId> Swim<N> {
    // ---- suspicion (SWIM §4.2, Lifeguard §4.3) ----

    pub(super) fn expire_suspicions(&mut self, now: Instant) {
        while let Some((at, node)) = self.suspicions.first().cloned() {
            if now < at {
                break;
            }
            self.suspicions.pop_first();
            let Some(m) = self.members.get(&node) else {
                continue;
            };
            if m.state != State::Suspect {
                continue;
            }
            let update = Update::Down {
                node,
                incarnation: m.incarnation,
                by: self.me.clone(),
            };
            self.apply(update, now);
        }
    }

    fn start_suspicion(&mut self, node: &N, by: N, now: Instant) -> Suspicion<N> {
        let n = self.live + 1;
        let min = self.config.min_suspicion_timeout(n);
        let (max, k) = if self.config.lifeguard {
            let k = self.config.suspicion_mult.saturating_sub(2);
            let k = if (n as u64) < u64::from(k) + 2 { 0 } else { k };
            (
                min.saturating_mul(self.config.suspicion_max_timeout_mult),
                k,
            )
        } else {
            (min, 0)
        };
        let s = Suspicion::new(by, now, min, max, k);
        self.suspicions.insert((s.deadline(), node.clone()));
        s
    }

    // ---- membership (SWIM §4.2) ----

    pub(super) fn self_alive(&self) -> Update<N> {
        Update::Alive {
            node: self.me.clone(),
            incarnation: self.incarnation,
        }
    }

    /// Someone claims this node is suspect, down or gone at `incarnation`: refute with a
    /// higher one (SWIM §4.2). Lifeguard §4.1: being suspected hints that we are the
    /// slow one.
    fn refute(&mut self, incarnation: u32) {
        if self.left || incarnation < self.incarnation {
            self.counters.stale_updates += 1;
            return;
        }
        self.incarnation = incarnation.saturating_add(1);
        self.counters.refutations += 1;
        self.awareness.apply(1);
        self.broadcasts.push(self.self_alive());
    }

    /// Applies one piece of news, wherever it came from (piggybacked, a packet's header,
    /// a whole view, our own probe), and passes on whatever changed our view. News of new
    /// members learned from a whole view is passed on too, as memberlist's push-pull
    /// merge does: it is what makes a burst of joins reach everyone.
    pub(super) fn apply(&mut self, update: Update<N>, now: Instant) {
        if *update.node() == self.me {
            match update {
                Update::Alive { incarnation, .. } => {
                    // An older life of ours at a higher incarnation: outbid it.
                    if incarnation > self.incarnation {
                        self.refute(incarnation);
                    }
                }
                Update::Suspect { incarnation, .. }
                | Update::Down { incarnation, .. }
                | Update::Left { incarnation, .. } => self.refute(incarnation),
            }
            return;
        }
        let (claim, incarnation) = match &update {
            Update::Alive { incarnation, .. } => (Claim::Alive, *incarnation),
            Update::Suspect { incarnation, .. } => (Claim::Suspect, *incarnation),
            Update::Down { incarnation, .. } => (Claim::Down, *incarnation),
            Update::Left { incarnation, .. } => (Claim::Left, *incarnation),
        };
        let node = update.node().clone();
        let Some(member) = self.members.get(&node) else {
            // Only an alive member can be new; news of the suspicion or death of a
            // stranger is ignored, as in memberlist.
            if claim == Claim::Alive {
                self.insert_alive(node.clone(), incarnation, now);
                self.events.push_back(Event::Up(node));
                self.broadcasts.push(update);
            } else {
                self.counters.stale_updates += 1;
            }
            return;
        };
        let (state, held) = (member.state, member.incarnation);
        if !overrides(claim, incarnation, state, held) {
            // The same incarnation suspected again by someone else: a confirmation.
            if let (Update::Suspect { by, .. }, State::Suspect) = (&update, state) {
                if incarnation == held {
                    self.confirm_suspicion(&node, by.clone(), &update);
                    return;
                }
            }
            self.counters.stale_updates += 1;
            return;
        }
        match &update {
            Update::Alive { .. } => {
                let was = state;
                self.clear_suspicion(&node);
                let m = self.members.get_mut(&node).expect("present");
                m.incarnation = incarnation;
                m.state = State::Alive;
                m.by = None;
                match was {
                    State::Alive => {}
                    State::Suspect => {
                        m.since = now;
                        self.events.push_back(Event::Up(node.clone()));
                    }
                    State::Down | State::Left => {
                        let gone_since = std::mem::replace(&mut m.since, now);
                        self.gone.remove(&(gone_since, node.clone()));
                        self.live += 1;
                        self.order.insert(node.clone(), &mut self.rng);
                        self.events.push_back(Event::Rejoined(node.clone()));
                    }
                }
            }
            Update::Suspect { by, .. } => {
                self.clear_suspicion(&node);
                let suspicion = self.start_suspicion(&node, by.clone(), now);
                let m = self.members.get_mut(&node).expect("present");
                m.incarnation = incarnation;
                m.by = Some(by.clone());
                m.suspicion = Some(suspicion);
                if state == State::Alive {
                    m.state = State::Suspect;
                    m.since = now;
                    self.events.push_back(Event::Suspect {
                        node: node.clone(),
                        by: by.clone(),
                    });
                }
            }
            Update::Down { by, .. } => {
                self.mark_gone(&node, State::Down, incarnation, Some(by.clone()), now);
                self.events.push_back(Event::Down {
                    node: node.clone(),
                    by: by.clone(),
                });
            }
            Update::Left { .. } => {
                self.mark_gone(&node, State::Left, incarnation, None, now);
                self.events.push_back(Event::Left(node.clone()));
            }
        }
        self.broadcasts.push(update);
    }

    fn confirm_suspicion(&mut self, node: &N, by: N, update: &Update<N>) {
        let Some(m) = self.members.get_mut(node) else {
            return;
        };
        let Some(s) = &mut m.suspicion else { return };
        let before = s.deadline();
        if s.confirm(by) {
            let after = s.deadline();
            self.suspicions.remove(&(before, node.clone()));
            self.suspicions.insert((after, node.clone()));
            // Pass the confirmation on, so others can count it too (memberlist).
            self.broadcasts.push(update.clone());
        }
    }

    fn clear_suspicion(&mut self, node: &N) {
        if let Some(m) = self.members.get_mut(node) {
            if let Some(s) = m.suspicion.take() {
                self.suspicions.remove(&(s.deadline(), node.clone()));
            }
        }
    }

    fn insert_alive(&mut self, node: N, incarnation: u32, now: Instant) {
        self.members.insert(
            node.clone(),
            Member {
                state: State::Alive,
                incarnation,
                by: None,
                suspicion: None,
                since: now,
            },
        );
        self.live += 1;
        self.order.insert(node, &mut self.rng);
    }

    fn mark_gone(&mut self, node: &N, state: State, incarnation: u32, by: Option<N>, now: Instant) {
        self.clear_suspicion(node);
        let m = self.members.get_mut(node).expect("present");
        let was_live = m.state.is_live();
        if !was_live {
            self.gone.remove(&(m.since, node.clone()));
        }
        m.state = state;
        m.incarnation = incarnation;
        m.by = by;
        m.since = now;
        self.gone.insert((now, node.clone()));
        if was_live {
            self.live -= 1;
            self.order.remove(node);
            if self.probe.as_ref().is_some_and(|p| p.target == *node) {
                self.probe = None;
            }
        }
        while self.gone.len() > self.config.max_down_members {
            let (_, oldest) = self.gone.pop_first().expect("non-empty");
            self.members.remove(&oldest);
            self.counters.forgotten += 1;
        }
    }

    pub(super) fn forget_gone(&mut self, now: Instant) {
        while let Some((since, _)) = self.gone.first() {
            if now.saturating_duration_since(*since) < self.config.down_retention {
                break;
            }
            let (_, node) = self.gone.pop_first().expect("non-empty");
            self.members.remove(&node);
            self.counters.forgotten += 1;
        }
    }

    /// What this node holds about `node`, as an update.
    pub(super) fn entry(&self, node: &N) -> Option<Update<N>> {
        let m = self.members.get(node)?;
        let (node, incarnation) = (node.clone(), m.incarnation);
        let by = || m.by.clone().unwrap_or_else(|| self.me.clone());
        Some(match m.state {
            State::Alive => Update::Alive { node, incarnation },
            State::Suspect => Update::Suspect {
                node,
                incarnation,
                by: by(),
            },
            State::Down => Update::Down {
                node,
                incarnation,
                by: by(),
            },
            State::Left => Update::Left { node, incarnation },
        })
    }
}
