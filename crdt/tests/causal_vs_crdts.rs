//! Differential tests against the `crdts` crate (7.3): the same random
//! operations on several replicas, with random full-state merges, give the same
//! observable values.
//!
//! - `ORSet` (Almeida et al. 2018, §5, AWSet) against `crdts::Orswot` (riak_dt's
//!   add-wins OR-Set without tombstones): elements after every step.
//! - `MvRegister` (§5, MVReg) against `crdts::MVReg`: the siblings, as a sorted
//!   multiset, after every step.
//! - `LwwRegister` against `crdts::LWWReg` with marker `(timestamp, replica)`:
//!   the value after every step. `LWWReg` keeps the first of two writes with
//!   equal markers (so its merge is not commutative for them) and
//!   `validate_merge` rejects them, so histories here are *valid* in its sense:
//!   each replica's timestamps strictly increase, so no `(timestamp, replica)`
//!   repeats, and every merge is checked with `validate_merge` first. Our
//!   register's answer for repeated markers (the greater value) is checked in
//!   `causal_types.rs` and by `lww_equal_markers_diverge_in_crdts` below.
//!
//! The peers are driven as their docs show: `read_ctx().derive_add_ctx(actor)`
//! before an add or write, the element's `contains(..).derive_rm_ctx()` before a
//! remove, `CmRDT::apply` locally and `CvRDT::merge` between replicas; ours
//! applies its delta mutators locally and joins full states between replicas.
//! A failing case prints its operations (proptest also saves the seed).

use std::collections::BTreeSet;

use crdts::{CmRDT, CvRDT, LWWReg, MVReg, Orswot};
use dsys_clocks::Timestamp;
use dsys_crdt::{Lattice, LwwRegister, MvRegister, ORSet};
use proptest::collection::vec;
use proptest::prelude::*;

const REPLICAS: usize = 4;

#[derive(Debug, Clone)]
enum Step<O> {
    Local(usize, O),
    Merge { from: usize, to: usize },
}

fn steps<O: std::fmt::Debug + Clone>(
    op: impl Strategy<Value = O>,
) -> impl Strategy<Value = Vec<Step<O>>> {
    let step = prop_oneof![
        3 => (0..REPLICAS, op).prop_map(|(r, o)| Step::Local(r, o)),
        2 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Step::Merge { from, to }),
    ];
    vec(step, 0..60)
}

// ---------------------------------------------------------------------------
// ORSet vs Orswot
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SetOp {
    Add(u8),
    Remove(u8),
    Clear,
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        4 => (0..8u8).prop_map(SetOp::Add),
        3 => (0..8u8).prop_map(SetOp::Remove),
        1 => Just(SetOp::Clear),
    ]
}

fn orswot_members(s: &Orswot<u8, u32>) -> BTreeSet<u8> {
    s.read().val.into_iter().collect()
}

proptest! {
    #[test]
    fn orset_agrees_with_orswot(steps in steps(set_op())) {
        let mut ours: Vec<ORSet<u32, u8>> = vec![ORSet::new(); REPLICAS];
        let mut theirs: Vec<Orswot<u8, u32>> = vec![Orswot::new(); REPLICAS];
        for step in &steps {
            let changed = match step {
                Step::Local(r, op) => {
                    let (id, s, t) = (*r as u32, &mut ours[*r], &mut theirs[*r]);
                    match op {
                        SetOp::Add(e) => {
                            s.add(&id, *e);
                            let ctx = t.read_ctx().derive_add_ctx(id);
                            t.apply(t.add(*e, ctx));
                        }
                        SetOp::Remove(e) => {
                            s.remove(e);
                            let ctx = t.contains(e).derive_rm_ctx();
                            t.apply(t.rm(*e, ctx));
                        }
                        SetOp::Clear => {
                            s.clear();
                            let read = t.read();
                            let (members, ctx) = read.split();
                            t.apply(t.rm_all(members, ctx.derive_rm_ctx()));
                        }
                    }
                    *r
                }
                Step::Merge { from, to } => {
                    let s = ours[*from].clone();
                    ours[*to].join(&s);
                    let t = theirs[*from].clone();
                    prop_assert!(theirs[*to].validate_merge(&t).is_ok());
                    theirs[*to].merge(t);
                    *to
                }
            };
            let got: BTreeSet<u8> = ours[changed].iter().copied().collect();
            prop_assert_eq!(got, orswot_members(&theirs[changed]), "replica {}", changed);
        }
        // Full convergence: everyone merges everyone.
        let mut all_ours = ORSet::new();
        let mut all_theirs = Orswot::new();
        for r in 0..REPLICAS {
            all_ours.join(&ours[r]);
            all_theirs.merge(theirs[r].clone());
        }
        let got: BTreeSet<u8> = all_ours.iter().copied().collect();
        prop_assert_eq!(got, orswot_members(&all_theirs));
    }
}

// ---------------------------------------------------------------------------
// MvRegister vs MVReg
// ---------------------------------------------------------------------------

fn mvreg_values(r: &MVReg<u8, u32>) -> Vec<u8> {
    let mut v = r.read().val;
    v.sort_unstable();
    v
}

proptest! {
    #[test]
    fn mvregister_agrees_with_mvreg(steps in steps(0..5u8)) {
        let mut ours: Vec<MvRegister<u32, u8>> = vec![MvRegister::new(); REPLICAS];
        let mut theirs: Vec<MVReg<u8, u32>> = vec![MVReg::new(); REPLICAS];
        for step in &steps {
            let changed = match step {
                Step::Local(r, v) => {
                    let id = *r as u32;
                    ours[*r].set(&id, *v);
                    let t = &mut theirs[*r];
                    let ctx = t.read_ctx().derive_add_ctx(id);
                    t.apply(t.write(*v, ctx));
                    *r
                }
                Step::Merge { from, to } => {
                    let s = ours[*from].clone();
                    ours[*to].join(&s);
                    let t = theirs[*from].clone();
                    theirs[*to].merge(t);
                    *to
                }
            };
            let mut got: Vec<u8> = ours[changed].values().copied().collect();
            got.sort_unstable();
            prop_assert_eq!(got, mvreg_values(&theirs[changed]), "replica {}", changed);
        }
    }
}

// ---------------------------------------------------------------------------
// LwwRegister vs LWWReg
// ---------------------------------------------------------------------------

proptest! {
    /// Each write takes a timestamp strictly above its replica's last one (a
    /// jump of 0..3 ms: replicas' clocks tie often), as an HLC does.
    #[test]
    fn lwwregister_agrees_with_lwwreg(steps in steps((0..3u64, 0..5u8))) {
        let mut ours: Vec<LwwRegister<u32, u8>> = vec![LwwRegister::new(); REPLICAS];
        // Marker (timestamp, replica); (0, 0) is the initial marker, below every write.
        let mut theirs: Vec<LWWReg<Option<u8>, (u64, u32)>> =
            vec![LWWReg { val: None, marker: (0, 0) }; REPLICAS];
        let mut last = [0u64; REPLICAS];
        for step in &steps {
            let changed = match step {
                Step::Local(r, (jump, v)) => {
                    let id = *r as u32;
                    last[*r] += 1 + jump;
                    ours[*r].set(&id, Timestamp::from_u64(last[*r]), *v);
                    let write = LWWReg { val: Some(*v), marker: (last[*r], id) };
                    prop_assert!(theirs[*r].validate_op(&write).is_ok());
                    theirs[*r].apply(write);
                    *r
                }
                Step::Merge { from, to } => {
                    let s = ours[*from].clone();
                    ours[*to].join(&s);
                    let t = theirs[*from].clone();
                    prop_assert!(theirs[*to].validate_merge(&t).is_ok());
                    theirs[*to].merge(t);
                    *to
                }
            };
            let (s, t) = (&ours[changed], &theirs[changed]);
            prop_assert_eq!(s.value().copied(), t.val, "replica {}", changed);
            if let Some(ts) = s.timestamp() {
                prop_assert_eq!((ts.to_u64(), *s.writer().unwrap()), t.marker);
            }
        }
    }
}

/// The case `LWWReg` leaves to its users: two writes with one marker. Its merge
/// keeps whichever it had first (so replicas can disagree forever), while ours
/// orders the values and converges.
#[test]
fn lww_equal_markers_diverge_in_crdts() {
    let a = LWWReg {
        val: 1u8,
        marker: (5u64, 1u32),
    };
    let b = LWWReg {
        val: 2u8,
        marker: (5u64, 1u32),
    };
    assert!(a.validate_merge(&b).is_err());
    let (mut ab, mut ba) = (a.clone(), b.clone());
    ab.merge(b);
    ba.merge(a);
    assert_ne!(ab.val, ba.val);

    let ts = Timestamp::from_u64(5);
    let (mut x, mut y) = (LwwRegister::<u32, u8>::new(), LwwRegister::new());
    let dx = x.set(&1, ts, 1);
    let dy = y.set(&1, ts, 2);
    x.join(&dy);
    y.join(&dx);
    assert_eq!(x, y);
    assert_eq!(x.value(), Some(&2));
}
