//! The fuzz target's seeds are valid messages of every type (first byte: the type), so
//! the fuzzer starts from inputs that get past the framing. If an encoding changes,
//! this test says the seeds must be regenerated: each seed must decode and encode back
//! to the same bytes (the wire form since messages carry an incarnation, issue 14).

use dsys_crdt::counter::{GCounter, PNCounter};
use dsys_crdt::ormap::ORMap;
use dsys_crdt::orset::ORSet;
use dsys_crdt::register::{LwwRegister, MvRegister};
use dsys_crdt::set::{GSet, TwoPSet};
use dsys_crdt::sync::SyncMessage;
use dsys_crdt::{Decode, DecodeError, Encode};

/// Decodes `bytes` as a message of type `T` and encodes it again.
fn round_trip<T: Decode + Encode>(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    SyncMessage::<T>::from_bytes(bytes).map(|m| m.to_bytes())
}

fn reencoded(kind: u8, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match kind % 8 {
        0 => round_trip::<GCounter<u32>>(bytes),
        1 => round_trip::<PNCounter<u32>>(bytes),
        2 => round_trip::<GSet<u32>>(bytes),
        3 => round_trip::<TwoPSet<u32>>(bytes),
        4 => round_trip::<ORSet<u32, u32>>(bytes),
        5 => round_trip::<LwwRegister<u32, u32>>(bytes),
        6 => round_trip::<MvRegister<u32, u32>>(bytes),
        _ => round_trip::<ORMap<u32, u32, GCounter<u32>>>(bytes),
    }
}

#[test]
fn every_seed_decodes_as_its_type() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sync_message");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("read seed");
        let (&kind, bytes) = data.split_first().expect("non-empty seed");
        let again = reencoded(kind, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            again,
            bytes,
            "{}: not the canonical encoding",
            path.display()
        );
        kinds.insert(kind % 8);
    }
    assert_eq!(kinds.len(), 8, "one seed per type");
}
