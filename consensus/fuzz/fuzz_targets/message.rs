//! Arbitrary bytes as a received Raft message (`dsys_consensus::codec`):
//! decoding never panics, for varint and variable-length ids; whatever
//! decodes re-encodes to exactly the same bytes (one encoding per message);
//! and a node fed the decoded message keeps running.
#![no_main]

use dsys_consensus::{Config, MemStorage, RaftNode, codec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<String>(data);
    let _ = codec::decode::<std::net::SocketAddr>(data);
    if let Ok(message) = codec::decode::<u64>(data) {
        assert_eq!(codec::encode_to_vec(&message), data, "not the one encoding");
        let mut node = RaftNode::new(1u64, MemStorage::new(vec![1, 2, 3]), Config::default())
            .expect("a valid bootstrap");
        node.handle_message(message);
        while node.poll_output().is_some() {}
        node.tick();
        while node.poll_output().is_some() {}
    }
});
