//! Arbitrary bytes as a received SWIM packet: decoding never panics, for fixed-size and
//! variable-length ids; a member fed the bytes either accepts them or returns an error
//! with its membership unchanged; and decoding agrees with the member's verdict.
#![no_main]

use std::time::{Duration, Instant};

use dsys_detect::inspect_packet;
use dsys_detect::{PacketError, Swim, SwimConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = inspect_packet::<String>(data, 0);
    let _ = inspect_packet::<std::net::SocketAddr>(data, 0);
    let verdict = inspect_packet::<u32>(data, 0);

    let now = Instant::now();
    let mut node = Swim::new(0u32, SwimConfig::default(), 7, now).expect("default config");
    // Give it a peer so updates about members have something to act on.
    let mut peer = Swim::new(1u32, SwimConfig::default(), 8, now).expect("default config");
    peer.join([0], now);
    while let Some(t) = peer.poll_transmit() {
        node.handle_packet(&t.payload, now)
            .expect("a real announce");
    }
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    let before: Vec<_> = node.members().map(|(n, s, i)| (*n, s, i)).collect();

    let later = now + Duration::from_millis(10);
    match node.handle_packet(data, later) {
        Ok(()) => assert!(verdict.is_ok(), "accepted what inspect_packet refuses"),
        Err(e) => {
            match (&e, &verdict) {
                (PacketError::FromSelf, Ok(0)) => {}
                (_, Err(v)) => assert_eq!(&e, v),
                _ => panic!("refused a packet inspect_packet accepts: {e}"),
            }
            let after: Vec<_> = node.members().map(|(n, s, i)| (*n, s, i)).collect();
            assert_eq!(before, after, "a refused packet changed the membership");
            assert!(node.poll_event().is_none());
        }
    }
    // Whatever it accepted, the node keeps running.
    node.handle_timeout(later + Duration::from_secs(30));
    while node.poll_transmit().is_some() {}
});
