//! Section 5's and 6's machinery: playing the cart's script on a set CRDT, and reading
//! and updating carts in the simulator.

use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::sim::Sim;
use dsys_crdt::{Authored, Lattice, ORSet, SyncConfig, TwoPSet};

use super::format::cart_cell;
use super::network::sync;
use super::replicas::CrdtNode;
use super::script::{CART, CartOp, SEOUL, TOKYO, VIRGINIA};
use crate::report::Res;

/// The carts every replica holds after each round's sync.
pub(super) type Carts = Vec<[Vec<String>; 3]>;

/// Plays [`CART`] on three replicas of a set type: `apply` is the delta
/// mutator of an operation, `items` what a reader of the cart sees.
pub(super) fn play_cart<S: Lattice + Authored<String> + PartialEq + Encode + Decode>(
    apply: fn(&mut S, &String, CartOp) -> S,
    items: fn(&S) -> Vec<String>,
) -> Res<Carts> {
    let mut nodes = CrdtNode::<S>::mesh(&SyncConfig::default())?;
    let mut carts = Vec::new();
    for (_, net, ops) in CART {
        for &(at, op) in ops {
            nodes[at].replica.mutate(|s, me| apply(s, me, op));
        }
        sync(&mut nodes, net)?;
        carts.push([SEOUL, TOKYO, VIRGINIA].map(|i| items(nodes[i].replica.state())));
    }
    Ok(carts)
}

/// [`CART`] on an OR-Set (add wins).
pub(super) fn or_set_carts() -> Res<Carts> {
    play_cart::<ORSet<String, String>>(
        |s, me, op| match op {
            CartOp::Add(item) => s.add(me, item.to_owned()),
            CartOp::Remove(item) => s.remove(&item.to_owned()),
        },
        |s| s.iter().cloned().collect(),
    )
}

/// [`CART`] on a 2P-Set (a tombstone wins for good).
pub(super) fn two_phase_carts() -> Res<Carts> {
    play_cart::<TwoPSet<String>>(
        |s, _, op| match op {
            CartOp::Add(item) => s.insert(item.to_owned()),
            CartOp::Remove(item) => s.remove(item.to_owned()),
        },
        |s| s.iter().cloned().collect(),
    )
}

/// The cart a replica holds in the simulator, or `(down)`.
pub(super) fn sim_cart(sim: &Sim<ORSet<u64, String>>, replica: usize) -> String {
    match sim.state(replica) {
        Some(cart) => cart_cell(&cart.iter().cloned().collect::<Vec<_>>()),
        None => "(down)".to_owned(),
    }
}

/// The delta mutator that adds `item` to a cart.
pub(super) fn add_item(
    item: &str,
) -> impl FnOnce(&mut ORSet<u64, String>, &u64) -> ORSet<u64, String> {
    let item = item.to_owned();
    move |cart, me| cart.add(me, item)
}
