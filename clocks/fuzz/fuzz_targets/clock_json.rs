//! Deserializing clocks from arbitrary JSON (bytes from a peer): never
//! panics, and what it accepts is canonical and round-trips.
#![no_main]

use dsys_clocks::{DottedVersionVector, Siblings, VectorClock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(clock) = serde_json::from_slice::<VectorClock<u16>>(data) {
        let entries: Vec<(u16, u64)> = clock.iter().map(|(n, c)| (*n, c)).collect();
        assert!(
            entries.windows(2).all(|w| w[0].0 < w[1].0),
            "not sorted and unique: {entries:?}"
        );
        assert!(
            entries.iter().all(|(_, c)| *c > 0),
            "zero entry kept: {entries:?}"
        );
        let again: VectorClock<u16> =
            serde_json::from_str(&serde_json::to_string(&clock).unwrap()).unwrap();
        assert_eq!(again, clock);
        let _ = clock.compare(&again);
    }
    if let Ok(clock) = serde_json::from_slice::<DottedVersionVector<u16>>(data) {
        assert!(clock.dot().counter > 0);
        assert!(!clock.context().contains(clock.dot()));
        let _ = clock.to_version_vector();
    }
    if let Ok(mut siblings) = serde_json::from_slice::<Siblings<u16, u8>>(data) {
        // Canonical: distinct dots, and no version supersedes another.
        let clocks: Vec<_> = siblings.iter().map(|(clock, _)| clock.clone()).collect();
        for (i, a) in clocks.iter().enumerate() {
            for b in &clocks[i + 1..] {
                assert_eq!(a.compare(b), dsys_clocks::CausalOrder::Concurrent, "{a:?} vs {b:?}");
            }
        }
        let context = siblings.context();
        let copy = siblings.clone();
        siblings.merge(&copy);
        let _ = siblings.update(&context, &0, 0);
    }
});
