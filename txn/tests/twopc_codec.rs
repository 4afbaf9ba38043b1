//! The 2PC codec: every message and record round-trips; decoding arbitrary
//! bytes never panics, and whatever it accepts re-encodes to the same
//! bytes (one encoding per value). Cases: `PROPTEST_CASES` (proptest's own
//! variable; default 256). A failure prints the minimal input.

use dsys_txn::twopc::{Answer, DecodeError, Message, Outcome, Record, TxId, Vote, WireId};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

fn tx() -> impl Strategy<Value = TxId> {
    any::<u64>().prop_map(TxId)
}

fn list<N: Ord + Clone + std::fmt::Debug + 'static>(
    id: impl Strategy<Value = N> + 'static,
) -> impl Strategy<Value = Vec<N>> {
    btree_set(id, 1..20).prop_map(|s| s.into_iter().collect())
}

fn message<N: Ord + Clone + std::fmt::Debug + 'static>(
    id: impl Strategy<Value = N> + Clone + 'static,
) -> impl Strategy<Value = Message<N>> {
    let vote = prop_oneof![Just(Vote::Yes), Just(Vote::No), Just(Vote::ReadOnly)];
    let outcome = prop_oneof![Just(Outcome::Commit), Just(Outcome::Abort)];
    let answer = prop_oneof![
        Just(Answer::Commit),
        Just(Answer::Abort),
        Just(Answer::Unknown)
    ];
    prop_oneof![
        (tx(), list(id.clone()))
            .prop_map(|(tx, participants)| Message::Prepare { tx, participants }),
        tx().prop_map(|tx| Message::CommitOnePhase { tx }),
        (tx(), vote).prop_map(|(tx, vote)| Message::Vote { tx, vote }),
        (tx(), outcome).prop_map(|(tx, outcome)| Message::Decision { tx, outcome }),
        tx().prop_map(|tx| Message::Ack { tx }),
        (id.clone(), tx())
            .prop_map(|(coordinator, tx)| Message::DecisionRequest { coordinator, tx }),
        (id, tx(), answer).prop_map(|(coordinator, tx, answer)| Message::DecisionReply {
            coordinator,
            tx,
            answer
        }),
    ]
}

fn record<N: Ord + Clone + std::fmt::Debug + 'static>(
    id: impl Strategy<Value = N> + Clone + 'static,
) -> impl Strategy<Value = Record<N>> {
    prop_oneof![
        (tx(), list(id.clone())).prop_map(|(tx, participants)| Record::Commit { tx, participants }),
        tx().prop_map(|tx| Record::End { tx }),
        (id.clone(), tx(), list(id.clone())).prop_map(|(coordinator, tx, participants)| {
            Record::Prepared {
                coordinator,
                tx,
                participants,
            }
        }),
        (id.clone(), tx()).prop_map(|(coordinator, tx)| Record::Committed { coordinator, tx }),
        (id, tx()).prop_map(|(coordinator, tx)| Record::Aborted { coordinator, tx }),
    ]
}

fn enc_m<N: WireId + Ord>(m: &Message<N>) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut b);
    b
}

fn enc_r<N: WireId + Ord>(r: &Record<N>) -> Vec<u8> {
    let mut b = Vec::new();
    r.encode(&mut b);
    b
}

proptest! {
    #[test]
    fn messages_round_trip(m in message(any::<u64>())) {
        let b = enc_m(&m);
        prop_assert_eq!(Message::<u64>::decode(&b), Ok(m));
        // Every strict prefix is refused.
        for cut in 0..b.len() {
            prop_assert!(Message::<u64>::decode(&b[..cut]).is_err());
        }
    }

    #[test]
    fn string_id_messages_round_trip(m in message("[a-z0-9.:-]{0,40}")) {
        prop_assert_eq!(Message::<String>::decode(&enc_m(&m)), Ok(m));
    }

    #[test]
    fn records_round_trip(r in record(any::<u32>())) {
        let b = enc_r(&r);
        prop_assert_eq!(Record::<u32>::decode(&b), Ok(r));
        let mut longer = b.clone();
        longer.push(0);
        prop_assert_eq!(Record::<u32>::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn arbitrary_bytes_decode_canonically(b in vec(any::<u8>(), 0..80)) {
        if let Ok(m) = Message::<u64>::decode(&b) {
            prop_assert_eq!(enc_m(&m), b.clone());
        }
        if let Ok(r) = Record::<u64>::decode(&b) {
            prop_assert_eq!(enc_r(&r), b.clone());
        }
        if let Ok(m) = Message::<String>::decode(&b) {
            prop_assert_eq!(enc_m(&m), b.clone());
        }
        if let Ok(r) = Record::<u16>::decode(&b) {
            prop_assert_eq!(enc_r(&r), b);
        }
    }
}
