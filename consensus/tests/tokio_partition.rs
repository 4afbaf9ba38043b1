//! The driver over an in-memory transport that can cut a node off: a
//! leader cut off with two proposals in hand is replaced; once it hears
//! from the new leader, both proposals end as `Lost` (one overwritten at
//! its index, one past the new leader's log, overtaken by the new leader's
//! committed no-op: §5.4.1 Leader Completeness says it can never commit),
//! although the cluster stays idle afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsys_consensus::tokio::{DriverConfig, Handle, MemPersister, ProposeError, Transport, spawn};
use dsys_consensus::{Config, Entry, MemStorage, Message, RaftNode, Role};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

#[derive(Default)]
struct Hub {
    inboxes: Mutex<BTreeMap<u64, mpsc::UnboundedSender<Message<u64>>>>,
    cut: Mutex<BTreeSet<u64>>,
}

struct MemTransport {
    hub: Arc<Hub>,
    inbox: mpsc::UnboundedReceiver<Message<u64>>,
}

impl Transport<u64> for MemTransport {
    fn send(&mut self, message: Message<u64>) {
        let cut = self.hub.cut.lock().expect("ok");
        if cut.contains(&message.from) || cut.contains(&message.to) {
            return;
        }
        if let Some(inbox) = self.hub.inboxes.lock().expect("ok").get(&message.to) {
            let _ = inbox.send(message);
        }
    }
    async fn recv(&mut self) -> Option<Message<u64>> {
        self.inbox.recv().await
    }
}

async fn leader_among(handles: &[Handle<u64, ()>], skip: Option<usize>) -> usize {
    timeout(Duration::from_secs(10), async {
        loop {
            for (i, h) in handles.iter().enumerate() {
                if Some(i) != skip && h.status().role == Role::Leader {
                    return i;
                }
            }
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a leader within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_proposals_end_lost_in_an_idle_cluster() {
    let hub = Arc::new(Hub::default());
    let ids = [1u64, 2, 3];
    let mut handles = Vec::new();
    for id in ids {
        let (tx, inbox) = mpsc::unbounded_channel();
        hub.inboxes.lock().expect("ok").insert(id, tx);
        let transport = MemTransport {
            hub: Arc::clone(&hub),
            inbox,
        };
        let mut config = Config::default();
        config.seed = id;
        // The cut-off leader must still lead when its proposals arrive,
        // however slow the machine: without check-quorum it steps down
        // only when it hears of the newer term.
        config.check_quorum = false;
        let node = RaftNode::new(id, MemStorage::new(ids.to_vec()), config).expect("bootstrap");
        let mut driver = DriverConfig::default();
        driver.tick = Duration::from_millis(10);
        let sm = |_: &Entry<u64>| ();
        handles.push(spawn(node, MemPersister, transport, sm, driver).expect("config"));
    }
    let old = leader_among(&handles, None).await;
    handles[old].propose("a").await.expect("committed");

    hub.cut.lock().expect("ok").insert(ids[old]);
    let mut pending = Vec::new();
    for data in ["p1", "p2"] {
        let handle = handles[old].clone();
        pending.push(tokio::spawn(async move { handle.propose(data).await }));
    }
    let new = leader_among(&handles, Some(old)).await;
    assert_ne!(new, old);
    hub.cut.lock().expect("ok").clear();

    let mut indexes = Vec::new();
    for p in pending {
        let result = timeout(Duration::from_secs(10), p)
            .await
            .expect("settled once the old leader hears from the new one")
            .expect("no panic");
        match result {
            Err(ProposeError::Lost { index }) => indexes.push(index),
            other => panic!("expected Lost, got {other:?}"),
        }
    }
    // The two tasks may have proposed in either order.
    indexes.sort_unstable();
    assert_eq!(indexes[1], indexes[0] + 1);
    for h in &handles {
        h.shutdown().await;
    }
}
