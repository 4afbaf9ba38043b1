//! Arbitrary bytes as a received 2PC message or a record read back from the
//! log: decoding never panics, for fixed-size and variable-length ids;
//! whatever decodes re-encodes to the same bytes (the encoding is
//! canonical); and a decoded message fed to a coordinator and a participant
//! (from a listed and an unlisted sender) never makes them panic.
#![no_main]

use std::time::{Duration, Instant};

use dsys_txn::twopc::{Config, Coordinator, Message, Participant, Record, TxId};
use libfuzzer_sys::fuzz_target;

fn canonical_message<N: dsys_txn::twopc::WireId + Ord>(data: &[u8]) -> Option<Message<N>> {
    let m = Message::<N>::decode(data).ok()?;
    let mut again = Vec::new();
    m.encode(&mut again);
    assert_eq!(again, data, "a message decoded from bytes it does not encode to");
    Some(m)
}

fn canonical_record<N: dsys_txn::twopc::WireId + Ord>(data: &[u8]) -> Option<Record<N>> {
    let r = Record::<N>::decode(data).ok()?;
    let mut again = Vec::new();
    r.encode(&mut again);
    assert_eq!(again, data, "a record decoded from bytes it does not encode to");
    Some(r)
}

fuzz_target!(|data: &[u8]| {
    let _ = canonical_message::<String>(data);
    let _ = canonical_record::<String>(data);
    let _ = canonical_record::<u32>(data);
    let record = canonical_record::<u64>(data);
    let Some(message) = canonical_message::<u64>(data) else {
        if let Some(r) = record {
            // A lone record is a log to recover from: refused or accepted,
            // never a panic.
            let now = Instant::now();
            let _ = Coordinator::recover(Config::default(), 0u64, [r.clone()], now);
            let _ = Participant::recover(Config::default(), 1u64, [r], now);
        }
        return;
    };

    let now = Instant::now();
    let mut coordinator = Coordinator::new(Config::default(), 0u64).expect("default config");
    coordinator.begin(TxId(1), [1, 2], now).expect("a valid begin");
    let mut participant = Participant::new(Config::default(), 1u64).expect("default config");
    participant.join(0, TxId(1), now).expect("a fresh join");
    for from in [0u64, 1, 2, 9] {
        coordinator.handle_message(from, message.clone(), now);
        participant.handle_message(from, message.clone(), now);
    }
    let later = now + Duration::from_secs(60);
    coordinator.handle_timeout(later);
    participant.handle_timeout(later);
    while coordinator.poll_output().is_some() {}
    while participant.poll_output().is_some() {}
});
