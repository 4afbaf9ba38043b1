//! The fuzz target's seeds are valid messages of every type (first byte: the type), so
//! the fuzzer starts from inputs that get past the framing. If an encoding changes,
//! this test says the seeds must be regenerated: each seed must decode and encode back
//! to the same bytes (the wire form since messages carry an incarnation, issue 14).

use dsys_crdt::codec::{Decode, DecodeError, Encode};
use dsys_crdt::{
    GCounter, GSet, LwwRegister, MvRegister, ORMap, ORSet, PNCounter, SyncMessage, TwoPSet,
};

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

/// The end of the varint that starts at `at`.
fn varint_end(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .expect("a varint")
        + 1
}

#[test]
fn a_padded_varint_in_any_seed_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sync_message");
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("read seed");
        let (&kind, bytes) = data.split_first().expect("non-empty seed");
        // The tag, then (tags 4 to 6) the incarnation, then the sequence number.
        let seq_at = if bytes[0] >= 4 {
            varint_end(bytes, 1)
        } else {
            1
        };
        let seq_end = varint_end(bytes, seq_at);
        // The same number with one more byte: the last byte gains a continuation bit
        // and a zero byte follows (as in [0x81, 0x00] for 1).
        let mut padded = bytes[..seq_end].to_vec();
        *padded.last_mut().expect("a byte") |= 0x80;
        padded.push(0);
        padded.extend_from_slice(&bytes[seq_end..]);
        assert_eq!(
            reencoded(kind, &padded),
            Err(DecodeError::Varint),
            "{}: a padded sequence number was accepted",
            path.display()
        );
        // Ten continuation bytes and a one: over-long.
        let mut overlong = bytes[..seq_at].to_vec();
        overlong.extend_from_slice(&[0x80; 10]);
        overlong.push(1);
        overlong.extend_from_slice(&bytes[seq_end..]);
        assert_eq!(
            reencoded(kind, &overlong),
            Err(DecodeError::Varint),
            "{}: an over-long sequence number was accepted",
            path.display()
        );
    }
}
