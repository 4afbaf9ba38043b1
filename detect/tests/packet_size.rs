//! `max_packet_size` is a hard limit (SWIM §4.1 piggybacks updates "on" protocol
//! messages: the packet is what the transport carries). With the longest ids the
//! decoders accept (255-byte `String`s), no packet a member hands out is ever larger
//! than its `max_packet_size`, whatever size it was configured with: a size too small
//! for the longest header and update is refused at construction.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use dsys_detect::{DecodeError, IdCodec, MAX_ID_LEN};
use dsys_detect::{PacketError, State, Swim, SwimConfig, SwimConfigError};
use proptest::prelude::*;

const PEER_MAX: usize = 1400;

/// Member "a" (configured with `max_packet_size = size`) joins three peers whose ids
/// are 255 bytes long; one of them crashes, so views carry suspicions and deaths whose
/// `by` is a long id too. Every packet "a" sends must fit `size`. Returns the
/// membership "a" ends with.
fn run(size: usize, start: Instant) -> Result<BTreeMap<String, State>, String> {
    let long = |c: char| c.to_string().repeat(MAX_ID_LEN);
    let (x, y, z) = (long('x'), long('y'), long('z'));
    let mut config = SwimConfig::default();
    config.max_packet_size = size;
    let mut nodes: BTreeMap<String, Swim<String>> = BTreeMap::new();
    let a = Swim::new("a".to_string(), config, 1, start).map_err(|e| e.to_string())?;
    nodes.insert("a".into(), a);
    for (i, id) in [&x, &y, &z].into_iter().enumerate() {
        let peer = Swim::new(id.clone(), SwimConfig::default(), 10 + i as u64, start)
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
            let mut config = SwimConfig::default();
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

impl IdCodec for Liar {
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
    let small = SwimConfig::default().min_packet_size::<Liar>();
    assert_eq!(small, SwimConfig::MIN_PACKET_SIZE);
    let mut config = SwimConfig::default();
    config.max_packet_size = small;
    let a_id = Liar(vec![1]);
    let mut a = Swim::new(a_id.clone(), config, 1, start).expect("valid for the declared length");
    // A 40-byte id fits a header but not an update in `small` bytes; a 200-byte id
    // does not fit even a header.
    let mut peers: Vec<Swim<Liar>> = [40usize, 200]
        .into_iter()
        .map(|len| Swim::new(Liar(vec![7; len]), SwimConfig::default(), len as u64, start).unwrap())
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

/// One member of a randomized cluster.
#[derive(Debug, Clone)]
struct MemberSpec {
    /// Bytes in its `String` id, 1 to `MAX_ID_LEN` (the first byte names the member).
    id_len: usize,
    /// Its `max_packet_size`.
    size: usize,
    /// When it starts and joins, in milliseconds of virtual time (member 0 joins
    /// nobody).
    join_ms: u64,
    /// The member it joins through: `seed % index`, an earlier one (which may not have
    /// started yet: the join is then retried every protocol period).
    seed: usize,
}

/// A cluster of 2 to 6 members, and its churn.
#[derive(Debug, Clone)]
struct Plan {
    cluster_id: u64,
    members: Vec<MemberSpec>,
    /// `(member % n, at_ms)`: the member stops for good (its packets are lost); if
    /// it has not started by then, it never does.
    crash: Option<(usize, u64)>,
    /// `(member % n, at_ms)`: the member leaves gracefully and keeps running.
    leave: Option<(usize, u64)>,
    /// Percent of packets lost on the wire.
    loss_pct: u64,
    /// How long the run lasts, in protocol periods (of the default 1 s).
    periods: u64,
    rng_seed: u64,
}

/// The floor for `String` ids with cluster id 0 (a longer cluster id raises it by up
/// to 9 bytes; a size refused for that runs at the exact floor instead).
fn string_floor() -> usize {
    SwimConfig::default().min_packet_size::<String>()
}

/// `max_packet_size`s from below the floor for `String` ids (down to the absolute
/// `SwimConfig::MIN_PACKET_SIZE`, which is all `validate` without an id type asks) to four
/// times the floor, the floor itself often.
fn sizes() -> impl Strategy<Value = usize> {
    let floor = string_floor();
    prop_oneof![
        4 => floor..=4 * floor,
        1 => Just(floor),
        1 => SwimConfig::MIN_PACKET_SIZE..floor,
    ]
}

fn plans() -> impl Strategy<Value = Plan> {
    let member = (
        prop_oneof![2 => 1..=MAX_ID_LEN, 1 => Just(MAX_ID_LEN)],
        sizes(),
        0..=6_000u64,
        any::<usize>(),
    )
        .prop_map(|(id_len, size, join_ms, seed)| MemberSpec {
            id_len,
            size,
            join_ms,
            seed,
        });
    (
        prop_oneof![Just(0u64), any::<u64>()],
        proptest::collection::vec(member, 2..=6),
        proptest::option::of((any::<usize>(), 0..30_000u64)),
        proptest::option::of((any::<usize>(), 0..30_000u64)),
        prop_oneof![2 => Just(0u64), 1 => 1u64..=20],
        8u64..=30,
        any::<u64>(),
    )
        .prop_map(
            |(cluster_id, members, crash, leave, loss_pct, periods, rng_seed)| Plan {
                cluster_id,
                members,
                crash,
                leave,
                loss_pct,
                periods,
                rng_seed,
            },
        )
}

/// Runs `plan` on a FIFO in-memory network with virtual time (50 ms ticks from a base
/// `Instant`; no clock is read after it), checking every packet as it is handed out:
/// at most its sender's `max_packet_size`. A size can be refused only below the floor
/// for `String` ids, with `SwimConfigError::PacketSize` (the member then runs at the
/// floor); a size that is accepted is the limit its packets are held to. A panic
/// anywhere fails the case.
fn run_plan(plan: &Plan) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let mut config = SwimConfig::default();
    config.cluster_id = plan.cluster_id;
    // Whole-view exchanges (split into packets: finding 8) every 5 s, not every 30.
    config.sync_interval = Duration::from_secs(5);
    let floor = config.min_packet_size::<String>();
    let n = plan.members.len();
    let ids: Vec<String> = plan
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut id = char::from(b'a' + i as u8).to_string();
            id.push_str(&"-".repeat(m.id_len - 1));
            id
        })
        .collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let crash = plan.crash.map(|(who, at)| (who % n, at));
    let leave = plan.leave.map(|(who, at)| (who % n, at));

    let mut nodes: Vec<Option<Swim<String>>> = (0..n).map(|_| None).collect();
    let mut limits = vec![0; n];
    let mut started = vec![false; n];
    let mut crashed = false;
    let mut left = false;
    let mut rng = plan.rng_seed | 1;
    let mut wire: VecDeque<(usize, String, Vec<u8>)> = VecDeque::new();
    let step = Duration::from_millis(50);
    let mut elapsed_ms = 0;
    while elapsed_ms <= plan.periods * 1000 {
        let now = start + Duration::from_millis(elapsed_ms);
        for (i, m) in plan.members.iter().enumerate() {
            if started[i] || m.join_ms > elapsed_ms {
                continue;
            }
            started[i] = true;
            let mut member_config = config.clone();
            member_config.max_packet_size = m.size;
            let seed = 1000 + plan.rng_seed.wrapping_add(i as u64);
            let mut node = match Swim::new(ids[i].clone(), member_config.clone(), seed, now) {
                // Whatever size is accepted is a promise: the checks below hold the
                // member to it (an accepted size below the floor is what finding 8 was).
                Ok(node) => {
                    limits[i] = m.size;
                    node
                }
                Err(e) => {
                    prop_assert!(
                        m.size < floor,
                        "size {} refused at or above the floor {floor}: {e}",
                        m.size
                    );
                    prop_assert_eq!(
                        e,
                        SwimConfigError::PacketSize {
                            got: m.size,
                            min: floor,
                            max: SwimConfig::MAX_PACKET_SIZE,
                        }
                    );
                    member_config.max_packet_size = floor;
                    limits[i] = floor;
                    Swim::new(ids[i].clone(), member_config, seed, now)
                        .expect("the floor is accepted")
                }
            };
            if i > 0 {
                node.join([ids[m.seed % i].clone()], now);
            }
            nodes[i] = Some(node);
        }
        if let Some((who, at)) = crash
            && !crashed
            && at <= elapsed_ms
        {
            crashed = true;
            started[who] = true; // a member that crashes before it starts never starts
            nodes[who] = None;
        }
        if let Some((who, at)) = leave
            && !left
            && at <= elapsed_ms
            && let Some(node) = nodes[who].as_mut()
        {
            left = true;
            node.leave();
        }
        for node in nodes.iter_mut().flatten() {
            node.handle_timeout(now);
        }
        loop {
            for (i, node) in nodes.iter_mut().enumerate() {
                let Some(node) = node else { continue };
                while let Some(t) = node.poll_transmit() {
                    prop_assert!(
                        t.payload.len() <= limits[i],
                        "{} ({}-byte id, max_packet_size {}) sent a {}-byte packet to {}",
                        &ids[i][..1],
                        ids[i].len(),
                        limits[i],
                        t.payload.len(),
                        &t.to[..1],
                    );
                    wire.push_back((i, t.to, t.payload));
                }
                while node.poll_event().is_some() {}
            }
            let Some((from, to, payload)) = wire.pop_front() else {
                break;
            };
            // xorshift64: which packets the wire loses.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if rng % 100 < plan.loss_pct {
                continue;
            }
            let Some(&j) = index.get(to.as_str()) else {
                return Err(TestCaseError::fail(format!(
                    "{} sent to unknown {to:?}",
                    &ids[from][..1]
                )));
            };
            if let Some(node) = nodes[j].as_mut() {
                match node.handle_packet(&payload, now) {
                    Ok(()) => {}
                    Err(PacketError::Left) if node.has_left() => {}
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "{} refused a packet from {}: {e}",
                            &ids[j][..1],
                            &ids[from][..1],
                        )));
                    }
                }
            }
        }
        elapsed_ms += step.as_millis() as u64;
    }
    // Every id is within its declared length, so nothing was ever left out.
    for (i, node) in nodes.iter().enumerate() {
        if let Some(node) = node {
            let c = node.counters();
            prop_assert_eq!(
                (c.oversized_packets, c.oversized_updates),
                (0, 0),
                "{} left packets or updates out",
                &ids[i][..1]
            );
        }
    }
    Ok(())
}

proptest! {
    // 512 cases take about 0.15 s (dsys-detect is optimised in the test profile).
    // Shrinking gets more steps than the default 1024: a plan has many fields.
    #![proptest_config(ProptestConfig {
        cases: 512,
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    })]

    /// Issue 14, finding 8, as a property: whatever the ids (1 to 255 bytes), the
    /// `max_packet_size`s (each member its own, from below the floor to four times it),
    /// the cluster id and the churn (staggered joins, a crash, a leave, loss), a size
    /// `Swim::new` refuses is below the floor, and a member never hands out a packet
    /// larger than the `max_packet_size` it accepted, never leaves an update out, and
    /// never panics. With the fix reverted, a member accepted with 64 bytes panics
    /// (debug) or sends a 141-byte packet (release) on the first join.
    #[test]
    fn no_packet_exceeds_max_packet_size_under_random_churn(plan in plans()) {
        run_plan(&plan)?;
    }
}
