//! The sequential model the search runs operations against: one
//! register that starts absent; a put overwrites it, a get must read its
//! value. Values are interned, so the model works on small integers.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::history::{KvOp, KvResult, OpId, Operation};

/// An operation as the model sees it; values are interned, 0 being "absent".
#[derive(Clone, Copy)]
pub(super) enum Step {
    Put(u64),
    Get(u64),
}

impl Step {
    /// The register value after applying the step to `value`, if legal.
    pub(super) fn apply(self, value: u64) -> Option<u64> {
        match self {
            Step::Put(v) => Some(v),
            Step::Get(v) => (v == value).then_some(value),
        }
    }
}

/// One operation of the register under search.
pub(super) struct RegisterOp {
    pub(super) id: OpId,
    pub(super) step: Step,
    pub(super) invoked_at: u64,
    /// `None` for an indeterminate put.
    pub(super) completed_at: Option<u64>,
}

/// Builds the model's view of one register's operations.
pub(super) fn register_ops<'a, K, V: Eq + Hash>(
    ops: &'a [Operation<K, V>],
    indices: &[usize],
) -> Vec<RegisterOp> {
    let mut interned: HashMap<&V, u64> = HashMap::new();
    let mut intern = |value: Option<&'a V>| match value {
        None => 0,
        Some(v) => {
            let fresh = interned.len() as u64 + 1;
            *interned.entry(v).or_insert(fresh)
        }
    };
    let mut register = Vec::with_capacity(indices.len());
    for &i in indices {
        let op = &ops[i];
        let (step, completed_at) = match (&op.op, &op.completed) {
            (KvOp::Put { value, .. }, completed) => (
                Step::Put(intern(Some(value))),
                completed.as_ref().map(|c| c.0),
            ),
            (KvOp::Get { .. }, Some((at, KvResult::Read(read)))) => {
                (Step::Get(intern(read.as_ref())), Some(*at))
            }
            // A pending get has no effect; a get completed as written is
            // refused by `complete`.
            (KvOp::Get { .. }, _) => continue,
        };
        register.push(RegisterOp {
            id: op.id,
            step,
            invoked_at: op.invoked_at,
            completed_at,
        });
    }
    // A pending put whose value no get reads can always be left out: every
    // get linearized after it reads some later put's value (or it would read
    // this one's), so dropping it changes no result and only relaxes order.
    // Each one kept would double the configurations to explore.
    let read: HashSet<u64> = register
        .iter()
        .filter_map(|op| match op.step {
            Step::Get(v) => Some(v),
            Step::Put(_) => None,
        })
        .collect();
    register.retain(|op| match op.step {
        Step::Put(v) => op.completed_at.is_some() || read.contains(&v),
        Step::Get(_) => true,
    });
    register
}
