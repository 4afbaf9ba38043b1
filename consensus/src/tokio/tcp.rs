//! A ready [`Transport`] over TCP.
//!
//! A frame is a 4-byte big-endian length, then one message in the
//! [`codec`](crate::codec) format. Each node keeps one outgoing connection
//! per peer, opened on demand and reopened with exponential backoff after a
//! failure; it reads whatever connections peers open to it. Messages wait in
//! a bounded queue per peer; when it is full, or when a write fails, they
//! are dropped and counted: Raft resends what matters.
//!
//! Connections are not authenticated: anyone who can reach the listener
//! can send messages (the node ignores senders outside its membership, but
//! a cluster that faces untrusted networks wants TLS in front of this).
//! What one can hold is bounded: incoming connections are capped
//! (`max_connections`) and closed when idle (`idle_timeout`), frames by
//! `max_frame_len`, and a connection keeps at most 1 MiB of read buffer
//! between frames.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::sync::mpsc;
use ::tokio::task::JoinSet;
use ::tokio::time::Sleep;
use bytes::Bytes;

use super::Transport;
use crate::codec::{self, IdCodec};
use crate::entry::{Entry, Index, Term};
use crate::message::{Message, MessageBody};
use crate::raft::NodeId;

/// How a [`TcpTransport`] frames, queues and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// Largest frame sent or accepted, in bytes. A larger message is not
    /// sent (counted in `dropped_oversized`); a peer that announces a
    /// larger frame is disconnected. An append always carries at least
    /// one whole entry, and Raft resends the same entries, so an entry
    /// that does not fit stops replication at its index for good: keep
    /// this above
    /// [`Config::max_proposal_size`](crate::Config::max_proposal_size) (the
    /// largest entry), [`Config::max_size_per_msg`](crate::Config::max_size_per_msg)
    /// and [`Config::snapshot_chunk_size`](crate::Config::snapshot_chunk_size),
    /// plus some overhead (a few dozen bytes per entry; a configuration
    /// entry also carries its members). At least 64.
    pub max_frame_len: u32,
    /// Messages queued per peer before new ones are dropped. At least 1.
    pub send_queue: usize,
    /// Messages received and not yet taken by the driver before readers
    /// stop reading (TCP then pushes back on the senders). At least 1.
    pub recv_queue: usize,
    /// First wait before reconnecting to a peer. At least 1 ms.
    pub reconnect_min: Duration,
    /// Longest wait between reconnection attempts (the wait doubles from
    /// `reconnect_min` up to this). At least `reconnect_min`.
    pub reconnect_max: Duration,
    /// Longest wait for one connection attempt (a peer whose packets are
    /// dropped would otherwise hold it for minutes). At least 1 ms.
    pub connect_timeout: Duration,
    /// Most incoming connections open at once; a connection accepted
    /// beyond it is closed at once (counted in `refused_connections`), so
    /// whoever can reach the port cannot hold an unbounded number of them.
    /// Each peer opens one (two for a moment while it reconnects). At
    /// least 1.
    pub max_connections: usize,
    /// An incoming connection that delivers no frame for this long is
    /// closed (counted in `idle_closed`); its peer reconnects when it next
    /// sends. Keep it well above the heartbeat interval (and, with
    /// quiescence, know that quiet groups reconnect after it). At least
    /// 1 ms.
    pub idle_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_frame_len: 32 << 20,
            send_queue: 1024,
            recv_queue: 1024,
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Why a [`TcpConfig`] was refused. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpConfigError {
    /// `max_frame_len` is under 64. Nothing was started.
    #[error("max_frame_len {0} is under 64")]
    MaxFrameLen(u32),
    /// `send_queue` or `recv_queue` is 0. Nothing was started.
    #[error("queues must hold at least one message")]
    Queue,
    /// `reconnect_min` is under 1 ms or above `reconnect_max`, or
    /// `connect_timeout` is under 1 ms. Nothing was started.
    #[error("reconnect_min must be in 1 ms..=reconnect_max, connect_timeout at least 1 ms")]
    Reconnect,
    /// `max_connections` is 0 or `idle_timeout` is under 1 ms. Nothing was
    /// started.
    #[error("max_connections must be at least 1, idle_timeout at least 1 ms")]
    Incoming,
}

impl TcpConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), TcpConfigError> {
        if self.max_frame_len < 64 {
            return Err(TcpConfigError::MaxFrameLen(self.max_frame_len));
        }
        if self.send_queue == 0 || self.recv_queue == 0 {
            return Err(TcpConfigError::Queue);
        }
        if self.reconnect_min < Duration::from_millis(1)
            || self.reconnect_min > self.reconnect_max
            || self.connect_timeout < Duration::from_millis(1)
        {
            return Err(TcpConfigError::Reconnect);
        }
        if self.max_connections == 0 || self.idle_timeout < Duration::from_millis(1) {
            return Err(TcpConfigError::Incoming);
        }
        Ok(())
    }
}

/// What a [`TcpTransport`] did with the messages it was given and the bytes
/// it received. Counters only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpCounters {
    /// Messages queued for a peer.
    pub queued: u64,
    /// Messages written to a connection.
    pub written: u64,
    /// Messages dropped because the peer's queue was full.
    pub dropped_queue_full: u64,
    /// Messages for a node that is not a known peer.
    pub dropped_unknown_peer: u64,
    /// Messages over `max_frame_len`, not sent.
    pub dropped_oversized: u64,
    /// Messages lost with a connection that broke while writing them.
    pub dropped_broken: u64,
    /// Messages received and decoded.
    pub received: u64,
    /// Frames received that did not decode (dropped; the connection stays).
    pub malformed: u64,
    /// Connections closed because a peer announced a frame over
    /// `max_frame_len`.
    pub oversized_frames: u64,
    /// Outgoing connections established.
    pub connects: u64,
    /// Outgoing connection attempts that failed.
    pub connect_failures: u64,
    /// Incoming connections closed at once because `max_connections` were
    /// open.
    pub refused_connections: u64,
    /// Incoming connections closed after `idle_timeout` without a frame.
    pub idle_closed: u64,
}

#[derive(Debug, Default)]
struct Shared {
    queued: AtomicU64,
    written: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_unknown_peer: AtomicU64,
    dropped_oversized: AtomicU64,
    dropped_broken: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    oversized_frames: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    refused_connections: AtomicU64,
    idle_closed: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A [`Transport`] over TCP: a frame is a 4-byte big-endian length, then
/// one [`codec`](crate::codec) message. One outgoing connection per peer,
/// reopened with exponential backoff; a bounded queue per peer whose
/// overflow is dropped and counted ([`TcpCounters`]).
///
/// Its tasks run on the runtime it was created on and stop when it is
/// dropped (the driver drops it when it shuts down), which closes every
/// connection. Connections are accepted while [`recv`](Transport::recv)
/// is polled (the driver always polls it), so that the listener is
/// closed the moment the transport is dropped: a node restarted right
/// after on the same address finds the port free.
#[derive(Debug)]
pub struct TcpTransport<N> {
    peers: BTreeMap<N, mpsc::Sender<Bytes>>,
    incoming: mpsc::Receiver<Message<N>>,
    /// What readers hand their messages to.
    incoming_tx: mpsc::Sender<Message<N>>,
    listener: TcpListener,
    /// After a failed accept (out of file descriptors and the like),
    /// accepting waits until this has elapsed.
    accept_paused: Option<Pin<Box<Sleep>>>,
    /// One reader per accepted connection; aborted when the transport is
    /// dropped.
    readers: JoinSet<()>,
    shared: Arc<Shared>,
    max_frame_len: u32,
    /// The largest payload of an entry that fits a frame in an append.
    max_entry_len: u64,
    max_connections: usize,
    idle_timeout: Duration,
    /// The writers.
    _tasks: JoinSet<()>,
}

impl<N> TcpTransport<N>
where
    N: NodeId + IdCodec + Send + Sync + 'static,
{
    /// A transport that accepts connections on `listener` and sends to
    /// `peers` (node id and address; this node itself may be among them and
    /// is skipped by the node, which never sends to itself).
    ///
    /// Bind the listener first (`TcpListener::bind("127.0.0.1:0")`) to learn
    /// ephemeral ports before building the peer map.
    ///
    /// # Errors
    /// [`TcpConfigError`] if `config` does not validate; nothing started.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(
        listener: TcpListener,
        peers: impl IntoIterator<Item = (N, SocketAddr)>,
        config: TcpConfig,
    ) -> Result<Self, TcpConfigError> {
        config.validate()?;
        let shared = Arc::new(Shared::default());
        let mut tasks = JoinSet::new();
        let (incoming_tx, incoming) = mpsc::channel(config.recv_queue);
        let mut map = BTreeMap::new();
        let mut longest_id: Option<N> = None;
        for (id, addr) in peers {
            if longest_id
                .as_ref()
                .is_none_or(|l| encoded_id_len(&id) > encoded_id_len(l))
            {
                longest_id = Some(id.clone());
            }
            let (tx, rx) = mpsc::channel(config.send_queue);
            tasks.spawn(write_loop(addr, rx, Arc::clone(&shared), config.clone()));
            map.insert(id, tx);
        }
        Ok(Self {
            peers: map,
            incoming,
            incoming_tx,
            listener,
            accept_paused: None,
            readers: JoinSet::new(),
            shared,
            max_frame_len: config.max_frame_len,
            max_entry_len: longest_id.map_or(0, |id| {
                u64::from(config.max_frame_len).saturating_sub(append_overhead(id))
            }),
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout,
            _tasks: tasks,
        })
    }

    /// What happened to messages so far.
    pub fn counters(&self) -> TcpCounters {
        counters(&self.shared)
    }

    /// A live view of the counters that stays valid after the transport
    /// moves into a driver.
    pub fn counters_handle(&self) -> TcpCountersHandle {
        TcpCountersHandle(Arc::clone(&self.shared))
    }
}

/// Reads a [`TcpTransport`]'s counters from anywhere
/// ([`TcpTransport::counters_handle`]).
#[derive(Debug, Clone)]
pub struct TcpCountersHandle(Arc<Shared>);

impl TcpCountersHandle {
    /// The counters now.
    pub fn get(&self) -> TcpCounters {
        counters(&self.0)
    }
}

fn counters(s: &Shared) -> TcpCounters {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    TcpCounters {
        queued: get(&s.queued),
        written: get(&s.written),
        dropped_queue_full: get(&s.dropped_queue_full),
        dropped_unknown_peer: get(&s.dropped_unknown_peer),
        dropped_oversized: get(&s.dropped_oversized),
        dropped_broken: get(&s.dropped_broken),
        received: get(&s.received),
        malformed: get(&s.malformed),
        oversized_frames: get(&s.oversized_frames),
        connects: get(&s.connects),
        connect_failures: get(&s.connect_failures),
        refused_connections: get(&s.refused_connections),
        idle_closed: get(&s.idle_closed),
    }
}

fn encoded_id_len<N: IdCodec>(id: &N) -> usize {
    let mut out = Vec::new();
    id.encode(&mut out);
    out.len()
}

/// Bytes of an append that carries one entry, besides the entry's
/// payload: every number at its widest, `id` as sender and receiver, the
/// payload's length prefix at its widest, and room for a sender id up to
/// 64 bytes longer than `id` (the local node need not be among the peers).
fn append_overhead<N: IdCodec + Clone>(id: N) -> u64 {
    let message = Message {
        from: id.clone(),
        to: id,
        term: Term::MAX,
        body: MessageBody::Append {
            prev_index: Index::MAX,
            prev_term: Term::MAX,
            entries: vec![Entry::new(Term::MAX, Index::MAX, Bytes::new())],
            commit: Index::MAX,
        },
    };
    let mut out = Vec::new();
    codec::encode(&message, &mut out);
    out.len() as u64 + 10 + 64
}

impl<N> Transport<N> for TcpTransport<N>
where
    N: NodeId + IdCodec + Send + Sync + 'static,
{
    /// `max_frame_len` less an append's own bytes (0 with no peers: a
    /// lone node sends nothing, and the driver then skips the check).
    fn max_entry_len(&self) -> Option<u64> {
        (!self.peers.is_empty()).then_some(self.max_entry_len)
    }

    fn send(&mut self, message: Message<N>) {
        let Some(queue) = self.peers.get(&message.to) else {
            bump(&self.shared.dropped_unknown_peer, 1);
            return;
        };
        let mut frame = vec![0; 4];
        codec::encode(&message, &mut frame);
        let len = frame.len() - 4;
        let Ok(len) = u32::try_from(len) else {
            bump(&self.shared.dropped_oversized, 1);
            return;
        };
        if len > self.max_frame_len {
            bump(&self.shared.dropped_oversized, 1);
            return;
        }
        frame[..4].copy_from_slice(&len.to_be_bytes());
        match queue.try_send(Bytes::from(frame)) {
            Ok(()) => bump(&self.shared.queued, 1),
            // Closed only if its writer task ended, which it does only
            // when the transport is dropped.
            Err(_) => bump(&self.shared.dropped_queue_full, 1),
        }
    }

    async fn recv(&mut self) -> Option<Message<N>> {
        // Cancel safe: `mpsc::Receiver::recv` and `TcpListener::accept`
        // are, and an accepted connection gets its reader before the
        // next await.
        loop {
            ::tokio::select! {
                message = self.incoming.recv() => return message,
                accepted = self.listener.accept(), if self.accept_paused.is_none() => {
                    // Readers that ended no longer count against the cap.
                    while self.readers.try_join_next().is_some() {}
                    match accepted {
                        Ok((stream, _)) if self.readers.len() >= self.max_connections => {
                            bump(&self.shared.refused_connections, 1);
                            drop(stream);
                        }
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            self.readers.spawn(read_loop(
                                stream,
                                self.incoming_tx.clone(),
                                Arc::clone(&self.shared),
                                self.max_frame_len,
                                self.idle_timeout,
                            ));
                        }
                        // Out of file descriptors and the like: wait, then
                        // go on (messages keep coming meanwhile).
                        Err(_) => {
                            self.accept_paused =
                                Some(Box::pin(::tokio::time::sleep(Duration::from_millis(10))));
                        }
                    }
                }
                () = async {
                    if let Some(pause) = self.accept_paused.as_mut() {
                        pause.await;
                    }
                }, if self.accept_paused.is_some() => self.accept_paused = None,
            }
        }
    }
}

async fn read_loop<N: NodeId + IdCodec>(
    stream: TcpStream,
    incoming: mpsc::Sender<Message<N>>,
    shared: Arc<Shared>,
    max_frame_len: u32,
    idle_timeout: Duration,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        // The wait for a frame to begin is bounded; once it has begun, its
        // bytes arrive as fast as the peer sends them.
        let Ok(len) = ::tokio::time::timeout(idle_timeout, reader.read_u32()).await else {
            bump(&shared.idle_closed, 1);
            return;
        };
        let Ok(len) = len else {
            return;
        };
        if len > max_frame_len {
            bump(&shared.oversized_frames, 1);
            return;
        }
        buf.clear();
        // Grows with the bytes that arrive, not with what the peer announced.
        match (&mut reader)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .await
        {
            Ok(n) if n == len as usize => {}
            _ => return,
        }
        match codec::decode::<N>(&buf) {
            Ok(message) => {
                bump(&shared.received, 1);
                if incoming.send(message).await.is_err() {
                    return;
                }
            }
            Err(_) => bump(&shared.malformed, 1),
        }
        // Keep no more than a small frame's room between frames: a peer
        // that sent one large frame must not pin its size for good.
        if buf.capacity() > KEPT_READ_BUFFER {
            buf = Vec::new();
        }
    }
}

/// Bytes of read buffer a connection keeps between frames.
const KEPT_READ_BUFFER: usize = 1 << 20;

/// Most bytes gathered into one write.
const WRITE_BATCH: usize = 256 << 10;

async fn write_loop(
    addr: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
    config: TcpConfig,
) {
    let mut backoff = config.reconnect_min;
    let mut batch = Vec::new();
    loop {
        // Connect only once there is something to send.
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut stream = loop {
            match ::tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    bump(&shared.connects, 1);
                    break stream;
                }
                Ok(Err(_)) | Err(_) => {
                    bump(&shared.connect_failures, 1);
                    ::tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.reconnect_max);
                }
            }
        };
        let connected_at = ::tokio::time::Instant::now();
        let mut next = Some(first);
        loop {
            let frame = match next.take() {
                Some(frame) => frame,
                None => match queue.recv().await {
                    Some(frame) => frame,
                    None => return,
                },
            };
            batch.clear();
            batch.extend_from_slice(&frame);
            let mut count = 1;
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(frame) => {
                        batch.extend_from_slice(&frame);
                        count += 1;
                    }
                    Err(_) => break,
                }
            }
            if stream.write_all(&batch).await.is_err() {
                bump(&shared.dropped_broken, count);
                // A connection that broke soon after it opened (a peer that
                // accepts and hangs up) is a failed attempt too: back off,
                // rather than reconnect once per message. One that lasted
                // starts the backoff over.
                if connected_at.elapsed() < config.reconnect_max {
                    ::tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.reconnect_max);
                } else {
                    backoff = config.reconnect_min;
                }
                break;
            }
            bump(&shared.written, count);
        }
    }
}
