//! The tokio driver with user-supplied parts, on a one-node cluster (it
//! elects itself and commits alone): a persister whose writes finish in the
//! background is acknowledged in order and proposals still apply; a
//! persister that fails stops the driver, and what was pending fails with
//! `ShutDown`; a node outside the leader refuses with `NotLeader`.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsys_consensus::tokio::{
    DriverConfig, MemPersister, PersistFuture, Persister, ProposeError, Transport, spawn,
};
use dsys_consensus::{Config, Entry, HardState, MemStorage, Message, Persist, RaftNode, Role};
use tokio::time::{sleep, timeout};

/// A transport to nowhere: a one-node cluster sends nothing.
struct Alone;

impl Transport<u64> for Alone {
    fn send(&mut self, message: Message<u64>) {
        panic!("a one-node cluster sent {message:?}");
    }
    async fn recv(&mut self) -> Option<Message<u64>> {
        std::future::pending().await
    }
}

/// Writes into the storage at once, reports durability a little later,
/// and records the order batches were handed over in.
#[derive(Clone, Default)]
struct Slow(Arc<Mutex<VecDeque<u64>>>);

impl Persister<MemStorage<u64>> for Slow {
    fn persist(
        &mut self,
        storage: &mut MemStorage<u64>,
        batch: Persist<HardState<u64>, u64>,
    ) -> PersistFuture {
        self.0.lock().expect("not poisoned").push_back(batch.id);
        let written = MemPersister.persist(storage, batch);
        // Later batches finish sooner: the driver must still acknowledge
        // in batch order.
        let delay = Duration::from_millis(20 - (self.0.lock().expect("ok").len() as u64 % 20));
        Box::pin(async move {
            sleep(delay).await;
            written.await
        })
    }
}

/// Fails the batch that carries the command "x".
struct FailOnX;

impl Persister<MemStorage<u64>> for FailOnX {
    fn persist(
        &mut self,
        storage: &mut MemStorage<u64>,
        batch: Persist<HardState<u64>, u64>,
    ) -> PersistFuture {
        if batch.entries.iter().any(|e| e.data == "x") {
            return Box::pin(std::future::ready(Err(io::Error::other("disk on fire"))));
        }
        MemPersister.persist(storage, batch)
    }
}

fn single() -> RaftNode<MemStorage<u64>> {
    RaftNode::new(1, MemStorage::new(vec![1]), Config::default()).expect("bootstrap")
}

fn fast() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.tick = Duration::from_millis(5);
    config
}

#[tokio::test]
async fn background_persistence_is_acknowledged_in_order() {
    let persister = Slow::default();
    let seen = Arc::clone(&persister.0);
    let handle = spawn(
        single(),
        persister,
        Alone,
        |e: &Entry<u64>| e.data.clone(),
        fast(),
    )
    .expect("config");
    timeout(Duration::from_secs(10), handle.leader())
        .await
        .expect("elects itself")
        .expect("running");
    let mut proposals = Vec::new();
    for i in 0..20 {
        let handle = handle.clone();
        proposals.push(tokio::spawn(async move {
            handle.propose(format!("p{i}")).await
        }));
    }
    for (i, p) in proposals.into_iter().enumerate() {
        let applied = p.await.expect("no panic").expect("applied");
        assert_eq!(applied.output, format!("p{i}").as_bytes());
    }
    let status = handle.status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.applied, status.persisted);
    let ids: Vec<u64> = seen.lock().expect("ok").iter().copied().collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failed_write_stops_the_driver() {
    let handle = spawn(single(), FailOnX, Alone, |_: &Entry<u64>| (), fast()).expect("config");
    timeout(Duration::from_secs(10), handle.leader())
        .await
        .expect("elects itself")
        .expect("running");
    let result = timeout(Duration::from_secs(10), handle.propose("x"))
        .await
        .expect("answered");
    assert_eq!(result, Err(ProposeError::ShutDown));
    timeout(Duration::from_secs(10), async {
        while !handle.is_shut_down() {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("stopped");
    assert!(matches!(
        handle.propose("y").await,
        Err(ProposeError::ShutDown)
    ));
}

#[tokio::test]
async fn a_follower_refuses_with_no_leader_known() {
    // Node 2 of a cluster whose other members never answer: it knows no
    // leader, and says so.
    let node =
        RaftNode::new(2u64, MemStorage::new(vec![1, 2, 3]), Config::default()).expect("bootstrap");
    struct Deaf;
    impl Transport<u64> for Deaf {
        fn send(&mut self, _: Message<u64>) {}
        async fn recv(&mut self) -> Option<Message<u64>> {
            None
        }
    }
    let handle = spawn(node, MemPersister, Deaf, |_: &Entry<u64>| (), fast()).expect("config");
    assert_eq!(
        handle.propose("x").await,
        Err(ProposeError::NotLeader { leader: None })
    );
    assert_eq!(
        handle.read().await,
        Err(dsys_consensus::tokio::ReadError::NoLeader)
    );
    handle.shutdown().await;
    assert!(handle.is_shut_down());
}
