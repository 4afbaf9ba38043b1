//! Model-checked publication between the appender and a reader (DESIGN.md, testing
//! layer 4). Run with
//! `RUSTFLAGS="--cfg dsys_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p dsys-log --test loom`
//! (`.ci/run` does). Under that cfg the log's mutexes and atomics, and the in-memory
//! directory's, are loom's, so loom explores every interleaving of an append (file
//! write, index update, segment roll, high-watermark store) with a concurrent read.
#![cfg(dsys_loom)]

use dsys_log::{BatchBuilder, Log, LogConfig, LogReader, MemDir, MemFile, NewRecord};
use loom::thread;

fn batch(first: u64) -> dsys_log::BatchBuf {
    let mut b = BatchBuilder::new();
    for offset in first..first + 2 {
        b.push(NewRecord::new(0, None, Some(&offset.to_be_bytes())));
    }
    b.finish().expect("non-empty")
}

/// Reads everything below the high-watermark the reader saw first, checking that
/// every offset is there, in order, with its value: nothing below the
/// high-watermark may be missing or half-written, whatever the appender is doing.
fn read_all_below_high_watermark(reader: &LogReader<MemFile>) -> u64 {
    let high_watermark = reader.high_watermark();
    let mut offset = 0;
    while offset < high_watermark {
        let batches = reader
            .read(offset, 1 << 10)
            .expect("read below the high-watermark");
        assert!(
            !batches.is_empty(),
            "offset {offset} is below the high-watermark {high_watermark} but unreadable"
        );
        for b in batches {
            for r in b.records() {
                let r = r.expect("a complete record");
                assert_eq!(r.offset, offset);
                assert_eq!(r.value.as_deref(), Some(&offset.to_be_bytes()[..]));
                offset += 1;
            }
        }
    }
    high_watermark
}

fn config() -> LogConfig {
    let mut c = LogConfig::default();
    // Two batches per segment: the second append below rolls.
    c.segment_bytes = 120;
    c
}

#[test]
fn loom_reader_sees_whole_batches_below_the_high_watermark_across_a_roll() {
    loom::model(|| {
        let (mut log, _) = Log::open(MemDir::new(), config()).expect("open");
        log.append(batch(0), 0).expect("append");
        let reader = log.reader();
        let t = thread::spawn(move || {
            let first = read_all_below_high_watermark(&reader);
            let second = read_all_below_high_watermark(&reader);
            assert!(second >= first, "the high-watermark never goes back");
        });
        log.append(batch(2), 0).expect("append into a new segment");
        assert_eq!(log.segment_count(), 2, "the append rolled");
        t.join().expect("reader");
    });
}
