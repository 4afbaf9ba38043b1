//! Bad input from the network: arbitrary bytes, and real packets with bytes flipped,
//! cut or appended, never panic a member; a refused packet leaves its membership as it
//! was; the decoder and the member agree. (The same property is fuzzed by
//! `fuzz/fuzz_targets/packet.rs`.)

use std::time::{Duration, Instant};

use dsys_detect::inspect_packet;
use dsys_detect::{PacketError, Swim, SwimConfig};
use proptest::prelude::*;

/// A member that knows two peers, and a set of real packets (announce, feed, ping,
/// gossip) captured from a small exchange.
fn setup(now: Instant) -> (Swim<u32>, Vec<Vec<u8>>) {
    let mut a = Swim::new(0u32, SwimConfig::default(), 1, now).unwrap();
    let mut b = Swim::new(1u32, SwimConfig::default(), 2, now).unwrap();
    let mut c = Swim::new(2u32, SwimConfig::default(), 3, now).unwrap();
    b.join([0], now);
    c.join([0], now);
    let mut packets = Vec::new();
    let mut t = now;
    for _ in 0..40 {
        t += Duration::from_millis(100);
        for node in [&mut a, &mut b, &mut c] {
            node.handle_timeout(t);
        }
        // Deliver everything, in id order, capturing each packet.
        let mut inflight = Vec::new();
        for node in [&mut a, &mut b, &mut c] {
            while let Some(tx) = node.poll_transmit() {
                inflight.push(tx);
            }
        }
        for tx in inflight {
            packets.push(tx.payload.clone());
            let to = match tx.to {
                0 => &mut a,
                1 => &mut b,
                _ => &mut c,
            };
            to.handle_packet(&tx.payload, t)
                .expect("real packets decode");
        }
    }
    while a.poll_transmit().is_some() {}
    while a.poll_event().is_some() {}
    (a, packets)
}

fn membership(node: &Swim<u32>) -> Vec<(u32, dsys_detect::State, u32)> {
    node.members().map(|(n, s, i)| (*n, s, i)).collect()
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let (mut node, _) = setup(now);
    let before = membership(&node);
    let verdict = inspect_packet::<u32>(bytes, 0);
    let _ = inspect_packet::<String>(bytes, 0);
    let _ = inspect_packet::<std::net::SocketAddr>(bytes, 0);
    match node.handle_packet(bytes, now + Duration::from_secs(5)) {
        Ok(()) => prop_assert!(verdict.is_ok()),
        Err(PacketError::FromSelf) => prop_assert_eq!(verdict, Ok(0)),
        Err(e) => {
            prop_assert_eq!(Err(e), verdict.map(|_| ()));
            prop_assert_eq!(&before, &membership(&node));
            prop_assert!(node.poll_event().is_none());
        }
    }
    node.handle_timeout(now + Duration::from_secs(60));
    Ok(())
}

#[test]
fn real_packets_decode_and_fit_the_packet_size() {
    let (_, packets) = setup(Instant::now());
    assert!(packets.len() > 20, "the exchange produced traffic");
    for p in &packets {
        assert!(p.len() <= SwimConfig::default().max_packet_size);
        assert!(inspect_packet::<u32>(p, 0).is_ok());
        assert!(
            inspect_packet::<u32>(p, 1).is_err(),
            "cluster id is checked"
        );
        for cut in 0..p.len() {
            assert!(
                inspect_packet::<u32>(&p[..cut], 0).is_err(),
                "a truncated packet decodes"
            );
        }
    }
}

/// The fuzz target's seeds are real packets of every kind, so the fuzzer starts from
/// inputs that get past the header.
#[test]
fn fuzz_seeds_are_valid_packets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/packet");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let bytes = std::fs::read(&path).expect("read seed");
        assert!(
            inspect_packet::<u32>(&bytes, 0).is_ok(),
            "{} does not decode: {:?}",
            path.display(),
            inspect_packet::<u32>(&bytes, 0)
        );
        count += 1;
    }
    assert!(count >= 7, "one seed per message kind");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(
        kind in 0u8..10,
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = vec![0xD5, 1, 0, kind];
        bytes.extend(body);
        check(&bytes)?;
    }

    #[test]
    fn mutated_real_packets_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let (_, packets) = setup(Instant::now());
        let mut p = pick.get(&packets).clone();
        for (at, x) in flips {
            let i = at.index(p.len());
            p[i] ^= x;
        }
        p.truncate(cut.index(p.len() + 1));
        p.extend(tail);
        check(&p)?;
    }
}
