use crate::codec::{Decode, Encode};

/// A replica's id: what names a replica in dots, version vectors, counters and
/// protocol messages.
///
/// The suite's node-id bound set ([`dsys_clocks::NodeId`]: `Clone + Eq + Ord + Hash +
/// Debug`) plus this crate's codec ([`Encode`] and [`Decode`]), because ids are written
/// into states and messages. It has a blanket implementation: `u32`, `u64`, `u128` and
/// `String` are ids as they are; implement [`Encode`] and [`Decode`] for your own id
/// type to use it. `&str` is not an id (it cannot be decoded): use `String`.
///
/// The data types ([`GCounter`](crate::GCounter), [`ORSet`](crate::ORSet), ...) ask
/// only for [`dsys_clocks::NodeId`], which every `NodeId` is: a state kept in memory or
/// written with serde needs no codec. Their [`Encode`]/[`Decode`] impls and
/// [`Replica`](crate::Replica), which write ids into bytes, ask for this trait.
pub trait NodeId: dsys_clocks::NodeId + Encode + Decode {}

impl<T: dsys_clocks::NodeId + Encode + Decode> NodeId for T {}
