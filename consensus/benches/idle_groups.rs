//! CPU and heap of idle Raft groups (multi-Raft), per node of a 3-node
//! deployment, for dsys-consensus with and without quiescence and for
//! raft-rs 0.7 in the same run, with the floor: a bare loop that visits
//! every replica once per tick.
//!
//! One thread hosts all three nodes' replicas of `N` groups (3 × N
//! `RaftNode`s or `RawNode`s over in-memory storage) and a perfect
//! in-memory network between them. One simulated tick = `tick()` on every
//! live replica, each drained the documented way, then every message that
//! results is delivered and drained until none is left. Leaders are spread
//! evenly over the live nodes. After a warm-up (elections, then
//! [`idle::QUIESCE_AFTER_TICKS`] + 3 election timeouts with quiescence on,
//! so every group is quiesced, or one election timeout without, as
//! heartbeating groups are in their steady state once elected), the
//! thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) of `DSYS_IDLE_TICKS` ticks
//! (default 30; ten times as many for the floor and quiesced groups, whose
//! ticks cost little) is measured and reported per simulated second at 10 ticks/s (etcd's
//! 100 ms tick) and per node: the total divided by the nodes that are up
//! (3, or 2 with a peer down), i.e. the average share of one node, leader
//! and follower work together. Heap per group is the heap the groups hold
//! after the warm-up (a counting global allocator), divided by `N`.
//!
//! Cases: `floor` (a loop visiting 3 × N boxed 64-byte records, adding 1
//! to each per tick: the least any tick-every-group design costs),
//! `dsys-quiesced` (`Config::quiesce_after_ticks` = 20), `dsys-quiesced-peer-down`
//! (the node of replica 3 down, reported with `set_peer_liveness` to every
//! live replica), `dsys-heartbeat` (quiescence off), `raft-rs` and
//! `raft-rs-peer-down` (no quiescence in raft-rs: its leaders heartbeat
//! every follower, the dead one too).
//!
//! ```text
//! cargo bench --manifest-path bench/Cargo.toml --bench idle_groups
//! DSYS_IDLE_GROUPS=10000 DSYS_IDLE_TICKS=20 cargo bench --manifest-path bench/Cargo.toml --bench idle_groups -- dsys
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;
use rustix::time::{ClockId, clock_gettime};

mod idle;

use idle::dsys::DsysGroups;
use idle::raft_rs::RaftRsGroups;
use idle::{ELECTION_TICK, Groups, QUIESCE_AFTER_TICKS, REPLICAS, TICKS_PER_SECOND};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Ticks run before measuring when quiescence is on: enough for every
/// group to quiesce.
const WARM_UP_TICKS_QUIESCE: u32 = QUIESCE_AFTER_TICKS + 3 * ELECTION_TICK;

/// Ticks run before measuring otherwise: heartbeating groups are in their
/// steady state as soon as their leader is elected.
const WARM_UP_TICKS: u32 = ELECTION_TICK;

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).expect("CPU time is positive"),
        u32::try_from(t.tv_nsec).expect("nanoseconds fit"),
    )
}

/// The floor: one visit per replica per tick to a record of its own on the
/// heap, as a loop that ticks every group must at least make.
struct Floor {
    /// Boxed on purpose: one allocation per replica, scattered as the
    /// replicas' own state is, rather than one contiguous array.
    #[allow(clippy::vec_box)]
    records: Vec<Box<[u64; 8]>>,
}

impl Groups for Floor {
    fn tick_all(&mut self) {
        for record in &mut self.records {
            record[0] = black_box(record[0] + 1);
        }
    }

    fn messages(&self) -> u64 {
        0
    }

    fn census(&self) -> (usize, usize) {
        (0, 0)
    }
}

struct Case {
    name: &'static str,
    /// Nodes up (the CPU is shared among them).
    nodes_up: usize,
    /// Groups with a leader and replicas quiesced that the warm-up must
    /// reach (`None`: not checked).
    expect: Option<(bool, usize)>,
}

fn run_case<G: Groups>(case: &Case, groups: usize, ticks: u32, build: impl FnOnce() -> G) {
    let heap_before = HEAP.current_usage();
    let built = Instant::now();
    let mut g = build();
    let warm_up = match case.expect {
        Some((true, _)) => WARM_UP_TICKS_QUIESCE,
        _ => WARM_UP_TICKS,
    };
    for _ in 0..warm_up {
        g.tick_all();
    }
    let setup = built.elapsed();
    let heap = HEAP.current_usage().saturating_sub(heap_before);
    let (leaders, quiesced) = g.census();
    if let Some((quiesce, live)) = case.expect {
        assert_eq!(leaders, groups, "{}: every group has a leader", case.name);
        if quiesce {
            assert_eq!(
                quiesced,
                groups * live,
                "{}: every live replica is quiesced",
                case.name
            );
        }
    }
    // Quiesced groups and the floor cost so little per tick that a short
    // window is lost in scheduling noise: they run ten times as many ticks.
    let ticks = match case.expect {
        Some((false, _)) => ticks,
        _ => ticks * 10,
    };
    let messages_before = g.messages();
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for _ in 0..ticks {
        g.tick_all();
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    let messages = g.messages() - messages_before;
    let simulated_s = f64::from(ticks) / f64::from(TICKS_PER_SECOND);
    let cpu_per_s = cpu.as_secs_f64() / simulated_s;
    let per_node_pct = 100.0 * cpu_per_s / case.nodes_up as f64;
    println!(
        "groups {groups:>6}  {:<24} CPU {:>9.3} ms per simulated s ({:>7.3}% of a core per node; wall {:>9.3} ms/s)  \
         {:>8.1} µs/tick  {:>7} msgs/tick  heap {:>6} B/group  (quiesced {quiesced}, leaders {leaders}, setup {:.1} s)",
        case.name,
        cpu_per_s * 1e3,
        per_node_pct,
        wall.as_secs_f64() / simulated_s * 1e3,
        cpu.as_secs_f64() * 1e6 / f64::from(ticks),
        messages / u64::from(ticks),
        heap / groups,
        setup.as_secs_f64(),
    );
    drop(g);
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let sizes: Vec<usize> = std::env::var("DSYS_IDLE_GROUPS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("DSYS_IDLE_GROUPS: numbers"))
        .collect();
    let ticks: u32 = std::env::var("DSYS_IDLE_TICKS")
        .map(|s| s.parse().expect("DSYS_IDLE_TICKS: a number"))
        .unwrap_or(30);
    println!(
        "idle groups: 3 replicas each, {TICKS_PER_SECOND} ticks/s, {ticks} measured ticks (x10 for the floor and \
         quiesced groups) after \
         {WARM_UP_TICKS_QUIESCE} (quiescence on) or {WARM_UP_TICKS} (off); CPU = this thread's CPU time"
    );
    let down = Some(REPLICAS - 1);
    for groups in sizes {
        let case = |name, nodes_up, expect| Case {
            name,
            nodes_up,
            expect,
        };
        let c = case("floor", 3, None);
        if wanted(c.name) {
            run_case(&c, groups, ticks, || Floor {
                records: (0..groups * REPLICAS).map(|_| Box::new([0; 8])).collect(),
            });
        }
        let c = case("dsys-quiesced", 3, Some((true, 3)));
        if wanted(c.name) {
            run_case(&c, groups, ticks, || DsysGroups::new(groups, true, None));
        }
        let c = case("dsys-quiesced-peer-down", 2, Some((true, 2)));
        if wanted(c.name) {
            run_case(&c, groups, ticks, || DsysGroups::new(groups, true, down));
        }
        let c = case("dsys-heartbeat", 3, Some((false, 3)));
        if wanted(c.name) {
            run_case(&c, groups, ticks, || DsysGroups::new(groups, false, None));
        }
        let c = case("raft-rs", 3, Some((false, 3)));
        if wanted(c.name) {
            run_case(&c, groups, ticks, || RaftRsGroups::new(groups, None));
        }
        let c = case("raft-rs-peer-down", 2, Some((false, 2)));
        if wanted(c.name) {
            run_case(&c, groups, ticks, || RaftRsGroups::new(groups, down));
        }
    }
}
