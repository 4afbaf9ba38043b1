//! A 50/50 partition heals and membership converges back to everyone Alive, with no
//! permanently lost member.
//!
//! The partition lasts until each side has declared every member of the other side
//! Down (SWIM §4.2: suspicion, then confirmation), so after the heal both sides must
//! find each other again through the periodic announce to members believed down (the
//! SWIM paper leaves rejoin to the application; memberlist and foca do the same), and
//! every member's own view (`Swim::state_of`, not just the event stream) must come
//! back to `Alive` for every other member. Each case runs several seeds and prints the
//! failing seed.

use std::time::{Duration, Instant};

use dsys_detect::sim::scenario::{self, Plan};
use dsys_detect::sim::{Sim, SimEventKind};
use dsys_detect::{Swim, SwimConfig};

const NODES: usize = 40;

fn node(i: usize, now: Instant, seed: u64, lifeguard: bool) -> Swim<u32> {
    let mut config = SwimConfig::default();
    config.lifeguard = lifeguard;
    Swim::new(
        i as u32,
        config,
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64,
        now,
    )
    .expect("default config is valid")
}

/// Whether every live member of `a` has every member of `b` Down, and vice versa.
fn sides_split(sim: &Sim<Swim<u32>>, a: &[usize], b: &[usize]) -> bool {
    let all_down = |from: &[usize], of: &[usize]| {
        from.iter().all(|&o| {
            of.iter()
                .all(|&s| sim.view(o, s) == Some(SimEventKind::Down))
        })
    };
    all_down(a, b) && all_down(b, a)
}

fn partition_heals(seed: u64, lifeguard: bool, loss: f64) {
    let context = format!("seed {seed}, lifeguard {lifeguard}, loss {loss}");
    let plan = Plan::new(NODES, seed);
    let (mut sim, converged) = scenario::bootstrap(&plan, Instant::now(), |i, now| {
        node(i, now, seed, lifeguard)
    })
    .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(converged.is_some(), "{context}: bootstrap did not converge");
    sim.run_for(Duration::from_secs(5)).expect("no livelock");

    // A random half on each side.
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut order: Vec<usize> = (0..NODES).collect();
    rng.shuffle(&mut order);
    let (a, b) = order.split_at(NODES / 2);
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();

    sim.set_loss(loss).expect("a probability");
    sim.partition(&[&a, &b]);
    let split_at = sim.now();
    let split = sim
        .run_until_cond(Duration::from_secs(180), Duration::from_millis(500), |s| {
            sides_split(s, &a, &b)
        })
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(
        split.is_some(),
        "{context}: the sides never declared each other Down"
    );
    // Stay split a while longer, so the Downs have spread and suspicions settled.
    sim.run_for(Duration::from_secs(10)).expect("no livelock");

    sim.heal();
    let healed_at = sim.now();
    let merged = sim
        .run_until_cond(Duration::from_secs(180), Duration::from_millis(250), |s| {
            s.states_converged()
        })
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(
        merged.is_some(),
        "{context}: not everyone is Alive everywhere 180 s after the heal; \
         (observer, subject, state): {:?}",
        sim.unconverged_pairs(10)
    );
    // The event stream agrees with the state: every member reported every other one
    // back (Rejoined / Up) after the heal.
    assert!(
        sim.views_converged(),
        "{context}: events disagree with state"
    );
    eprintln!(
        "{context}: split after {:?}, everyone Alive {:?} after the heal",
        split.unwrap() - split_at,
        merged.unwrap() - healed_at
    );
}

#[test]
fn partition_heals_to_everyone_alive() {
    for seed in 1..=8 {
        partition_heals(seed, true, 0.0);
    }
}

#[test]
fn partition_heals_without_lifeguard() {
    for seed in 9..=12 {
        partition_heals(seed, false, 0.0);
    }
}

#[test]
fn partition_heals_under_five_percent_loss() {
    for seed in 13..=18 {
        partition_heals(seed, true, 0.05);
    }
}
