//! A ready [`Transport`] over TCP.
//!
//! TCP rather than UDP because a [`SyncMessage::State`](crate::SyncMessage::State)
//! carries a whole state, which outgrows a datagram as soon as a set holds a few
//! hundred elements; TCP frames have no such limit below `max_frame_len`.
//!
//! A frame is a 4-byte big-endian length, then the sender's id in the
//! [`codec`](crate::codec) format, then one encoded
//! [`SyncMessage`](crate::SyncMessage). The connections, queues, reconnection
//! and bounds are [`dsys_net`]'s: each replica keeps one outgoing connection
//! per peer, opened on demand and reopened with exponential backoff after a
//! failure; it reads whatever connections peers open to it (at most 1024 at
//! once, each closed after 5 minutes without a frame: `dsys_net`'s defaults).
//! Messages wait in a bounded queue per peer; when it is full, or when a write
//! fails, they are dropped and counted: the next anti-entropy round ships again
//! what was not acknowledged. This module stamps and reads the sender's id.
//!
//! Connections are not authenticated: anyone who can reach the listener can
//! send frames in any peer's name (the replica drops what does not decode,
//! comes from a non-peer, or forges its own updates, but a network that faces
//! untrusted hosts wants TLS in front of this).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::tokio::net::TcpListener;
use dsys_net::{FramedTcp, FramedTcpConfig, FramedTcpCounters, FramedTcpCountersHandle};

use super::Transport;
use crate::id::NodeId;

/// How a [`TcpTransport`] frames, queues and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// Largest frame sent or accepted, in bytes (the sender's id and one
    /// message). A larger message is not sent (counted in
    /// `dropped_oversized`: the peer never gets that state, so keep this
    /// above the largest encoded state); a peer that announces a larger frame
    /// is disconnected (counted in `oversized_frames`). At least 64.
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
        Ok(())
    }

    /// The same settings for the framed layer; the incoming bounds this
    /// config does not name keep the framed layer's defaults.
    fn framed(&self) -> FramedTcpConfig {
        let mut framed = FramedTcpConfig::default();
        framed.max_frame_len = self.max_frame_len;
        framed.send_queue = self.send_queue;
        framed.recv_queue = self.recv_queue;
        framed.reconnect_min = self.reconnect_min;
        framed.reconnect_max = self.reconnect_max;
        framed.connect_timeout = self.connect_timeout;
        framed
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
    /// Frames received with a sender id that decodes, handed to the driver
    /// (whose replica may still reject the message in them).
    pub received: u64,
    /// Frames received whose sender id did not decode (dropped; the
    /// connection stays).
    pub malformed: u64,
    /// Connections closed because a peer announced a frame over
    /// `max_frame_len`.
    pub oversized_frames: u64,
    /// Outgoing connections established.
    pub connects: u64,
    /// Outgoing connection attempts that failed.
    pub connect_failures: u64,
}

/// Frames whose sender id decoded, and those whose did not.
#[derive(Debug, Default)]
struct SenderIds {
    decoded: AtomicU64,
    malformed: AtomicU64,
}

/// A [`Transport`] over TCP: a frame is a 4-byte big-endian length, the
/// sender's id, then one encoded message. One outgoing connection per peer,
/// reopened with exponential backoff; a bounded queue per peer whose
/// overflow is dropped and counted ([`TcpCounters`]).
///
/// Its tasks run on the runtime it was created on and stop when it is
/// dropped (the driver drops it when it shuts down), which closes every
/// connection. Connections are accepted while [`recv`](Transport::recv) is
/// polled (the driver always polls it), so the listener closes with the
/// transport.
#[derive(Debug)]
pub struct TcpTransport<N> {
    framed: FramedTcp<N>,
    /// This replica's id, encoded: the start of every frame it sends.
    me: Vec<u8>,
    ids: Arc<SenderIds>,
}

impl<N> TcpTransport<N>
where
    N: NodeId + Send + Sync + 'static,
{
    /// The transport of replica `me`: accepts connections on `listener` and
    /// sends to `peers` (replica id and address; `me` may be among them: the
    /// replica never sends to itself).
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
        me: &N,
        listener: TcpListener,
        peers: impl IntoIterator<Item = (N, SocketAddr)>,
        config: TcpConfig,
    ) -> Result<Self, TcpConfigError> {
        config.validate()?;
        let framed = FramedTcp::new(listener, peers, config.framed())
            .expect("validate checked the fields TcpConfig sets; the rest are defaults");
        Ok(Self {
            framed,
            me: me.to_bytes(),
            ids: Arc::default(),
        })
    }

    /// What happened to messages so far.
    pub fn counters(&self) -> TcpCounters {
        self.ids.counters(self.framed.counters())
    }

    /// A live view of the counters that stays valid after the transport
    /// moves into a driver.
    pub fn counters_handle(&self) -> TcpCountersHandle {
        TcpCountersHandle(self.framed.counters_handle(), Arc::clone(&self.ids))
    }
}

/// Reads a [`TcpTransport`]'s counters from anywhere
/// ([`TcpTransport::counters_handle`]).
#[derive(Debug, Clone)]
pub struct TcpCountersHandle(FramedTcpCountersHandle, Arc<SenderIds>);

impl TcpCountersHandle {
    /// The counters now.
    pub fn get(&self) -> TcpCounters {
        self.1.counters(self.0.get())
    }
}

impl SenderIds {
    fn counters(&self, framed: FramedTcpCounters) -> TcpCounters {
        TcpCounters {
            queued: framed.queued,
            written: framed.written,
            dropped_queue_full: framed.dropped_queue_full,
            dropped_unknown_peer: framed.dropped_unknown_peer,
            dropped_oversized: framed.dropped_oversized,
            dropped_broken: framed.dropped_broken,
            received: self.decoded.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            oversized_frames: framed.oversized_frames,
            connects: framed.connects,
            connect_failures: framed.connect_failures,
        }
    }
}

impl<N> Transport<N> for TcpTransport<N>
where
    N: NodeId + Send + Sync + 'static,
{
    fn send(&mut self, to: &N, message: Vec<u8>) {
        let mut frame = Vec::with_capacity(self.me.len() + message.len());
        frame.extend_from_slice(&self.me);
        frame.extend_from_slice(&message);
        self.framed.send(to, frame.into());
    }

    async fn recv(&mut self) -> Option<(N, Vec<u8>)> {
        // Cancel safe: the framed layer's `recv` is, and nothing awaits once
        // it has returned a frame.
        loop {
            let frame = self.framed.recv().await?;
            let mut rest = &frame[..];
            if let Ok(from) = N::decode(&mut rest) {
                self.ids.decoded.fetch_add(1, Ordering::Relaxed);
                return Some((from, rest.to_vec()));
            }
            // Dropped; the connection stays.
            self.ids.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
