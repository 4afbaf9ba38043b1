//! Regression tests for bugs found by the adversarial review of
//! `dsys_txn::twopc` (each failed before its fix).

use std::time::{Duration, Instant};

use dsys_txn::twopc::{
    Config, Coordinator, DecodeError, Message, Output, Participant, ParticipantStatus, PersistId,
    Record, TxId, Vote,
};

fn drain_c(c: &mut Coordinator<u64>) -> Vec<Output<u64>> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn drain_p(p: &mut Participant<u64>) -> Vec<Output<u64>> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

/// An `Instant` so far ahead that `now + retry_interval` overflows: the
/// clock-jump case `later` saturates for. Returns `None` on a platform
/// whose `Instant` cannot get there.
fn end_of_time(base: Instant) -> Option<Instant> {
    let mut step = Duration::from_secs(u64::MAX / 2);
    let mut at = base;
    // Climb as far as `checked_add` allows, halving the step.
    while step >= Duration::from_millis(1) {
        match at.checked_add(step) {
            Some(next) => at = next,
            None => step /= 2,
        }
    }
    at.checked_add(Duration::from_secs(1))
        .is_none()
        .then_some(at)
}

/// Bug: `handle_timeout` re-armed a timer at `now` when `now + interval`
/// overflowed, and its loop fired it again, forever (unbounded outputs).
/// Each due timer must fire at most once per call.
#[test]
fn far_future_instant_does_not_loop_forever() {
    let base = Instant::now();
    let Some(end) = end_of_time(base) else {
        return;
    };
    // Coordinator in phase 2 (resends Commit every retry_interval).
    let mut c = Coordinator::recover(
        Config::default(),
        0u64,
        [Record::Commit {
            tx: TxId(1),
            participants: vec![1, 2],
        }],
        end,
    )
    .unwrap();
    drain_c(&mut c);
    c.handle_timeout(end);
    let outs = drain_c(&mut c);
    assert!(outs.len() <= 2, "{} outputs from one tick", outs.len());

    // Participant in doubt (asks every retry_interval).
    let mut p = Participant::recover(
        Config::default(),
        1u64,
        [Record::Prepared {
            coordinator: 0,
            tx: TxId(1),
            participants: vec![1, 2],
        }],
        end,
    )
    .unwrap();
    drain_p(&mut p);
    p.handle_timeout(end);
    let outs = drain_p(&mut p);
    assert!(outs.len() <= 2, "{} outputs from one tick", outs.len());
    assert_eq!(p.status(&0, TxId(1)), Some(ParticipantStatus::Prepared));
}

/// Bug: a `String` id longer than 255 bytes was encoded with a saturated
/// length byte followed by all its bytes, which could decode, without
/// error, as a different message (the doc promised a refusal).
#[test]
fn overlong_string_ids_never_decode_as_another_message() {
    // "\0" + 254 'a' + "\x02": 256 bytes; the decoder took its first 255
    // bytes as one id and the last byte as the next id's length.
    let mut long = String::from("\0");
    long.push_str(&"a".repeat(254));
    long.push('\u{2}');
    assert_eq!(long.len(), 256);
    let m = Message::Prepare {
        tx: TxId(3),
        participants: vec![long, "b".to_string()],
    };
    let mut bytes = Vec::new();
    m.encode(&mut bytes);
    match Message::<String>::decode(&bytes) {
        Ok(other) => panic!("decoded {other:?}, not the message encoded"),
        Err(e) => assert_eq!(e, DecodeError::BadId),
    }
    // Every over-long id is refused, wherever it stands.
    for len in [256, 300, 1000] {
        let r = Record::Committed {
            coordinator: "x".repeat(len),
            tx: TxId(9),
        };
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        assert_eq!(Record::<String>::decode(&bytes), Err(DecodeError::BadId));
    }
    // 255 bytes is still fine.
    let r = Record::Committed {
        coordinator: "y".repeat(255),
        tx: TxId(9),
    };
    let mut bytes = Vec::new();
    r.encode(&mut bytes);
    assert_eq!(Record::<String>::decode(&bytes), Ok(r));
}

/// Bug: `recover` checked logged participant lists against the current
/// `Config::max_participants`, so lowering it made a log this node wrote
/// unrecoverable ("malformed"/"contradiction"), stranding in-doubt
/// transactions.
#[test]
fn recover_accepts_lists_written_under_a_larger_max_participants() {
    let now = Instant::now();
    let mut small = Config::default();
    small.max_participants = 2;
    let list: Vec<u64> = (1..=5).collect();
    let c = Coordinator::recover(
        small.clone(),
        0u64,
        [Record::Commit {
            tx: TxId(1),
            participants: list.clone(),
        }],
        now,
    );
    assert!(c.is_ok(), "{c:?}");
    let p = Participant::recover(
        small,
        3u64,
        [Record::Prepared {
            coordinator: 0,
            tx: TxId(1),
            participants: list,
        }],
        now,
    );
    assert!(p.is_ok(), "{p:?}");
}

/// Sanity for the regression above: a Prepare with too many participants
/// is still refused on the wire path, and a vote works at the boundary.
#[test]
fn max_participants_still_bounds_new_prepares() {
    let now = Instant::now();
    let mut small = Config::default();
    small.max_participants = 2;
    let mut p = Participant::new(small, 1u64).unwrap();
    p.handle_message(
        0,
        Message::Prepare {
            tx: TxId(1),
            participants: vec![1, 2, 3],
        },
        now,
    );
    assert_eq!(p.counters().malformed, 1);
    assert!(p.is_empty());
    p.handle_message(
        0,
        Message::Prepare {
            tx: TxId(1),
            participants: vec![1, 2],
        },
        now,
    );
    drain_p(&mut p);
    p.vote(&0, TxId(1), Vote::Yes, now).unwrap();
    let outs = drain_p(&mut p);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Persist { force: true, .. }))
    );
    p.on_persisted(PersistId(1));
    assert_eq!(p.status(&0, TxId(1)), Some(ParticipantStatus::Prepared));
}
