//! The chapter's network for sections 1 to 5: every replica ships, then messages are
//! delivered in a fixed order (replica, then send order) until none is left, across the
//! cut and duplicated links of the script. The same network drives the CRDT replicas and
//! the plain-integer replicas of section 2.

use super::script::{Net, ROUNDS};
use crate::report::Res;

/// One replica in the chapter's network.
pub(super) trait Peer {
    /// What goes over the wire.
    type Msg: Clone;
    /// The round's sync begins: queue what to send.
    fn ship(&mut self);
    /// The next message to send, and to which replica.
    fn poll(&mut self) -> Option<(usize, Self::Msg)>;
    /// A message from replica `from` arrives.
    fn receive(&mut self, from: usize, msg: Self::Msg) -> Res;
}

/// One replica of a replicated page-view counter.
pub(super) trait Counter: Peer {
    /// `views` page views arrive, in round `round` (1-based).
    fn serve(&mut self, round: usize, views: u64);
    /// What a reader of this replica sees.
    fn read(&self) -> i128;
}

/// Exchanges before a sync gives up: a ship, its answers, and some slack.
pub(super) const MAX_EXCHANGES: usize = 8;

/// One sync: every replica ships, then messages are delivered (replica
/// order, then send order) until none is left. Messages across the cut are
/// lost; the duplicated link delivers its first message twice.
pub(super) fn sync<P: Peer>(nodes: &mut [P], net: Net) -> Res {
    for node in nodes.iter_mut() {
        node.ship();
    }
    let mut duplicate = net.duplicate;
    for _ in 0..MAX_EXCHANGES {
        let mut batch = Vec::new();
        for (from, node) in nodes.iter_mut().enumerate() {
            while let Some((to, msg)) = node.poll() {
                batch.push((from, to, msg));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        for (from, to, msg) in batch {
            if !net.connects(from, to) {
                continue;
            }
            if duplicate == Some((from, to)) {
                duplicate = None;
                nodes[to].receive(from, msg.clone())?;
            }
            nodes[to].receive(from, msg)?;
        }
    }
    Err("the network never went quiet".into())
}

/// Where a step of [`replay`] is.
pub(super) struct Step<'a, C> {
    /// 0-based.
    pub(super) round: usize,
    /// Before the sync (views just arrived) or after it.
    pub(super) synced: bool,
    pub(super) nodes: &'a [C],
}

/// Plays [`ROUNDS`] on `nodes`; `step` sees them after each arrival and
/// after each sync.
pub(super) fn replay<C: Counter>(nodes: &mut [C], mut step: impl FnMut(Step<'_, C>) -> Res) -> Res {
    for (r, round) in ROUNDS.iter().enumerate() {
        for (node, views) in nodes.iter_mut().zip(round.views) {
            node.serve(r + 1, views);
        }
        step(Step {
            round: r,
            synced: false,
            nodes,
        })?;
        sync(nodes, round.net)?;
        step(Step {
            round: r,
            synced: true,
            nodes,
        })?;
    }
    Ok(())
}
