use std::fmt::Debug;
use std::hash::Hash;

use crate::codec::{Decode, Encode};

/// A replica's id: what names a replica in dots, version vectors, counters and
/// protocol messages.
///
/// The suite's node-id bound set (`Clone + Eq + Ord + Hash + Debug`) plus this crate's
/// codec ([`Encode`] and [`Decode`]), because ids are written into states and messages.
/// It has a blanket implementation: `u32`, `u64`, `u128` and `String` are ids as they
/// are; implement [`Encode`] and [`Decode`] for your own id type to use it. `&str` is
/// not an id (it cannot be decoded): use `String`.
pub trait NodeId: Clone + Eq + Ord + Hash + Debug + Encode + Decode {}

impl<T: Clone + Eq + Ord + Hash + Debug + Encode + Decode> NodeId for T {}
