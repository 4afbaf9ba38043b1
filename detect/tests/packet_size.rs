//! `max_packet_size` is a hard limit (SWIM §4.1 piggybacks updates "on" protocol
//! messages: the packet is what the transport carries). With the longest ids the
//! decoders accept (255-byte `String`s), no packet a member hands out is ever larger
//! than its `max_packet_size`, whatever size it was configured with: a size too small
//! for the longest header and update is refused at construction.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use dsys_detect::swim::wire::{DecodeError, MAX_ID_LEN, NodeId};
use dsys_detect::swim::{Config, State, Swim};

const PEER_MAX: usize = 1400;

/// Member "a" (configured with `max_packet_size = size`) joins three peers whose ids
/// are 255 bytes long; one of them crashes, so views carry suspicions and deaths whose
/// `by` is a long id too. Every packet "a" sends must fit `size`. Returns the
/// membership "a" ends with.
fn run(size: usize, start: Instant) -> Result<BTreeMap<String, State>, String> {
    let long = |c: char| c.to_string().repeat(MAX_ID_LEN);
    let (x, y, z) = (long('x'), long('y'), long('z'));
    let mut config = Config::default();
    config.max_packet_size = size;
    let mut nodes: BTreeMap<String, Swim<String>> = BTreeMap::new();
    let a = Swim::new("a".to_string(), config, 1, start).map_err(|e| e.to_string())?;
    nodes.insert("a".into(), a);
    for (i, id) in [&x, &y, &z].into_iter().enumerate() {
        let peer = Swim::new(id.clone(), Config::default(), 10 + i as u64, start)
            .expect("the default config fits 255-byte ids");
        nodes.insert(id.clone(), peer);
    }
    for id in [&y, &z] {
        nodes.get_mut(id).unwrap().join([x.clone()], start);
    }
    nodes.get_mut("a").unwrap().join([x.clone()], start);

    let mut wire: VecDeque<(String, String, Vec<u8>)> = VecDeque::new();
    let mut crashed = false;
    let mut now = start;
    let step = Duration::from_millis(50);
    while now < start + Duration::from_secs(40) {
        if !crashed && now >= start + Duration::from_secs(3) {
            nodes.remove(&z);
            crashed = true;
        }
        for node in nodes.values_mut() {
            node.handle_timeout(now);
        }
        loop {
            for (id, node) in nodes.iter_mut() {
                while let Some(t) = node.poll_transmit() {
                    let limit = if id == "a" { size } else { PEER_MAX };
                    assert!(
                        t.payload.len() <= limit,
                        "max_packet_size {size}: {} sent a {}-byte packet (limit {limit})",
                        &id[..1],
                        t.payload.len(),
                    );
                    wire.push_back((id.clone(), t.to, t.payload));
                }
                while node.poll_event().is_some() {}
            }
            let Some((_, to, payload)) = wire.pop_front() else {
                break;
            };
            if let Some(node) = nodes.get_mut(&to) {
                node.handle_packet(&payload, now)
                    .expect("packets between members decode");
            }
        }
        now += step;
    }
    Ok(nodes["a"]
        .members()
        .map(|(n, s, _)| (n[..1].to_string(), s))
        .collect())
}

/// The regression of issue 14, finding 8: a member configured with a small (but
/// accepted) `max_packet_size` that hears from a peer with a 255-byte id computed
/// `max_packet_size - header - 8` unchecked, panicking a debug build (and sending
/// oversized packets in release).
#[test]
fn no_packet_exceeds_max_packet_size_with_255_byte_ids() {
    let start = Instant::now();
    // Which sizes construction accepts: a floor, then everything above it.
    let accepted: Vec<bool> = (0..=PEER_MAX)
        .map(|size| {
            let mut config = Config::default();
            config.max_packet_size = size;
            Swim::new("a".to_string(), config, 1, start).is_ok()
        })
        .collect();
    let floor = accepted
        .iter()
        .position(|ok| *ok)
        .expect("the default size is accepted");
    assert!(accepted[floor..].iter().all(|ok| *ok), "one floor, no gaps");

    let mut sizes: Vec<usize> = (64..=PEER_MAX).step_by(61).collect();
    sizes.extend([floor, floor + 1, floor + 7, PEER_MAX]);
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        match run(size, start) {
            Err(e) => {
                assert!(size < floor, "size {size} refused above the floor: {e}");
                assert!(e.contains("max_packet_size"), "{e}");
            }
            Ok(view) => {
                // Everything still works at the smallest accepted size: views split
                // into packets that each carry at least one update.
                let expected = BTreeMap::from([
                    ("x".to_string(), State::Alive),
                    ("y".to_string(), State::Alive),
                    ("z".to_string(), State::Down),
                ]);
                assert_eq!(view, expected, "max_packet_size {size}");
            }
        }
    }
}

/// An id type whose decoder accepts ids longer than it declares (up to 300 bytes
/// against a declared 5): `max_packet_size` is sized for 5, and the member must still
/// never send more, leaving out (and counting) what does not fit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Liar(Vec<u8>);

impl NodeId for Liar {
    const MAX_ENCODED_LEN: usize = 5;
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0.len() as u8 / 2);
        out.push(self.0.len() as u8 - self.0.len() as u8 / 2);
        out.extend_from_slice(&self.0);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let &[a, b, ref rest @ ..] = *input else {
            return Err(DecodeError::Truncated);
        };
        let len = usize::from(a) + usize::from(b);
        if rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        let id = rest[..len].to_vec();
        *input = &rest[len..];
        Ok(Liar(id))
    }
}

#[test]
fn ids_longer_than_declared_are_left_out_and_counted() {
    let start = Instant::now();
    let small = Config::default().min_packet_size::<Liar>();
    assert_eq!(small, Config::MIN_PACKET_SIZE);
    let mut config = Config::default();
    config.max_packet_size = small;
    let a_id = Liar(vec![1]);
    let mut a = Swim::new(a_id.clone(), config, 1, start).expect("valid for the declared length");
    // A 40-byte id fits a header but not an update in `small` bytes; a 200-byte id
    // does not fit even a header.
    let mut peers: Vec<Swim<Liar>> = [40usize, 200]
        .into_iter()
        .map(|len| Swim::new(Liar(vec![7; len]), Config::default(), len as u64, start).unwrap())
        .collect();
    for p in &mut peers {
        p.join([a_id.clone()], start);
    }
    let mut now = start;
    for _ in 0..100 {
        let mut wire = Vec::new();
        for p in &mut peers {
            p.handle_timeout(now);
            while let Some(t) = p.poll_transmit() {
                wire.push((t.to, t.payload));
            }
        }
        a.handle_timeout(now);
        for (to, payload) in wire {
            if to == a_id {
                a.handle_packet(&payload, now).expect("decodes");
            }
        }
        while let Some(t) = a.poll_transmit() {
            assert!(t.payload.len() <= small, "{} > {small}", t.payload.len());
            if let Some(p) = peers.iter_mut().find(|p| *p.me() == t.to) {
                p.handle_packet(&t.payload, now).expect("decodes");
            }
        }
        now += Duration::from_millis(100);
    }
    assert!(a.counters().oversized_packets > 0, "{:?}", a.counters());
    assert!(a.counters().oversized_updates > 0, "{:?}", a.counters());
    // The 40-byte peer gets a's (update-less) acks and stays alive; the 200-byte one
    // can never be answered, so a suspects it and declares it down, as it would an
    // unreachable member.
    assert_eq!(a.state_of(&Liar(vec![7; 40])), Some(State::Alive));
    assert_eq!(a.state_of(&Liar(vec![7; 200])), Some(State::Down));
}
