//! The wire codec (`dsys_consensus::codec`): every message round-trips, for
//! every kind of body, entry and membership (joint ones included); any byte
//! string either decodes to a message that re-encodes to exactly those bytes
//! (one encoding per message) or is refused with an error, never a panic.

use bytes::Bytes;
use dsys_consensus::codec::{self, DecodeError};
use dsys_consensus::{
    AppendOutcome, Entry, Membership, Message, MessageBody, SnapshotMeta, SnapshotOutcome,
};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..8, any::<u64>()]
}

fn num() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..300, any::<u64>()]
}

fn membership() -> impl Strategy<Value = Membership<u64>> {
    (
        prop::collection::vec(id(), 0..5),
        prop::collection::vec(id(), 0..5),
        prop::collection::vec(id(), 0..3),
        prop::collection::vec(id(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(voters, outgoing, learners, next, auto)| {
            Membership::joint(voters, outgoing, learners, next, auto)
        })
}

fn data() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

fn entry() -> impl Strategy<Value = Entry<u64>> {
    prop_oneof![
        (num(), num(), data()).prop_map(|(t, i, d)| Entry::new(t, i, d)),
        (num(), num(), membership()).prop_map(|(t, i, m)| Entry::membership(t, i, m)),
    ]
}

fn body() -> impl Strategy<Value = MessageBody<u64>> {
    prop_oneof![
        (any::<bool>(), num(), num(), any::<bool>(), num()).prop_map(|(p, li, lt, lx, pr)| {
            MessageBody::VoteRequest {
                pre_vote: p,
                last_index: li,
                last_term: lt,
                leadership_transfer: lx,
                priority: pr,
            }
        }),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::VoteResponse { pre_vote, granted }),
        (num(), num(), prop::collection::vec(entry(), 0..4), num()).prop_map(
            |(prev_index, prev_term, entries, commit)| MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            }
        ),
        num().prop_map(
            |last_index| MessageBody::AppendResponse(AppendOutcome::Accepted { last_index })
        ),
        (num(), num(), num()).prop_map(|(rejected, hint_index, hint_term)| {
            MessageBody::AppendResponse(AppendOutcome::Rejected {
                rejected,
                hint_index,
                hint_term,
            })
        }),
        (num(), num())
            .prop_map(|(commit, read_round)| MessageBody::Heartbeat { commit, read_round }),
        num().prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        Just(MessageBody::TimeoutNow),
        num().prop_map(|id| MessageBody::ReadIndexRequest { id }),
        (num(), prop::option::of(num()))
            .prop_map(|(id, index)| MessageBody::ReadIndexResponse { id, index }),
        (num(), num(), membership(), num(), data(), any::<bool>()).prop_map(
            |(index, term, membership, offset, data, last)| MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index,
                    term,
                    membership,
                },
                offset,
                data,
                last,
            }
        ),
        (num(), num(), num()).prop_map(|(commit, last_index, last_term)| {
            MessageBody::Quiesce {
                commit,
                last_index,
                last_term,
            }
        }),
        (
            num(),
            prop_oneof![
                num().prop_map(|offset| SnapshotOutcome::Next { offset }),
                Just(SnapshotOutcome::Installed),
                Just(SnapshotOutcome::Rejected),
            ]
        )
            .prop_map(|(index, outcome)| MessageBody::SnapshotResponse { index, outcome }),
    ]
}

fn message() -> impl Strategy<Value = Message<u64>> {
    (id(), id(), num(), body()).prop_map(|(from, to, term, body)| Message {
        from,
        to,
        term,
        body,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn messages_round_trip(message in message()) {
        let bytes = codec::encode_to_vec(&message);
        prop_assert_eq!(codec::decode::<u64>(&bytes), Ok(message));
        // Every strict prefix is refused.
        for cut in 0..bytes.len() {
            prop_assert!(codec::decode::<u64>(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn string_ids_round_trip(message in message()) {
        let message = Message {
            from: format!("node-{}", message.from),
            to: format!("node-{}", message.to),
            term: message.term,
            body: MessageBody::<String>::TimeoutNow,
        };
        let bytes = codec::encode_to_vec(&message);
        prop_assert_eq!(codec::decode::<String>(&bytes), Ok(message));
    }

    /// Arbitrary bytes, and valid messages with bytes flipped: refused, or
    /// the one encoding of what they decode to.
    #[test]
    fn any_bytes_decode_canonically_or_fail(
        message in message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = codec::encode_to_vec(&message);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        for input in [bytes, noise] {
            let _ = codec::decode::<String>(&input);
            if let Ok(decoded) = codec::decode::<u64>(&input) {
                prop_assert_eq!(codec::encode_to_vec(&decoded), input);
            }
        }
    }
}

#[test]
fn empty_input_is_truncated() {
    assert_eq!(codec::decode::<u64>(&[]), Err(DecodeError::Truncated));
}
