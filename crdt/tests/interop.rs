//! Users of the `crdts` crate sync its state-based types with dsys-crdt's anti-entropy
//! protocol (`Cvrdt`, feature `crdts`): three replicas of a `crdts::GCounter` and of a
//! `crdts::Orswot` converge over the protocol's encoded messages.

use std::collections::BTreeSet;

use crdts::{CmRDT, GCounter, Orswot};
use dsys_crdt::codec::{Decode, Encode};
use dsys_crdt::{Cvrdt, Replica, SyncConfig, SyncError};

fn mesh<S>(states: impl Fn() -> S) -> Vec<Replica<u64, S>>
where
    S: dsys_crdt::Lattice + dsys_crdt::Authored<u64> + PartialEq,
{
    (0..3u64)
        .map(|i| {
            let mut r =
                Replica::new(i, states(), SyncConfig::default()).expect("a valid configuration");
            for j in (0..3).filter(|j| *j != i) {
                r.add_peer(j);
            }
            r
        })
        .collect()
}

/// Ships from everyone and delivers every message (encoded and decoded) until quiet.
fn settle<S>(replicas: &mut [Replica<u64, S>])
where
    S: dsys_crdt::Lattice + dsys_crdt::Authored<u64> + PartialEq + Encode + Decode,
{
    for _ in 0..10 {
        for r in replicas.iter_mut() {
            r.ship();
        }
        let mut moved = true;
        while moved {
            moved = false;
            for i in 0..replicas.len() {
                while let Some(out) = replicas[i].poll_transmit() {
                    moved = true;
                    let bytes = out.message.to_bytes();
                    let from = *replicas[i].id();
                    replicas[out.to as usize]
                        .handle_bytes(&from, &bytes)
                        .expect("valid message");
                }
            }
        }
    }
}

#[test]
fn crdts_gcounters_converge_through_the_protocol() {
    let mut replicas = mesh(|| Cvrdt(GCounter::<u64>::new()));
    for (i, n) in [(0usize, 3u32), (1, 5), (2, 7)] {
        for _ in 0..n {
            replicas[i].mutate(|s, me| {
                let op = s.0.inc(*me);
                s.0.apply(op);
                s.clone()
            });
        }
    }
    settle(&mut replicas);
    for r in &replicas {
        assert_eq!(r.state().0.read(), 15u32.into());
    }
}

#[test]
fn crdts_orswots_converge_through_the_protocol() {
    let mut replicas = mesh(|| Cvrdt(Orswot::<String, u64>::new()));
    for (i, item) in [(0usize, "a"), (1, "b"), (2, "c"), (0, "d")] {
        replicas[i].mutate(|s, me| {
            let ctx = s.0.read_ctx().derive_add_ctx(*me);
            let op = s.0.add(item.to_string(), ctx);
            s.0.apply(op);
            s.clone()
        });
    }
    settle(&mut replicas);
    replicas[1].mutate(|s, _| {
        let ctx = s.0.contains(&"a".to_string()).derive_rm_ctx();
        let op = s.0.rm("a".to_string(), ctx);
        s.0.apply(op);
        s.clone()
    });
    settle(&mut replicas);
    let expected: BTreeSet<String> = ["b", "c", "d"].iter().map(|s| s.to_string()).collect();
    for r in &replicas {
        let got: BTreeSet<String> = r.state().0.read().val.into_iter().collect();
        assert_eq!(got, expected);
    }
}

#[test]
fn garbage_for_a_crdts_type_is_rejected() {
    let mut replicas = mesh(|| Cvrdt(GCounter::<u64>::new()));
    assert!(matches!(
        replicas[0].handle_bytes(&1, &[1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(SyncError::Malformed(_))
    ));
    assert_eq!(replicas[0].state().0.read(), 0u32.into());
}
