//! Seeds for the randomized simulations.
//!
//! `DSYS_CRDT_SIM_SEEDS` sets how many seeds each randomized test runs (a soak run sets
//! it high) and `DSYS_CRDT_SIM_FIRST_SEED` the first one (default 0). A failing seed is
//! printed with the command that replays it alone.

/// Runs `check` on each seed; on the first failure, prints the seed, what went wrong and
/// the replay command, then panics.
pub(crate) fn for_each_seed(
    test: &str,
    default_seeds: u64,
    check: impl Fn(u64) -> Result<(), String>,
) {
    let var = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
    };
    let first = var("DSYS_CRDT_SIM_FIRST_SEED").unwrap_or(0);
    let count = var("DSYS_CRDT_SIM_SEEDS").unwrap_or(default_seeds);
    for seed in first..first.saturating_add(count) {
        if let Err(why) = check(seed) {
            let replay = format!(
                "DSYS_CRDT_SIM_FIRST_SEED={seed} DSYS_CRDT_SIM_SEEDS=1 cargo test -p dsys-crdt \
                 --test {} {test} -- --exact --nocapture",
                env!("CARGO_CRATE_NAME")
            );
            eprintln!("{test}: seed {seed} failed: {why}\nreplay: {replay}");
            panic!("{test}: seed {seed} failed (replay: {replay})");
        }
    }
}
