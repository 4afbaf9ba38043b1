//! dsys-detect's SWIM (with Lifeguard, and without it as an ablation) against foca 2.0
//! on the same simulated network, scenario and seeds: crash detection, join
//! propagation, false Downs under 5 % loss and with one slow node, and traffic.
//!
//! ```text
//! cargo run --release -p dsys-detect --example swim_vs_foca -- [--nodes 100,1000] [--seeds K] [--jobs J]
//! ```
//!
//! Defaults: 100 and 1000 nodes, 2 seeds, 1 job (`--jobs` runs seeds on that many
//! threads). Each seed runs `scenario::run` with `Plan::new(n, seed)`: bootstrap,
//! 10 s of steady-state traffic, 10 rounds of crash-and-replace, 120 s of 5 % loss on
//! every link, then three 120 s slow-node phases (whole-process pauses of 2–5 s,
//! receive stalls of 2–5 s, receive stalls of 10–25 s).
//!
//! Everything runs in virtual time (`dsys_detect::sim`); the wall-clock column only
//! says how long the simulation took.

#[path = "../tests/support/foca_node.rs"]
mod foca_node;

use std::time::{Duration, Instant};

use dsys_detect::sim::scenario::{self, FalseDowns, Plan, Report};
use dsys_detect::sim::{Latencies, SimNode};
use dsys_detect::{Swim, SwimConfig};
use foca_node::{FocaNode, foca_config};

fn main() {
    let (nodes, seeds, jobs) = parse_args();
    let base = Instant::now();
    for &n in &nodes {
        println!("\n## {n} nodes, {seeds} seed(s), 1 s protocol period, latency 1-10 ms uniform\n");
        let dsys = measure("dsys (Lifeguard)", n, seeds, jobs, base, |i, now, seed| {
            swim(i, now, seed, true)
        });
        let plain = measure("dsys (plain SWIM)", n, seeds, jobs, base, |i, now, seed| {
            swim(i, now, seed, false)
        });
        let foca_cfg = foca_config(n);
        let foca = measure("foca 2.0", n, seeds, jobs, base, |i, now, seed| {
            FocaNode::new(i, foca_cfg.clone(), node_seed(seed, i), now)
        });
        print_table(n, &[&dsys, &plain, &foca]);
    }
}

fn parse_args() -> (Vec<usize>, u64, u64) {
    let mut nodes = vec![100, 1000];
    let mut seeds = 2;
    let mut jobs = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                nodes = args
                    .next()
                    .expect("--nodes needs a value, e.g. 100,1000")
                    .split(',')
                    .map(|s| s.trim().parse().expect("--nodes takes numbers"))
                    .collect();
            }
            "--seeds" => {
                seeds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seeds takes a number");
            }
            "--jobs" => {
                jobs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&j| j > 0)
                    .expect("--jobs takes a positive number");
            }
            other => panic!(
                "unknown argument {other:?}; usage: [--nodes 100,1000] [--seeds K] [--jobs J]"
            ),
        }
    }
    (nodes, seeds, jobs)
}

fn node_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64
}

fn swim(i: usize, now: Instant, seed: u64, lifeguard: bool) -> Swim<u32> {
    let mut config = SwimConfig::default();
    config.lifeguard = lifeguard;
    Swim::new(
        u32::try_from(i).expect("small cluster"),
        config,
        node_seed(seed, i),
        now,
    )
    .expect("default config is valid")
}

/// Reports of one implementation over all seeds.
struct Measured {
    name: &'static str,
    reports: Vec<Report>,
    wall: Duration,
}

fn measure<N: SimNode>(
    name: &'static str,
    n: usize,
    seeds: u64,
    jobs: u64,
    base: Instant,
    make: impl Fn(usize, Instant, u64) -> N + Sync,
) -> Measured {
    let started = Instant::now();
    let make = &make;
    let mut results: Vec<(u64, Report)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(seeds))
            .map(|job| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for seed in (job..seeds).step_by(jobs as usize) {
                        let plan = Plan::new(n, seed);
                        match scenario::run(&plan, base, |i, now| make(i, now, seed)) {
                            Ok(r) => out.push((seed, r)),
                            Err(e) => eprintln!("{name}, {n} nodes, seed {seed}: {e}"),
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a simulation panicked"))
            .collect()
    });
    results.sort_by_key(|(seed, _)| *seed);
    let reports = results.into_iter().map(|(_, r)| r).collect();
    let wall = started.elapsed();
    eprintln!("{name}: {n} nodes x {seeds} seeds in {wall:.1?}");
    Measured {
        name,
        reports,
        wall,
    }
}

fn merged(m: &Measured, pick: impl Fn(&Report) -> &Latencies) -> Latencies {
    let mut out = Latencies::default();
    for r in &m.reports {
        out.merge(pick(r));
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn lat(l: &Latencies) -> String {
    match l.summary() {
        Some(s) => {
            let missing = if l.missing > 0 {
                format!(" ({} missing)", l.missing)
            } else {
                String::new()
            };
            format!(
                "{} / {} / {}{missing}",
                secs(s.mean),
                secs(s.p99),
                secs(s.max)
            )
        }
        None => format!("- ({} missing)", l.missing),
    }
}

fn downs(d: FalseDowns) -> String {
    format!("{} / {} / {}", d.events, d.pairs, d.subjects)
}

fn sum_downs(m: &Measured, pick: impl Fn(&Report) -> Option<FalseDowns>) -> FalseDowns {
    let mut out = FalseDowns::default();
    for d in m.reports.iter().filter_map(pick) {
        out.events += d.events;
        out.pairs += d.pairs;
        out.subjects += d.subjects;
    }
    out
}

fn mean(m: &Measured, pick: impl Fn(&Report) -> f64) -> f64 {
    m.reports.iter().map(pick).sum::<f64>() / m.reports.len().max(1) as f64
}

fn print_table(n: usize, all: &[&Measured]) {
    let log2 = (n as f64).log2();
    let period = Plan::new(n, 0).probe_interval.as_secs_f64();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&Measured) -> String| {
        rows.push((label.to_string(), all.iter().map(|m| f(m)).collect()));
    };
    row("bootstrap converged, s (worst seed)", &|m| {
        let worst = m.reports.iter().map(|r| r.bootstrap).max().flatten();
        let failed = m.reports.iter().any(|r| r.bootstrap.is_none());
        match (failed, worst) {
            (false, Some(d)) => secs(d),
            _ => "did not converge".into(),
        }
    });
    row("crash -> Down per observer, s: mean / p99 / max", &|m| {
        lat(&merged(m, |r| &r.crash))
    });
    row("crash -> Down at every member, s: mean / p99 / max", &|m| {
        lat(&merged(m, |r| &r.crash_all))
    });
    row("join -> Up per observer, s: mean / p99 / max", &|m| {
        lat(&merged(m, |r| &r.join))
    });
    row("join -> Up at every member, s: mean / p99 / max", &|m| {
        lat(&merged(m, |r| &r.join_all))
    });
    row(
        &format!("join -> everyone, protocol periods (log2 n = {log2:.1})"),
        &|m| match merged(m, |r| &r.join_all).summary() {
            Some(s) => format!(
                "mean {:.1}, max {:.1}",
                s.mean.as_secs_f64() / period,
                s.max.as_secs_f64() / period
            ),
            None => "-".into(),
        },
    );
    row(
        "5% loss, 120 s: false Downs (events / pairs / subjects)",
        &|m| downs(sum_downs(m, |r| Some(r.loss_false))),
    );
    for (k, label) in [
        "pauses 2-5 s",
        "receive stalls 2-5 s",
        "receive stalls 10-25 s",
    ]
    .iter()
    .enumerate()
    {
        row(
            &format!("slow node, {label}: healthy Downs (ev / pairs / subj)"),
            &|m| downs(sum_downs(m, |r| r.slow.get(k).map(|o| o.healthy))),
        );
        row(
            &format!("slow node, {label}: Downs of the slow node (ev / pairs)"),
            &|m| {
                let d = sum_downs(m, |r| r.slow.get(k).map(|o| o.slow));
                format!("{} / {}", d.events, d.pairs)
            },
        );
    }
    row("steady state: msgs / node / s", &|m| {
        format!("{:.2}", mean(m, |r| r.traffic.msgs))
    });
    row("steady state: bytes / node / s", &|m| {
        format!("{:.0}", mean(m, |r| r.traffic.bytes))
    });
    row("5% loss: msgs / node / s", &|m| {
        format!("{:.2}", mean(m, |r| r.loss_traffic.msgs))
    });
    row("simulation wall time", &|m| format!("{:.1?}", m.wall));

    let width0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..all.len())
        .map(|c| {
            rows.iter()
                .map(|r| r.1[c].chars().count())
                .chain([all[c].name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |label: &str, cells: &[String]| {
        let mut s = format!("| {label:<width0$} |");
        for (c, cell) in cells.iter().enumerate() {
            s.push_str(&format!(" {cell:<w$} |", w = widths[c]));
        }
        println!("{s}");
    };
    let names: Vec<String> = all.iter().map(|m| m.name.to_string()).collect();
    line("", &names);
    let mut sep = format!("|{}|", "-".repeat(width0 + 2));
    for w in &widths {
        sep.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    println!("{sep}");
    for (label, cells) in &rows {
        line(label, cells);
    }
}
