//! Opening a log on arbitrary segment files (a crash, a damaged disk, files copied
//! from elsewhere): recovery never panics, reads below the high-watermark and an
//! append never panic, and a clean close reopens at the same offset. When recovery
//! validated every segment (no recovery point trusted), reads find every batch and
//! the appended batch reads back; segments behind a
//! clean-shutdown checkpoint are trusted without checks, as in Kafka, so damage in
//! them may hide batches from readers.
//!
//! Input layout (`log/tests/format.rs` writes seeds in it):
//!
//! ```text
//! flags      u8      bit 0: a second segment; bit 1: a recovery.checkpoint section;
//!                    bit 2: a producer snapshot section
//! base1      u64 BE  base offset of the second segment
//! sections   segment 0 .log, .index, .timeindex; if bit 0, the same for segment
//!            base1; if bit 1, recovery.checkpoint; if bit 2, a u64 BE offset and
//!            the <offset>.snapshot file
//! ```
//!
//! A section is a `u32 BE` length and that many bytes (fewer if the input ends
//! first); length `u32::MAX` leaves the file out. Missing bytes read as zeros.
#![no_main]

use dsys_log::{BatchBuilder, Log, LogConfig, MemDir, NewRecord};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let head = self.take(8);
        b[..head.len()].copy_from_slice(head);
        u64::from_be_bytes(b)
    }

    fn section(&mut self) -> Option<&'a [u8]> {
        if self.0.len() < 4 {
            self.0 = &[];
            return None;
        }
        let len = u32::from_be_bytes(self.take(4).try_into().expect("4 bytes"));
        (len != u32::MAX).then(|| self.take(len as usize))
    }
}

fn name(base: u64, suffix: &str) -> String {
    format!("{base:020}{suffix}")
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.take(1).first().copied().unwrap_or(0);
    let base1 = input.u64();
    let dir = MemDir::new();
    let mut bases = vec![0];
    if flags & 1 != 0 {
        bases.push(base1);
    }
    for base in bases {
        for suffix in [".log", ".index", ".timeindex"] {
            if let Some(bytes) = input.section() {
                dir.write_file(&name(base, suffix), bytes);
            }
        }
    }
    if flags & 2 != 0 {
        if let Some(bytes) = input.section() {
            dir.write_file("recovery.checkpoint", bytes);
        }
    }
    if flags & 4 != 0 {
        let offset = input.u64();
        if let Some(bytes) = input.section() {
            dir.write_file(&name(offset, ".snapshot"), bytes);
        }
    }

    let mut config = LogConfig::default();
    config.segment_bytes = 1024;
    config.index_interval_bytes = 64;
    config.segment_ms = None;
    let Ok((mut log, report)) = Log::open(dir.clone(), config.clone()) else {
        return;
    };
    assert_eq!(report.next_offset, log.next_offset());
    let validated = report.validated_segments == report.segments;
    let start = log.log_start_offset();
    let high_watermark = log.high_watermark();
    assert!(start <= high_watermark);

    // Every offset when there are few; otherwise batch by batch.
    let every = high_watermark - start <= 2048;
    let mut offset = start;
    let mut reads = 0;
    while offset < high_watermark && reads < 4096 {
        reads += 1;
        let batches = log
            .read(offset, 256)
            .expect("read below the high-watermark");
        let Some(first) = batches.first() else {
            // Nothing from `offset` on: only gaps up to the high-watermark.
            if validated {
                let last = log.read(high_watermark - 1, 256).expect("read");
                assert!(
                    last.is_empty(),
                    "read({offset}) is empty but not the end: {last:?}"
                );
                break;
            }
            offset += 1;
            continue;
        };
        assert!(
            first.last_offset() >= offset,
            "read({offset}) starts at {first:?}"
        );
        // Validated segments hold batches in offset order (trusted ones may not).
        for pair in batches.windows(2) {
            assert!(
                !validated || pair[1].base_offset() > pair[0].last_offset(),
                "{batches:?}"
            );
        }
        for batch in &batches {
            assert!(
                batch.last_offset() < high_watermark,
                "{batch:?} past {high_watermark}"
            );
            for record in batch.records() {
                if record.is_err() {
                    break;
                }
            }
        }
        offset = if every {
            offset + 1
        } else {
            batches.last().expect("non-empty").last_offset() + 1
        };
    }
    for ts in [i64::MIN, 0, 1_700_000_000_000, i64::MAX] {
        let _ = log.offset_for_timestamp(ts);
    }

    let mut b = BatchBuilder::new();
    b.push(NewRecord::new(
        1_700_000_000_000,
        Some(b"key"),
        Some(b"value"),
    ));
    let next = log.next_offset();
    if let Ok(appended) = log.append(b.finish().expect("one record"), 0) {
        assert_eq!(appended.base_offset, next);
    }
    if validated && log.next_offset() > next {
        let read = log.read(next, 1024).expect("read the appended batch");
        let first = read
            .first()
            .unwrap_or_else(|| panic!("appended at {next} but read nothing"));
        assert_eq!(first.base_offset(), next);
        let record = first
            .records()
            .next()
            .expect("a record")
            .expect("valid record");
        assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
    }
    let next = log.next_offset();
    if log.close().is_ok() {
        let (log, report) = Log::open(dir, config).expect("reopen after a clean close");
        assert_eq!(log.next_offset(), next, "{report:?}");
    }
});
