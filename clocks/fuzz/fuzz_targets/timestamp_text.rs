//! `Timestamp::from_str` on arbitrary text: never panics, and whatever it
//! accepts is the canonical form: it prints back as the same text.
#![no_main]

use dsys_clocks::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        let printed = ts.to_string();
        assert_eq!(
            printed.parse::<Timestamp>(),
            Ok(ts),
            "{text:?} -> {printed:?}"
        );
        assert_eq!(Timestamp::from_u64(ts.to_u64()), ts);
    }
});
