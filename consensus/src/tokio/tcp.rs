//! A ready [`Transport`] over TCP.
//!
//! A frame is a 4-byte big-endian length, then one message in the
//! [`codec`](crate::codec) format. The connections, queues, reconnection and
//! bounds are [`dsys_net`]'s: each node keeps one outgoing connection per
//! peer, opened on demand and reopened with exponential backoff after a
//! failure; it reads whatever connections peers open to it. Messages wait in
//! a bounded queue per peer; when it is full, or when a write fails, they
//! are dropped and counted: Raft resends what matters. This module encodes
//! and decodes messages.
//!
//! Connections are not authenticated: anyone who can reach the listener
//! can send messages (the node ignores senders outside its membership, but
//! a cluster that faces untrusted networks wants TLS in front of this).
//! What one can hold is bounded: incoming connections are capped
//! (`max_connections`) and closed when idle (`idle_timeout`), frames by
//! `max_frame_len`, and a frame's buffer grows with the bytes that arrive,
//! not with the length its peer announced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::tokio::net::TcpListener;
use bytes::Bytes;
use dsys_net::{ConfigError, FramedTcp, FramedTcpConfig, FramedTcpCounters};

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
        self.framed().validate().map_err(|error| match error {
            ConfigError::MaxFrameLen(len) => TcpConfigError::MaxFrameLen(len),
            ConfigError::Queue => TcpConfigError::Queue,
            ConfigError::Reconnect => TcpConfigError::Reconnect,
            // `Incoming`: the framed layer checks no field that this config
            // does not hold, and the rest of them are incoming bounds.
            _ => TcpConfigError::Incoming,
        })
    }

    /// The same settings for the framed layer. Every field is named, so a
    /// field added here does not compile until it is passed on.
    fn framed(&self) -> FramedTcpConfig {
        let Self {
            max_frame_len,
            send_queue,
            recv_queue,
            reconnect_min,
            reconnect_max,
            connect_timeout,
            max_connections,
            idle_timeout,
        } = *self;
        let mut framed = FramedTcpConfig::default();
        framed.max_frame_len = max_frame_len;
        framed.send_queue = send_queue;
        framed.recv_queue = recv_queue;
        framed.reconnect_min = reconnect_min;
        framed.reconnect_max = reconnect_max;
        framed.connect_timeout = connect_timeout;
        framed.max_connections = max_connections;
        framed.idle_timeout = idle_timeout;
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

/// What this transport decoded, on top of the framed layer's counters.
#[derive(Debug, Default)]
struct Decoded {
    received: AtomicU64,
    malformed: AtomicU64,
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
    framed: FramedTcp<N>,
    decoded: Arc<Decoded>,
    /// The largest payload of an entry that fits a frame in an append;
    /// `None` with no peers.
    max_entry_len: Option<u64>,
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
        let peers: Vec<(N, SocketAddr)> = peers.into_iter().collect();
        let longest_id = peers
            .iter()
            .map(|(id, _)| id)
            .max_by_key(|id| encoded_id_len(*id));
        let max_entry_len = longest_id
            .map(|id| u64::from(config.max_frame_len).saturating_sub(append_overhead(id.clone())));
        let framed = FramedTcp::new(listener, peers, config.framed())
            .expect("TcpConfig::validate checked the same settings");
        Ok(Self {
            framed,
            decoded: Arc::default(),
            max_entry_len,
        })
    }

    /// What happened to messages so far.
    pub fn counters(&self) -> TcpCounters {
        counters(self.framed.counters(), &self.decoded)
    }

    /// A live view of the counters that stays valid after the transport
    /// moves into a driver.
    pub fn counters_handle(&self) -> TcpCountersHandle {
        TcpCountersHandle {
            framed: self.framed.counters_handle(),
            decoded: Arc::clone(&self.decoded),
        }
    }
}

/// Reads a [`TcpTransport`]'s counters from anywhere
/// ([`TcpTransport::counters_handle`]).
#[derive(Debug, Clone)]
pub struct TcpCountersHandle {
    framed: dsys_net::FramedTcpCountersHandle,
    decoded: Arc<Decoded>,
}

impl TcpCountersHandle {
    /// The counters now.
    pub fn get(&self) -> TcpCounters {
        counters(self.framed.get(), &self.decoded)
    }
}

fn counters(framed: FramedTcpCounters, decoded: &Decoded) -> TcpCounters {
    // The framed layer's counters, but for what only decoding knows.
    let FramedTcpCounters {
        queued,
        written,
        dropped_queue_full,
        dropped_unknown_peer,
        dropped_oversized,
        dropped_broken,
        oversized_frames,
        connects,
        connect_failures,
        refused_connections,
        idle_closed,
        ..
    } = framed;
    TcpCounters {
        received: decoded.received.load(Ordering::Relaxed),
        malformed: decoded.malformed.load(Ordering::Relaxed),
        queued,
        written,
        dropped_queue_full,
        dropped_unknown_peer,
        dropped_oversized,
        dropped_broken,
        oversized_frames,
        connects,
        connect_failures,
        refused_connections,
        idle_closed,
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
    /// `max_frame_len` less an append's own bytes (none with no peers: a
    /// lone node sends nothing, and the driver then skips the check).
    fn max_entry_len(&self) -> Option<u64> {
        self.max_entry_len
    }

    fn send(&mut self, message: Message<N>) {
        let mut frame = Vec::new();
        codec::encode(&message, &mut frame);
        self.framed.send(&message.to, Bytes::from(frame));
    }

    async fn recv(&mut self) -> Option<Message<N>> {
        // Cancel safe: the framed layer's `recv` is, and nothing awaits
        // once it has returned a frame.
        loop {
            let frame = self.framed.recv().await?;
            match codec::decode::<N>(&frame) {
                Ok(message) => {
                    self.decoded.received.fetch_add(1, Ordering::Relaxed);
                    return Some(message);
                }
                // Dropped; the connection stays.
                Err(_) => {
                    self.decoded.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
