//! Shared by the property tests.

/// How many cases a property test runs: `default` in CI, or the
/// `PROPTEST_CASES` environment variable when set (a soak run, e.g.
/// `PROPTEST_CASES=100000 cargo test --release -p dsys-clocks`).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
