//! What the tokio driver's process tests share: a node's client-facing
//! line protocol (`P <command>` proposes, `D` reads and dumps the applied
//! commands, `S` tells whether it leads) and the clients that speak it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dsys_consensus::tokio::{DriverConfig, Handle, Persister, ProposeError, Transport, spawn};
use dsys_consensus::{Entry, RaftNode, Role, Storage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};

pub(crate) async fn client_session(
    stream: TcpStream,
    handle: Handle<u64, ()>,
    log: Arc<Mutex<Vec<Bytes>>>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match line.split_once(" ").unwrap_or((line.as_str(), "")) {
            ("P", command) => match handle.propose(command.to_owned()).await {
                Ok(applied) => format!("OK {}", applied.index),
                Err(ProposeError::NotLeader { leader }) => {
                    format!("NL {}", leader.unwrap_or(0))
                }
                Err(e) => format!("ERR {e}"),
            },
            ("D", _) => match handle.read().await {
                Ok(_) => {
                    let log = log.lock().expect("ok");
                    let items: Vec<&str> = log
                        .iter()
                        .map(|b| std::str::from_utf8(b).expect("utf-8 commands"))
                        .collect();
                    format!("OK {}", items.join(","))
                }
                Err(e) => format!("ERR {e}"),
            },
            ("S", _) => format!("OK {}", handle.status().role == Role::Leader),
            _ => "ERR unknown".to_owned(),
        };
        if write
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

// ---- The parent: the cluster and its clients ----

/// One request on a fresh connection; `None` if the node is unreachable.
pub(crate) async fn ask(addr: SocketAddr, request: &str) -> Option<String> {
    let attempt = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("{request}\n").as_bytes())
            .await
            .ok()?;
        BufReader::new(read).lines().next_line().await.ok()?
    };
    timeout(Duration::from_secs(5), attempt).await.ok()?
}

/// Proposes `command` until some node acknowledges it; every attempt uses a
/// new command (`command/attempt`), so an attempt whose answer was lost
/// cannot be mistaken for another. Returns the acknowledged one.
pub(crate) async fn propose(addrs: &Arc<Mutex<Vec<Option<SocketAddr>>>>, command: &str) -> String {
    let nodes = addrs.lock().expect("ok").len();
    let mut target = 0usize;
    for attempt in 0..2_000 {
        let addr = addrs.lock().expect("ok")[target];
        let Some(addr) = addr else {
            sleep(Duration::from_millis(5)).await;
            target = (target + 1) % nodes;
            continue;
        };
        let sent = format!("{command}/{attempt}");
        match ask(addr, &format!("P {sent}")).await.as_deref() {
            Some(answer) if answer.starts_with("OK ") => return sent,
            Some(answer) if answer.starts_with("NL ") => {
                let leader: usize = answer[3..].parse().unwrap_or(0);
                if leader == 0 {
                    sleep(Duration::from_millis(20)).await;
                    target = (target + 1) % nodes;
                } else {
                    target = leader - 1;
                }
            }
            _ => {
                sleep(Duration::from_millis(20)).await;
                target = (target + 1) % nodes;
            }
        }
    }
    panic!("{command} not acknowledged after 2000 attempts");
}

/// Runs `node` under the driver (ticks of 10 ms) with a state machine that
/// records every command it applies, and serves the client protocol on
/// `clients` for ever.
pub(crate) async fn run_node<S, P, T>(
    node: RaftNode<S>,
    persister: P,
    transport: T,
    clients: TcpListener,
) where
    S: Storage<NodeId = u64> + Send + 'static,
    P: Persister<S>,
    T: Transport<u64>,
{
    let log: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let applied = Arc::clone(&log);
    let state_machine = move |entry: &Entry<u64>| {
        if !entry.data.is_empty() {
            applied.lock().expect("ok").push(entry.data.clone());
        }
    };
    let mut driver = DriverConfig::default();
    driver.tick = Duration::from_millis(10);
    let handle = spawn(node, persister, transport, state_machine, driver).expect("config");
    loop {
        let Ok((stream, _)) = clients.accept().await else {
            continue;
        };
        tokio::spawn(client_session(stream, handle.clone(), Arc::clone(&log)));
    }
}

// ---- Child processes: how a test binary runs nodes as OS processes ----

/// In a child node: reads the peers (`id=addr ...`) the parent writes on
/// stdin once every child printed its addresses, and exits this process
/// when the parent closes stdin (it died, or the test ended).
pub(crate) fn peers_from_parent() -> Vec<(u64, SocketAddr)> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("peers on stdin");
    std::thread::spawn(|| {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
        std::process::exit(0);
    });
    line.split_whitespace()
        .map(|p| {
            let (n, addr) = p.split_once('=').expect("id=addr");
            (n.parse().expect("id"), addr.parse().expect("addr"))
        })
        .collect()
}

/// In the parent: starts this test binary again as child node `id` (its
/// test `child_node` runs the node, `envs` say how), and returns it with the
/// fields of the `ADDRS ...` line it prints once it listens.
// The caller owns the child and kills and reaps it (its cluster's `Drop`);
// if reading its addresses panics, the test fails and the child exits with
// its stdin closed.
#[allow(clippy::zombie_processes)]
pub(crate) fn spawn_child(id: u64, envs: &[(&str, String)]) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = Command::new(&exe);
    command
        .args(["--exact", "child_node", "--nocapture", "--test-threads=1"])
        .env("DSYS_RAFT_CHILD", id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut process = command.spawn().expect("spawn a node");
    let stdout = process.stdout.take().expect("piped");
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the child prints its addresses")
            .expect("utf-8");
        // libtest may print "test child_node ... " on the same line.
        if let Some(at) = line.find("ADDRS ") {
            let fields = line[at + "ADDRS ".len()..]
                .split(' ')
                .map(str::to_owned)
                .collect();
            return (process, fields);
        }
    }
}

/// In the parent: hands a child the peers line (`id=addr ...\n`).
pub(crate) fn tell_peers(process: &mut std::process::Child, peers: &str) {
    use std::io::Write;
    let stdin = process.stdin.as_mut().expect("piped");
    stdin.write_all(peers.as_bytes()).expect("write peers");
    stdin.flush().expect("flush");
}
