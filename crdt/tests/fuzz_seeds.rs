//! The fuzz target's seeds are valid messages of every type (first byte: the type), so
//! the fuzzer starts from inputs that get past the framing. If an encoding changes,
//! this test says the seeds must be regenerated.

use dsys_crdt::counter::{GCounter, PNCounter};
use dsys_crdt::ormap::ORMap;
use dsys_crdt::orset::ORSet;
use dsys_crdt::register::{LwwRegister, MvRegister};
use dsys_crdt::set::{GSet, TwoPSet};
use dsys_crdt::sync::SyncMessage;
use dsys_crdt::{Decode, DecodeError};

fn decodes(kind: u8, bytes: &[u8]) -> Result<(), DecodeError> {
    match kind % 8 {
        0 => SyncMessage::<GCounter<u32>>::from_bytes(bytes).map(drop),
        1 => SyncMessage::<PNCounter<u32>>::from_bytes(bytes).map(drop),
        2 => SyncMessage::<GSet<u32>>::from_bytes(bytes).map(drop),
        3 => SyncMessage::<TwoPSet<u32>>::from_bytes(bytes).map(drop),
        4 => SyncMessage::<ORSet<u32, u32>>::from_bytes(bytes).map(drop),
        5 => SyncMessage::<LwwRegister<u32, u32>>::from_bytes(bytes).map(drop),
        6 => SyncMessage::<MvRegister<u32, u32>>::from_bytes(bytes).map(drop),
        _ => SyncMessage::<ORMap<u32, u32, GCounter<u32>>>::from_bytes(bytes).map(drop),
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
        decodes(kind, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kinds.insert(kind % 8);
    }
    assert_eq!(kinds.len(), 8, "one seed per type");
}
