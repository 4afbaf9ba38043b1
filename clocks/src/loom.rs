//! The one place that chooses between `std` and `loom` atomics.
//!
//! Every shared-memory type in this crate imports its atomics from here, so
//! building with `RUSTFLAGS="--cfg dsys_loom"` swaps in loom's model-checked
//! versions without touching the algorithms (the tokio / crossbeam pattern).

#[cfg(dsys_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(dsys_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces the value of `atomic` with `rule(current)`, retrying with the
/// fresh value when another thread changed it in between (a compare-and-swap
/// loop). Returns the value written, or the rule's error with `atomic`
/// untouched.
#[inline]
pub(crate) fn advance<E>(
    atomic: &AtomicU64,
    rule: impl Fn(u64) -> Result<u64, E>,
) -> Result<u64, E> {
    let mut current = atomic.load(Ordering::Acquire);
    loop {
        let next = rule(current)?;
        match atomic.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(next),
            Err(actual) => current = actual,
        }
    }
}
