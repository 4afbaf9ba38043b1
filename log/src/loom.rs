//! The shared-memory primitives between the appender and its readers, from `std` or,
//! under `--cfg dsys_loom`, from `loom`, so the loom tests explore the same code.

#[cfg(dsys_loom)]
pub(crate) use ::loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, Ordering},
};
#[cfg(not(dsys_loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicU64, Ordering},
};

/// Locks a mutex, ignoring poison: every critical section in this crate leaves the
/// protected data consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(dsys_loom)]
    {
        m.lock().expect("loom mutexes are never poisoned")
    }
    #[cfg(not(dsys_loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
