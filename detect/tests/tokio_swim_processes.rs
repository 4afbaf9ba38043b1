//! Twenty OS processes, each a SWIM member run by the tokio driver over UDP on
//! 127.0.0.1: all join through three seeds and converge (SWIM §4.1); one is
//! killed with SIGKILL and every other member declares it down within the
//! detection time its config allows (SWIM §3.1 probing, §4.2 suspicion,
//! Lifeguard §4.3 suspicion timeouts); it restarts on the same address, with
//! nothing kept, outbids its previous life's incarnation (SWIM §4.2,
//! refutation) and every member sees it alive again.
//!
//! The test binary is its own child: `child_node` runs a member when
//! `DSYS_SWIM_CHILD` is set, and does nothing otherwise. A child binds
//! `DSYS_SWIM_BIND` (`127.0.0.1:0` for a fresh address), prints
//! `@@ ADDR <addr>`, reads `SEEDS <addr>...` from stdin and joins through
//! them, then prints every membership event as `@@ EVENT <kind> <addr>` and
//! answers `STATE <addr>` (`@@ STATE <addr> <state> <incarnation>`) and `SELF`
//! (`@@ SELF <incarnation>`) from stdin. It exits when stdin closes, so no
//! child outlives the test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dsys_detect::tokio::{DriverConfig, spawn};
use dsys_detect::{Event, SwimConfig};

const MEMBERS: usize = 20;
const SEEDS: usize = 3;
/// Not a seed, so the restart joins through seeds that stayed up.
const VICTIM: usize = 11;

/// Short timers for a quick test, long enough for 20 processes on a loaded
/// 2-core machine (a loopback round trip there can take tens of ms when the
/// scheduler is busy; Lifeguard stretches the timers of a member that falls
/// behind).
fn swim_config() -> SwimConfig {
    let mut config = SwimConfig::default();
    config.probe_interval = Duration::from_millis(200);
    config.probe_timeout = Duration::from_millis(100);
    config.gossip_interval = Duration::from_millis(100);
    config.suspicion_mult = 4;
    config.suspicion_max_timeout_mult = 3;
    config.sync_interval = Duration::from_secs(2);
    config
}

/// The detection time this config gives a cluster of `n` members: from the
/// kill until the last survivor holds the victim down. The sum of:
/// - **first probe**: each survivor probes every member once per round of
///   `n − 1` periods in its own random order (SWIM §4.3), so in a period some
///   survivor picks the victim with probability about `1 − (1 − 1/(n−1))^(n−1)
///   ≈ 1 − 1/e`; the expected wait is `e/(e−1)` periods (SWIM §3.1). Allow
///   `FIRST_PROBE_PERIODS` = 10 periods: no survivor reaching it that long has
///   probability about `e^−10 < 10^−4`.
/// - **the probe itself**: one period (direct ping, then ping-req).
/// - **suspicion**: at most `suspicion_max_timeout_mult ·
///   suspicion_mult · max(1, log10 n) · probe_interval` at the first suspecter
///   (Lifeguard §4.3; confirmations only shorten it).
/// - **dissemination**: the declaration reaches everyone by gossip: each
///   holder pushes it to `gossip_nodes` members every `gossip_interval`,
///   `retransmit_mult · ⌈log10(n+1)⌉` times (SWIM §4.1); allow that many
///   intervals.
///
/// The test asserts against this times `MARGIN` (1.5), plus one second: 20
/// processes share 2 cores with other work, so timers fire late and a
/// member's Lifeguard score stretches its own probe periods (§4.1).
fn detection_bound(config: &SwimConfig, n: usize) -> Duration {
    const FIRST_PROBE_PERIODS: u32 = 10;
    let scale = (n as f64).log10().max(1.0);
    let min_suspicion = config
        .probe_interval
        .mul_f64(f64::from(config.suspicion_mult) * scale);
    let max_suspicion = min_suspicion * config.suspicion_max_timeout_mult;
    let retransmits = config.retransmit_mult * ((n + 1) as f64).log10().ceil() as u32;
    config.probe_interval * (FIRST_PROBE_PERIODS + 1)
        + max_suspicion
        + config.gossip_interval * retransmits
}

const MARGIN: f64 = 1.5;

// ---- The child: one member ----

#[test]
fn child_node() {
    if std::env::var_os("DSYS_SWIM_CHILD").is_none() {
        return;
    }
    let bind = std::env::var("DSYS_SWIM_BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(bind));
}

async fn serve(bind: String) {
    let socket = tokio::net::UdpSocket::bind(&bind).await.expect("bind");
    let (handle, mut events) =
        spawn(socket, swim_config(), DriverConfig::default()).expect("spawn");
    say(&format!("ADDR {}", handle.me()));
    // Commands from the parent; when it closes stdin (or dies), exit.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let (kind, node) = match event {
                    Event::Up(n) => ("Up", n),
                    Event::Suspect { node, .. } => ("Suspect", node),
                    Event::Down { node, .. } => ("Down", node),
                    Event::Left(n) => ("Left", n),
                    Event::Rejoined(n) => ("Rejoined", n),
                };
                say(&format!("EVENT {kind} {node}"));
            }
            line = lines.recv() => {
                let Some(line) = line else { return };
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("SEEDS") => {
                        let seeds = words.map(|w| w.parse::<SocketAddr>().expect("an address"));
                        handle.join(seeds.collect::<Vec<_>>()).await.expect("running");
                    }
                    Some("STATE") => {
                        let node: SocketAddr = words.next().expect("an address").parse().expect("an address");
                        let snapshot = handle.snapshot().await.expect("running");
                        let (state, incarnation) = snapshot
                            .members
                            .iter()
                            .find(|(addr, _, _)| *addr == node)
                            .map_or(("None".to_owned(), 0), |(_, s, i)| (format!("{s:?}"), *i));
                        say(&format!("STATE {node} {state} {incarnation}"));
                    }
                    Some("SELF") => {
                        let snapshot = handle.snapshot().await.expect("running");
                        say(&format!("SELF {}", snapshot.incarnation));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// One line to the parent. libtest may have written `test child_node ... `
/// on the same line, hence the marker.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").expect("stdout");
    out.flush().expect("stdout");
}

// ---- The parent ----

/// A line from a child: its slot, which life of that slot, when it arrived.
struct Line {
    slot: usize,
    life: u32,
    at: Instant,
    words: Vec<String>,
}

struct Member {
    process: Child,
    stdin: ChildStdin,
    addr: SocketAddr,
    life: u32,
}

/// The children, and what the parent knows of their views.
struct Cluster {
    members: Vec<Member>,
    lines: mpsc::Receiver<Line>,
    sender: mpsc::Sender<Line>,
    /// Per slot: each node's last event, and when it arrived.
    views: Vec<BTreeMap<SocketAddr, (String, Instant)>>,
    /// Per slot: answers to `STATE` and `SELF`, oldest first.
    replies: Vec<Vec<Vec<String>>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.process.kill();
            let _ = m.process.wait();
        }
    }
}

/// Starts a child bound to `bind`; returns it once it has printed its address.
fn start_child(slot: usize, life: u32, bind: &str, sender: &mpsc::Sender<Line>) -> Member {
    let exe = std::env::current_exe().expect("the test binary");
    let mut process = Command::new(exe)
        .args(["--exact", "child_node", "--nocapture", "--test-threads=1"])
        .env("DSYS_SWIM_CHILD", "1")
        .env("DSYS_SWIM_BIND", bind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a member");
    let stdin = process.stdin.take().expect("piped");
    let mut lines = BufReader::new(process.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the child prints its address (or it could not bind)")
            .expect("utf-8");
        if let Some(at) = line.find("@@ ADDR ") {
            break line[at + "@@ ADDR ".len()..]
                .trim()
                .parse::<SocketAddr>()
                .expect("an address");
        }
    };
    // Read every line at once, so a child never blocks on a full pipe.
    let sender = sender.clone();
    std::thread::spawn(move || {
        for line in lines {
            let Ok(line) = line else { break };
            let Some(at) = line.find("@@ ") else { continue };
            let words = line[at + 3..]
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let line = Line {
                slot,
                life,
                at: Instant::now(),
                words,
            };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Member {
        process,
        stdin,
        addr,
        life,
    }
}

impl Cluster {
    fn start() -> Cluster {
        let (sender, lines) = mpsc::channel();
        let members: Vec<Member> = (0..MEMBERS)
            .map(|slot| start_child(slot, 0, "127.0.0.1:0", &sender))
            .collect();
        let mut cluster = Cluster {
            members,
            lines,
            sender,
            views: vec![BTreeMap::new(); MEMBERS],
            replies: vec![Vec::new(); MEMBERS],
        };
        for slot in 0..MEMBERS {
            cluster.send_seeds(slot);
        }
        cluster
    }

    fn send_seeds(&mut self, slot: usize) {
        let seeds: Vec<String> = self.members[..SEEDS]
            .iter()
            .map(|m| m.addr.to_string())
            .collect();
        self.tell(slot, &format!("SEEDS {}", seeds.join(" ")));
    }

    fn tell(&mut self, slot: usize, line: &str) {
        let stdin = &mut self.members[slot].stdin;
        writeln!(stdin, "{line}").expect("write to a child");
        stdin.flush().expect("flush");
    }

    fn addr(&self, slot: usize) -> SocketAddr {
        self.members[slot].addr
    }

    /// Takes the lines that arrived, within `wait` for the first.
    fn pump(&mut self, wait: Duration) {
        let mut next = self.lines.recv_timeout(wait).ok();
        while let Some(line) = next {
            if line.life == self.members[line.slot].life {
                match line.words.first().map(String::as_str) {
                    Some("EVENT") if line.words.len() == 3 => {
                        let node: SocketAddr = line.words[2].parse().expect("an address");
                        self.views[line.slot].insert(node, (line.words[1].clone(), line.at));
                    }
                    Some("STATE" | "SELF") => self.replies[line.slot].push(line.words),
                    _ => {}
                }
            }
            next = self.lines.try_recv().ok();
        }
    }

    /// Pumps lines until `done` holds, or panics with `what` after `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration, done: impl Fn(&Cluster) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what} within {limit:?}");
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// `slot`'s last event about `node`, if it came after `since`.
    fn last_event(&self, slot: usize, node: SocketAddr, since: Instant) -> Option<&str> {
        self.views[slot]
            .get(&node)
            .filter(|(_, at)| *at >= since)
            .map(|(kind, _)| kind.as_str())
    }

    /// Asks `slot` a question; returns its answer's words.
    fn ask(&mut self, slot: usize, question: &str) -> Vec<String> {
        self.replies[slot].clear();
        self.tell(slot, question);
        self.wait_for(
            &format!("an answer to {question}"),
            Duration::from_secs(5),
            |c| !c.replies[slot].is_empty(),
        );
        self.replies[slot].remove(0)
    }

    fn incarnation_of_self(&mut self, slot: usize) -> u32 {
        self.ask(slot, "SELF")[1].parse().expect("a number")
    }
}

fn alive(kind: Option<&str>) -> bool {
    matches!(kind, Some("Up" | "Rejoined"))
}

#[test]
fn twenty_processes_detect_a_sigkill_and_see_the_restart() {
    let started = Instant::now();
    let config = swim_config();
    let bound = detection_bound(&config, MEMBERS).mul_f64(MARGIN) + Duration::from_secs(1);
    let mut cluster = Cluster::start();
    let epoch = started;

    // Everyone knows everyone: each member's last event about every other
    // member is Up (or Rejoined, after a false suspicion refuted).
    cluster.wait_for("convergence of 20 members", Duration::from_secs(20), |c| {
        (0..MEMBERS).all(|i| {
            (0..MEMBERS)
                .filter(|&j| j != i)
                .all(|j| alive(c.last_event(i, c.addr(j), epoch)))
        })
    });
    let converged = started.elapsed();
    let victim = cluster.addr(VICTIM);
    let old_incarnation = cluster.incarnation_of_self(VICTIM);

    // SIGKILL: no leave, no goodbye.
    cluster.members[VICTIM]
        .process
        .kill()
        .expect("SIGKILL the victim");
    cluster.members[VICTIM].process.wait().expect("reaped");
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..MEMBERS).filter(|&i| i != VICTIM).collect();
    cluster.wait_for(
        &format!("every survivor declaring {victim} down (bound {bound:?})"),
        bound,
        |c| {
            survivors
                .iter()
                .all(|&i| c.last_event(i, victim, killed) == Some("Down"))
        },
    );
    let detections: Vec<Duration> = survivors
        .iter()
        .map(|&i| cluster.views[i][&victim].1 - killed)
        .collect();
    let first = detections.iter().min().copied().unwrap_or_default();
    let last = detections.iter().max().copied().unwrap_or_default();
    assert!(last <= bound, "last detection {last:?} over {bound:?}");

    // Restart on the same address, knowing nothing of its previous life.
    let restarted = Instant::now();
    let life = cluster.members[VICTIM].life + 1;
    let sender = cluster.sender.clone();
    // The killed process's port is free at once (UDP keeps no TIME_WAIT).
    cluster.members[VICTIM] = start_child(VICTIM, life, &victim.to_string(), &sender);
    cluster.views[VICTIM].clear();
    cluster.send_seeds(VICTIM);
    cluster.wait_for(
        &format!("every member seeing {victim} alive again"),
        Duration::from_secs(10),
        |c| {
            survivors
                .iter()
                .all(|&i| alive(c.last_event(i, victim, restarted)))
                && survivors
                    .iter()
                    .all(|&j| alive(c.last_event(VICTIM, c.addr(j), restarted)))
        },
    );
    let back = restarted.elapsed();
    // A new incarnation, above its previous life's (SWIM §4.2), and held by
    // every survivor.
    let new_incarnation = cluster.incarnation_of_self(VICTIM);
    assert!(
        new_incarnation > old_incarnation,
        "incarnation {new_incarnation} after the restart, {old_incarnation} before"
    );
    for &i in &survivors {
        let answer = cluster.ask(i, &format!("STATE {victim}"));
        assert_eq!(answer[2], "Alive", "member {i} on {victim}: {answer:?}");
        let seen: u32 = answer[3].parse().expect("a number");
        assert!(
            seen > old_incarnation,
            "member {i} holds incarnation {seen}"
        );
    }
    println!(
        "20 processes: converged in {converged:?}; {victim} killed, first declared down \
         after {first:?}, by all after {last:?} (bound {bound:?}); restarted with \
         incarnation {new_incarnation} (was {old_incarnation}), seen alive by all after \
         {back:?}; whole test {:?}",
        started.elapsed()
    );
}
