//! Loading `.index` and `.timeindex` files of arbitrary contents: the first 8 bytes
//! (little-endian) are the segment length, the rest the file. Decoding never panics;
//! what it accepts re-encodes to the same bytes and answers lookups consistently.
#![no_main]

use dsys_log::{OffsetIndex, TimeIndex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, file)) = data.split_first_chunk::<8>() else {
        return;
    };
    let segment_len = u64::from_le_bytes(*len);

    if let Ok(index) = OffsetIndex::decode(file, segment_len) {
        assert_eq!(index.encode_from(0), file);
        let entries = index.entries();
        assert!(entries.iter().all(|e| (e.position as u64) < segment_len));
        let mut probes = vec![0, 1, u32::MAX];
        for e in entries {
            probes.extend([e.relative_offset, e.relative_offset.saturating_add(1)]);
        }
        for probe in probes {
            let position = index.lookup(probe);
            // The last entry below the probe, or the start of the segment.
            let expected = entries
                .iter()
                .rev()
                .find(|e| e.relative_offset < probe)
                .map_or(0, |e| e.position);
            assert_eq!(position, expected, "lookup({probe})");
        }
        if let Some(mid) = entries.get(entries.len() / 2) {
            let mut cut = index.clone();
            cut.truncate_to_position(mid.position);
            assert!(cut.entries().iter().all(|e| e.position < mid.position));
            assert_eq!(cut.encode_from(0), file[..cut.entries().len() * 8]);
        }
    }

    if let Ok(times) = TimeIndex::decode(file) {
        assert_eq!(times.encode_from(0), file);
        let entries = times.entries();
        assert_eq!(times.max_timestamp(), entries.last().map(|e| e.timestamp));
        let mut probes = vec![i64::MIN, 0, i64::MAX];
        for e in entries {
            probes.extend([e.timestamp, e.timestamp.saturating_add(1)]);
        }
        for probe in probes {
            let expected = entries
                .iter()
                .rev()
                .find(|e| e.timestamp < probe)
                .map_or(0, |e| e.relative_offset.saturating_add(1));
            assert_eq!(times.lookup(probe), expected, "lookup({probe})");
        }
        if let Some(mid) = entries.get(entries.len() / 2) {
            let mut cut = times.clone();
            cut.truncate_to_offset(mid.relative_offset);
            assert!(
                cut.entries()
                    .iter()
                    .all(|e| e.relative_offset < mid.relative_offset)
            );
        }
    }
});
