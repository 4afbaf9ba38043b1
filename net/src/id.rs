//! How peers are named.

use std::fmt::Debug;
use std::hash::Hash;

/// What a peer id must support: `Clone + Eq + Ord + Hash + Debug`, the bound
/// set every dsys crate uses for node ids. It is implemented for every type
/// that has them, so a driver passes its own node ids through unchanged.
/// Peers are kept in an ordered map; ids are never written to the wire (a
/// protocol that needs the sender's id puts it in the payload).
pub trait NodeId: Clone + Eq + Ord + Hash + Debug {}

impl<T: Clone + Eq + Ord + Hash + Debug> NodeId for T {}
