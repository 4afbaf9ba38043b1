//! The `crdts` crate's state-based types as lattices (feature `crdts`).

use crdts::CvRDT;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Decode, DecodeError, Encode, get_bytes, get_len, put_uvarint};
use crate::lattice::{Authored, InvalidJoin, Lattice};

/// A state-based type of the `crdts` crate (`CvRDT`: `GCounter`, `Orswot`, `Map`,
/// `MVReg`...) as a [`Lattice`], so [`Replica`](crate::Replica) can sync it. Its
/// whole state is its own delta (`crdts` has no delta mutators): mutate it through
/// [`Replica::mutate`](crate::Replica::mutate) and return a copy of the whole state,
/// or join a changed copy with [`Replica::apply_local`](crate::Replica::apply_local).
/// `crdts`' `validate_merge` runs before every join of remote data; what it refuses
/// is dropped and counted, not merged. On the wire it is postcard-encoded serde,
/// length-prefixed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cvrdt<T>(pub T);

impl<T: CvRDT + Clone + Default + PartialEq> Lattice for Cvrdt<T> {
    fn join(&mut self, other: &Self) {
        if self.0.validate_merge(&other.0).is_ok() {
            self.0.merge(other.0.clone());
        }
    }

    fn bottom() -> Self {
        Cvrdt(T::default())
    }

    fn is_bottom(&self) -> bool {
        self.0 == T::default()
    }

    fn validate_join(&self, other: &Self) -> Result<(), InvalidJoin> {
        self.0
            .validate_merge(&other.0)
            .map_err(|e| InvalidJoin::new(e.to_string()))
    }
}

/// `crdts`' types are opaque here: only `validate_merge` runs. A forged entry of
/// this replica in a `crdts` clock is not detected.
impl<N, T: CvRDT + Clone + Default + PartialEq> Authored<N> for Cvrdt<T> {}

impl<T: Serialize> Encode for Cvrdt<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        let bytes = postcard::to_allocvec(&self.0).expect("serializing to memory cannot fail");
        put_uvarint(out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    }
}

impl<T: DeserializeOwned> Decode for Cvrdt<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = get_len(input, 1)?;
        let bytes = get_bytes(input, len)?;
        postcard::from_bytes(bytes)
            .map(Cvrdt)
            .map_err(|_| DecodeError::Invalid("not a postcard-encoded crdts value"))
    }
}
