//! Seeded simulation (DESIGN.md layer 3): Raft under message loss,
//! duplication, reordering, symmetric and one-way partitions, crashes and
//! restarts, and leadership transfers. Every step checks election safety,
//! log matching, leader completeness and state-machine safety (Raft
//! Figure 3); each run ends with a liveness check (a leader is elected and
//! a new proposal applies everywhere within a bound once faults stop) and
//! a linearizability check of the clients' history.
//!
//! `DSYS_SIM_SEEDS=n` sets how many seeds to run (default 1000);
//! `DSYS_SIM_SEED=s` replays one seed with `replay`.

use dsys_consensus::sim::chaos::{self, ChaosConfig, Report};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn chaos_seeds_keep_raft_safe_live_and_linearizable() {
    let seeds = env_u64("DSYS_SIM_SEEDS").unwrap_or(1000);
    let first = env_u64("DSYS_SIM_FIRST_SEED").unwrap_or(0);
    let config = ChaosConfig::default();
    let mut reports: Vec<Report> = Vec::new();
    for seed in first..first + seeds {
        match chaos::run(seed, &config) {
            Ok(report) => reports.push(report),
            Err(failure) => panic!("{failure}"),
        }
    }
    let total = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let worst_recovery = reports.iter().map(|r| r.recovery_ticks).max().unwrap_or(0);
    println!(
        "{seeds} seeds: {} elections, {} entries committed, {} client ops completed ({} indeterminate), {} crashes, {} messages lost, {} duplicated; slowest recovery {worst_recovery} ticks",
        total(|r| r.elections),
        total(|r| r.committed),
        reports.iter().map(|r| r.ops.0).sum::<usize>(),
        reports.iter().map(|r| r.ops.1).sum::<usize>(),
        total(|r| r.crashes),
        total(|r| r.network.lost),
        total(|r| r.network.duplicated),
    );
    // The sweep must actually exercise the protocol: faults, elections,
    // commits and completed reads and writes.
    assert!(
        total(|r| r.crashes) > seeds / 2,
        "too few crashes to mean anything"
    );
    assert!(total(|r| r.elections) > seeds * 2, "too few elections");
    assert!(reports.iter().map(|r| r.ops.0).sum::<usize>() as u64 > seeds * 5);
    for options in [(true, true), (false, false), (true, false), (false, true)] {
        assert!(
            reports
                .iter()
                .any(|r| (r.options.0, r.options.1) == options),
            "pre-vote/check-quorum combination {options:?} never drawn"
        );
    }
}

#[test]
fn replay() {
    let seed = env_u64("DSYS_SIM_SEED").unwrap_or(42);
    match chaos::run(seed, &ChaosConfig::default()) {
        Ok(report) => println!("{report:#?}"),
        Err(failure) => panic!("{failure}"),
    }
}
