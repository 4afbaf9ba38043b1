//! The transport: frames out through one connection per peer, frames in from
//! whatever connections peers open.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::config::{ConfigError, FramedTcpConfig};
use crate::counters::{FramedTcpCounters, FramedTcpCountersHandle, Shared, bump};
use crate::id::NodeId;

/// Frames over TCP: a frame is a 4-byte big-endian length, then that many
/// bytes of payload. One outgoing connection per peer, opened on demand and
/// reopened with exponential backoff; a bounded queue per peer whose
/// overflow is dropped and counted ([`FramedTcpCounters`]).
///
/// `N` names a peer: a [`NodeId`], `Send + Sync + 'static`. A received frame
/// does not say who sent it (incoming connections are not tied to a peer):
/// a protocol that needs the sender puts it in the payload.
///
/// Its tasks run on the runtime it was created on and stop when it is
/// dropped, which closes every connection. Connections are accepted while
/// [`recv`](Self::recv) is polled, so that the listener is closed the moment
/// the transport is dropped: a process restarted right after on the same
/// address finds the port free.
#[derive(Debug)]
pub struct FramedTcp<N> {
    peers: BTreeMap<N, mpsc::Sender<Bytes>>,
    incoming: mpsc::Receiver<Bytes>,
    /// What readers hand their frames to.
    incoming_tx: mpsc::Sender<Bytes>,
    listener: TcpListener,
    /// After a failed accept (out of file descriptors and the like),
    /// accepting waits until this has elapsed.
    accept_paused: Option<Pin<Box<Sleep>>>,
    /// One reader per accepted connection; aborted when the transport is
    /// dropped.
    readers: JoinSet<()>,
    shared: Arc<Shared>,
    max_frame_len: u32,
    max_connections: usize,
    idle_timeout: Duration,
    /// The writers, one per peer.
    _writers: JoinSet<()>,
}

impl<N> FramedTcp<N>
where
    N: NodeId + Send + Sync + 'static,
{
    /// A transport that accepts connections on `listener` and sends to
    /// `peers` (id and address; a later duplicate id replaces an earlier
    /// one).
    ///
    /// Bind the listener first (`TcpListener::bind("127.0.0.1:0")`) to learn
    /// ephemeral ports before building the peer list.
    ///
    /// # Errors
    /// [`ConfigError`] if `config` does not validate; nothing started.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(
        listener: TcpListener,
        peers: impl IntoIterator<Item = (N, SocketAddr)>,
        config: FramedTcpConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let shared = Arc::new(Shared::default());
        let mut writers = JoinSet::new();
        let (incoming_tx, incoming) = mpsc::channel(config.recv_queue);
        let mut map = BTreeMap::new();
        for (id, addr) in peers {
            let (tx, rx) = mpsc::channel(config.send_queue);
            writers.spawn(write_loop(addr, rx, Arc::clone(&shared), config.clone()));
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
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout,
            _writers: writers,
        })
    }

    /// Queues `frame` (the payload; the length prefix is added here) for
    /// peer `to`; never waits. A frame for an unknown peer, over
    /// `max_frame_len`, or that finds the peer's queue full is dropped and
    /// counted.
    pub fn send(&mut self, to: &N, frame: Bytes) {
        let Some(queue) = self.peers.get(to) else {
            bump(&self.shared.dropped_unknown_peer, 1);
            return;
        };
        if frame.len() > self.max_frame_len as usize {
            bump(&self.shared.dropped_oversized, 1);
            return;
        }
        match queue.try_send(frame) {
            Ok(()) => bump(&self.shared.queued, 1),
            // Closed only if its writer task ended, which it does only when
            // the transport is dropped.
            Err(_) => bump(&self.shared.dropped_queue_full, 1),
        }
    }

    /// The next frame's payload from any connection; accepts connections
    /// while it waits. Never `None` while the transport lives (it holds a
    /// sender of its own queue); the `Option` is for callers whose
    /// transports may close.
    ///
    /// Cancel safe: a frame is never lost when the future is dropped
    /// unfinished.
    pub async fn recv(&mut self) -> Option<Bytes> {
        // Cancel safe: `mpsc::Receiver::recv` and `TcpListener::accept` are,
        // and an accepted connection gets its reader before the next await.
        loop {
            tokio::select! {
                frame = self.incoming.recv() => return frame,
                accepted = self.listener.accept(), if self.accept_paused.is_none() => {
                    self.accepted(accepted);
                }
                () = async {
                    if let Some(pause) = self.accept_paused.as_mut() {
                        pause.await;
                    }
                }, if self.accept_paused.is_some() => self.accept_paused = None,
            }
        }
    }

    fn accepted(&mut self, accepted: std::io::Result<(TcpStream, SocketAddr)>) {
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
            // Out of file descriptors and the like: wait, then go on
            // (frames keep coming meanwhile).
            Err(_) => {
                self.accept_paused = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
            }
        }
    }

    /// The largest payload [`send`](Self::send) takes and readers accept.
    #[must_use]
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// What happened to frames so far.
    #[must_use]
    pub fn counters(&self) -> FramedTcpCounters {
        self.shared.get()
    }

    /// A live view of the counters that stays valid after the transport
    /// moves into a driver.
    #[must_use]
    pub fn counters_handle(&self) -> FramedTcpCountersHandle {
        FramedTcpCountersHandle(Arc::clone(&self.shared))
    }
}

/// How long accepting pauses after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// Bytes reserved for a frame before its bytes arrive: the rest grows with
/// what arrives, not with what the peer announced.
const FIRST_READ: usize = 64 << 10;

/// Most bytes gathered into one write.
const WRITE_BATCH: usize = 256 << 10;

async fn read_loop(
    stream: TcpStream,
    incoming: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    max_frame_len: u32,
    idle_timeout: Duration,
) {
    let mut reader = BufReader::new(stream);
    loop {
        // The wait for a frame to begin is bounded; once it has begun, its
        // bytes arrive as fast as the peer sends them.
        let Ok(len) = tokio::time::timeout(idle_timeout, reader.read_u32()).await else {
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
        let mut frame = Vec::with_capacity((len as usize).min(FIRST_READ));
        match (&mut reader)
            .take(u64::from(len))
            .read_to_end(&mut frame)
            .await
        {
            Ok(n) if n == len as usize => {}
            _ => return,
        }
        bump(&shared.received, 1);
        if incoming.send(Bytes::from(frame)).await.is_err() {
            return;
        }
    }
}

async fn write_loop(
    addr: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
    config: FramedTcpConfig,
) {
    let mut backoff = config.reconnect_min;
    let mut batch = Vec::new();
    loop {
        // Connect only once there is something to send.
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut stream = loop {
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    bump(&shared.connects, 1);
                    break stream;
                }
                Ok(Err(_)) | Err(_) => {
                    bump(&shared.connect_failures, 1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.reconnect_max);
                }
            }
        };
        let connected_at = tokio::time::Instant::now();
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
            push_frame(&mut batch, &frame);
            let mut count = 1;
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(frame) => {
                        push_frame(&mut batch, &frame);
                        count += 1;
                    }
                    Err(_) => break,
                }
            }
            if stream.write_all(&batch).await.is_err() {
                bump(&shared.dropped_broken, count);
                // A connection that broke soon after it opened (a peer that
                // accepts and hangs up) is a failed attempt too: back off,
                // rather than reconnect once per frame. One that lasted
                // starts the backoff over.
                if connected_at.elapsed() < config.reconnect_max {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.reconnect_max);
                } else {
                    backoff = config.reconnect_min;
                }
                break;
            }
            bump(&shared.written, count);
            // A batch grown by one burst must not pin its size for good.
            if batch.capacity() > 4 * WRITE_BATCH {
                batch = Vec::new();
            }
        }
    }
}

/// Appends one frame, its length prefix first, to a write batch.
fn push_frame(batch: &mut Vec<u8>, frame: &[u8]) {
    // `send` refused anything over `max_frame_len`, a `u32`.
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    batch.extend_from_slice(&len.to_be_bytes());
    batch.extend_from_slice(frame);
}
