//! Snapshots (§7): taking one and bounding compaction, sending one to a
//! follower that needs compacted entries (chunked, resumable, bounded in
//! memory: the node asks the application for one chunk at a time), and
//! receiving one (chunks handed to the application in order, then a
//! restore the node waits for before it moves its log).

use std::collections::VecDeque;

use bytes::Bytes;

use super::{NodeId, RaftNode, Role};
use crate::config::Config;
use crate::entry::{Index, Term};
use crate::message::{MessageBody, SnapshotOutcome};
use crate::output::Output;
use crate::snapshot::{SnapshotAbortReason, SnapshotError, SnapshotMeta};
use crate::storage::Storage;

/// Leader: a snapshot being sent to one follower.
#[derive(Debug, Clone)]
pub(super) struct Outgoing<N> {
    meta: SnapshotMeta<N>,
    /// The follower holds every byte before this offset.
    acked: u64,
    /// Where the chunk after the last one sent starts.
    sent_end: u64,
    /// The furthest any chunk sent in this transfer reached (the follower
    /// may be there after a resend from an earlier offset).
    high: u64,
    /// End offsets of the chunks sent and not acknowledged (bounded by
    /// `max_snapshot_chunks_in_flight`).
    in_flight: VecDeque<u64>,
    /// The offset of the chunk asked of the application, if one is.
    reading: Option<u64>,
    /// The offset of the last chunk, once it was sent.
    last_chunk: Option<u64>,
    /// Heartbeat answers since the follower last acknowledged a chunk.
    idle: u32,
}

/// Follower: a snapshot being received.
#[derive(Debug, Clone)]
pub(super) struct Incoming<N> {
    meta: SnapshotMeta<N>,
    /// Bytes staged so far: the next chunk must start here.
    next_offset: u64,
    /// Every chunk is staged: the restore is pending with the application.
    complete: bool,
}

impl<S> RaftNode<S>
where
    S: Storage,
    S::NodeId: NodeId,
{
    // ---- Taking snapshots and compacting ----

    /// The meta for a snapshot of the state machine at `index`, which it
    /// must have applied: the entry's term and the membership at that index. Save
    /// the state and this meta durably, record it in storage
    /// ([`MemStorage::set_snapshot`](crate::MemStorage::set_snapshot)),
    /// and only then compact, no further than
    /// [`compaction_limit`](Self::compaction_limit).
    ///
    /// # Errors
    /// [`SnapshotError::NotApplied`] past the applied index,
    /// [`SnapshotError::Compacted`] for index 0 or an index whose term is
    /// compacted away; nothing changes.
    pub fn snapshot_meta(&self, index: Index) -> Result<SnapshotMeta<S::NodeId>, SnapshotError> {
        let applied = self.log.applied();
        if index > applied {
            return Err(SnapshotError::NotApplied { index, applied });
        }
        let term = match self.log.term(index) {
            Ok(term) if index > 0 => term,
            _ => {
                return Err(SnapshotError::Compacted {
                    index,
                    first_index: self.log.first_index(),
                });
            }
        };
        let Some(membership) = self.history.at(index) else {
            // Older than the configuration entries this node remembers.
            return Err(SnapshotError::Compacted {
                index,
                first_index: self.log.first_index(),
            });
        };
        Ok(SnapshotMeta {
            index,
            term,
            membership: membership.clone(),
        })
    }

    /// How far the application may compact its log now: the applied
    /// index, the latest durable snapshot's index
    /// ([`Storage::snapshot`]), and, on a leader, the index of every
    /// snapshot being sent to a follower until that follower replicates
    /// entries again (the entries after a snapshot in flight are kept, so
    /// a follower that installs it catches up by log instead of needing
    /// another snapshot right away: openraft #1706). 0 when nothing may
    /// go.
    #[must_use]
    pub fn compaction_limit(&self) -> Index {
        let snapshot = self.log.storage().snapshot().map_or(0, |s| s.index);
        let mut limit = self.log.applied().min(snapshot);
        for peer in self.peers.values() {
            if let Some(floor) = peer.snapshot_floor {
                limit = limit.min(floor);
            }
        }
        limit
    }

    /// Whether a received snapshot waits for the application to restore
    /// it ([`Output::RestoreSnapshot`] is out, and
    /// [`on_snapshot_restored`](Self::on_snapshot_restored) has not come).
    pub fn restore_pending(&self) -> bool {
        self.incoming.as_ref().is_some_and(|i| i.complete)
    }

    // ---- Leader: sending ----

    /// `to` needs entries this leader compacted: send it the latest
    /// durable snapshot. Entries to it are paused until it is installed.
    pub(super) fn start_snapshot_send(&mut self, to: &S::NodeId) {
        let Some(meta) = self.log.storage().snapshot() else {
            // Compacted without a snapshot: nothing can help this follower.
            self.counters.compacted_needed += 1;
            tracing::error!(
                ?to,
                "a follower needs compacted entries, and storage reports no snapshot"
            );
            return;
        };
        let chunk = self.config.snapshot_chunk_size;
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        if peer.transfer.is_some() {
            return;
        }
        tracing::debug!(?to, index = meta.index, "sending a snapshot");
        peer.progress.become_snapshot(meta.index);
        peer.snapshot_floor = Some(meta.index);
        let index = meta.index;
        peer.transfer = Some(Outgoing {
            meta,
            acked: 0,
            sent_end: 0,
            high: 0,
            in_flight: VecDeque::new(),
            reading: Some(0),
            last_chunk: None,
            idle: 0,
        });
        self.counters.snapshot_sends_started += 1;
        self.outbox.push_back(Output::ReadSnapshot {
            to: to.clone(),
            index,
            offset: 0,
            max_len: chunk,
        });
    }

    /// The application's answer to [`Output::ReadSnapshot`]: the bytes of
    /// snapshot `index` for `to` at `offset` (at most `max_len`; `last`
    /// when they end the snapshot). The node sends them, and asks for the
    /// next chunk while the follower's window allows.
    ///
    /// # Errors
    /// [`SnapshotError::NoTransfer`] if no transfer of `index` to `to`
    /// runs (it ended, or this node stopped leading: drop the chunk),
    /// [`SnapshotError::UnexpectedChunk`] if `offset` is not the one asked
    /// for, [`SnapshotError::BadChunkLength`] if `data` is longer than
    /// asked or empty without `last`; nothing changes.
    pub fn snapshot_chunk(
        &mut self,
        to: &S::NodeId,
        index: Index,
        offset: u64,
        data: Bytes,
        last: bool,
    ) -> Result<(), SnapshotError> {
        let max_len = self.config.snapshot_chunk_size;
        let transfer = self
            .peers
            .get_mut(to)
            .and_then(|p| p.transfer.as_mut())
            .filter(|t| t.meta.index == index)
            .ok_or(SnapshotError::NoTransfer { index })?;
        if transfer.reading != Some(offset) {
            return Err(SnapshotError::UnexpectedChunk {
                offset,
                expected: transfer.reading,
            });
        }
        let len = data.len() as u64;
        if len > max_len || (len == 0 && !last) {
            return Err(SnapshotError::BadChunkLength { len, max_len });
        }
        let end = offset
            .checked_add(len)
            .ok_or(SnapshotError::BadChunkLength { len, max_len })?;
        transfer.reading = None;
        transfer.sent_end = end;
        transfer.high = transfer.high.max(end);
        transfer.in_flight.push_back(end);
        if last {
            transfer.last_chunk = Some(offset);
        }
        let meta = transfer.meta.clone();
        self.send_as_leader(
            to.clone(),
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                last,
            },
        );
        self.request_chunk(to);
        Ok(())
    }

    /// The application cannot read snapshot `index` for `to` (say its file
    /// is gone): the transfer ends with
    /// [`SnapshotAbortReason::Cancelled`], and a new one starts, from the
    /// latest snapshot in storage, once the follower next answers a
    /// heartbeat.
    ///
    /// # Errors
    /// [`SnapshotError::NoTransfer`] if no such transfer runs; nothing
    /// changes.
    pub fn abort_snapshot_send(
        &mut self,
        to: &S::NodeId,
        index: Index,
    ) -> Result<(), SnapshotError> {
        let running = self
            .peers
            .get(to)
            .and_then(|p| p.transfer.as_ref())
            .is_some_and(|t| t.meta.index == index);
        if !running {
            return Err(SnapshotError::NoTransfer { index });
        }
        self.end_snapshot_send(to, Some(SnapshotAbortReason::Cancelled));
        Ok(())
    }

    /// Asks the application for the next chunk to `to`, if none is asked
    /// for, the snapshot is not all sent and the window has room.
    fn request_chunk(&mut self, to: &S::NodeId) {
        let window = self.config.max_snapshot_chunks_in_flight;
        let max_len = self.config.snapshot_chunk_size;
        let Some(transfer) = self.peers.get_mut(to).and_then(|p| p.transfer.as_mut()) else {
            return;
        };
        if transfer.reading.is_some()
            || transfer.last_chunk.is_some()
            || transfer.in_flight.len() >= window
        {
            return;
        }
        transfer.reading = Some(transfer.sent_end);
        self.outbox.push_back(Output::ReadSnapshot {
            to: to.clone(),
            index: transfer.meta.index,
            offset: transfer.sent_end,
            max_len,
        });
    }

    /// Sends from `offset` again (chunks were lost, or the follower
    /// restarted and starts over).
    fn rewind_snapshot_send(&mut self, to: &S::NodeId, offset: u64) {
        let Some(transfer) = self.peers.get_mut(to).and_then(|p| p.transfer.as_mut()) else {
            return;
        };
        transfer.acked = offset;
        transfer.sent_end = offset;
        transfer.in_flight.clear();
        transfer.last_chunk = None;
        transfer.idle = 0;
        transfer.reading = None;
        self.request_chunk(to);
    }

    /// Ends the transfer to `to` (installed when `aborted` is `None`) and
    /// tells the application; entries to `to` resume by probing.
    pub(super) fn end_snapshot_send(
        &mut self,
        to: &S::NodeId,
        aborted: Option<SnapshotAbortReason>,
    ) {
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        let Some(transfer) = peer.transfer.take() else {
            return;
        };
        peer.progress.become_probe();
        if aborted.is_some() {
            peer.snapshot_floor = None;
            // Try again (a new transfer) once the follower answers a heartbeat.
            peer.progress.sent(None, 0);
            self.counters.snapshot_sends_aborted += 1;
        } else {
            self.counters.snapshots_sent += 1;
        }
        self.outbox.push_back(Output::SnapshotSendEnded {
            to: to.clone(),
            index: transfer.meta.index,
            aborted,
        });
    }

    /// Leader stepping down: every transfer ends.
    pub(super) fn abort_snapshot_sends(&mut self) {
        let sending: Vec<S::NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.transfer.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for to in sending {
            self.end_snapshot_send(&to, Some(SnapshotAbortReason::LeaderChanged));
        }
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: S::NodeId,
        index: Index,
        outcome: SnapshotOutcome,
    ) {
        let last_index = self.log.last_index();
        let Some(peer) = self.answering_peer(&from) else {
            return;
        };
        let current = peer.transfer.as_ref().filter(|t| t.meta.index == index);
        match outcome {
            SnapshotOutcome::Installed => {
                if index > last_index {
                    self.counters.malformed += 1;
                    return;
                }
                let advanced = peer.progress.on_ack(index);
                let superseded = peer.transfer.is_some() && current.is_none();
                if peer.transfer.is_some() {
                    let aborted = superseded.then_some(SnapshotAbortReason::Superseded);
                    self.end_snapshot_send(&from, aborted);
                    if superseded {
                        // Not a failure to retry later: resume by log now.
                        if let Some(peer) = self.peers.get_mut(&from) {
                            peer.progress.become_probe();
                        }
                    }
                }
                if advanced {
                    self.maybe_commit();
                }
                self.send_appends(&from, true);
            }
            SnapshotOutcome::Next { offset } => {
                let Some(transfer) = peer.transfer.as_mut().filter(|t| t.meta.index == index)
                else {
                    self.counters.stale_snapshot_messages += 1;
                    return;
                };
                if offset > transfer.high {
                    self.counters.malformed += 1;
                    return;
                }
                if offset > transfer.acked {
                    transfer.acked = offset;
                    transfer.idle = 0;
                    while transfer.in_flight.front().is_some_and(|&end| end <= offset) {
                        transfer.in_flight.pop_front();
                    }
                    if offset > transfer.sent_end {
                        // It kept chunks from before a resend: go on from
                        // where it is.
                        transfer.sent_end = offset;
                        transfer.in_flight.clear();
                        transfer.last_chunk = None;
                        if transfer.reading.is_some_and(|r| r < offset) {
                            transfer.reading = None;
                        }
                    }
                    self.request_chunk(&from);
                } else if offset < transfer.sent_end {
                    // A chunk was lost or the follower restarted: it
                    // wants `offset` again.
                    self.counters.stale_snapshot_messages += 1;
                    self.rewind_snapshot_send(&from, offset);
                }
            }
            SnapshotOutcome::Rejected => {
                if current.is_some() {
                    self.end_snapshot_send(&from, Some(SnapshotAbortReason::Rejected));
                } else {
                    self.counters.stale_snapshot_messages += 1;
                }
            }
        }
    }

    /// A heartbeat answer from a follower receiving a snapshot: if it has
    /// acknowledged nothing for about an election timeout, chunks or
    /// answers were lost; send again from what it acknowledged (or the
    /// last chunk, whose answer says whether it is installed).
    pub(super) fn snapshot_heartbeat_response(&mut self, from: &S::NodeId) {
        let patience = (self.config.election_tick / self.config.heartbeat_tick).max(2);
        let Some(transfer) = self.peers.get_mut(from).and_then(|p| p.transfer.as_mut()) else {
            return;
        };
        transfer.idle += 1;
        if transfer.idle < patience || transfer.reading.is_some() {
            return;
        }
        let from_offset = match transfer.last_chunk {
            Some(last) if transfer.acked == transfer.sent_end => last,
            _ => transfer.acked,
        };
        self.rewind_snapshot_send(from, from_offset);
    }

    // ---- Follower: receiving ----

    pub(super) fn handle_install_snapshot(
        &mut self,
        from: S::NodeId,
        meta: SnapshotMeta<S::NodeId>,
        offset: u64,
        data: Bytes,
        last: bool,
    ) {
        self.follow(from.clone());
        let len = data.len() as u64;
        if meta.index == 0
            || len > Config::MAX_SNAPSHOT_CHUNK_SIZE
            || offset.checked_add(len).is_none()
        {
            self.counters.malformed += 1;
            return;
        }
        let index = meta.index;
        let reply = |outcome| MessageBody::SnapshotResponse { index, outcome };
        if index <= self.log.committed() {
            // Everything it covers is committed here already (and so
            // matches the leader's log, §5.4): nothing to do.
            if self.log.term(index).is_ok_and(|t| t != meta.term) {
                self.counters.malformed += 1;
                return;
            }
            self.send(from, reply(SnapshotOutcome::Installed));
            return;
        }
        let (same, newer) = match &self.incoming {
            Some(incoming) => (incoming.meta.index == index, index > incoming.meta.index),
            None => (false, true),
        };
        if same {
            let incoming = self.incoming.as_ref().expect("same snapshot");
            if incoming.meta.term != meta.term {
                self.counters.malformed += 1;
                return;
            }
            let (complete, next_offset) = (incoming.complete, incoming.next_offset);
            if !complete && offset == 0 && next_offset > 0 {
                // The leader started this snapshot over (it ended the
                // transfer: the peer was reported down, the application
                // cancelled it, the peer left and rejoined), or this is a
                // duplicate of the first chunk: stage from the top. Taking
                // the leader's word for where to go on would splice the
                // bytes of two reads of the snapshot, and an answer past
                // anything its new transfer sent looks faulty to the
                // leader (the simulator: seeds 7309 and 20788, the
                // follower never restored).
                self.counters.stale_snapshot_messages += 1;
            } else if complete || offset != next_offset {
                // A duplicate, a chunk after a lost one, or a resend while
                // the restore is pending: say where we are.
                self.counters.stale_snapshot_messages += 1;
                self.send(
                    from,
                    reply(SnapshotOutcome::Next {
                        offset: next_offset,
                    }),
                );
                return;
            }
        } else if !newer {
            // A chunk of an older snapshot than the one staged.
            self.counters.stale_snapshot_messages += 1;
            return;
        } else if self.restore_pending() {
            // Busy restoring another snapshot: the leader tries again later.
            self.counters.snapshot_busy += 1;
            self.send(from, reply(SnapshotOutcome::Rejected));
            return;
        } else if offset != 0 {
            // The start was lost (or this node restarted): from the top.
            self.counters.stale_snapshot_messages += 1;
            self.send(from, reply(SnapshotOutcome::Next { offset: 0 }));
            return;
        } else {
            self.abort_incoming(SnapshotAbortReason::Superseded);
            self.incoming = Some(Incoming {
                meta: meta.clone(),
                next_offset: 0,
                complete: false,
            });
        }
        let incoming = self.incoming.as_mut().expect("set above");
        incoming.next_offset = offset + len;
        incoming.complete = last;
        let next_offset = incoming.next_offset;
        self.outbox.push_back(Output::SnapshotChunk {
            index,
            offset,
            data,
            last,
        });
        if last {
            self.outbox.push_back(Output::RestoreSnapshot(meta));
        }
        self.send(
            from,
            reply(SnapshotOutcome::Next {
                offset: next_offset,
            }),
        );
    }

    /// Drops a snapshot being staged (not one whose restore is pending:
    /// its chunks are all here, and it stays valid under any leader).
    pub(super) fn abort_incoming(&mut self, reason: SnapshotAbortReason) {
        if self.incoming.as_ref().is_some_and(|i| !i.complete) {
            let incoming = self.incoming.take().expect("checked above");
            self.counters.snapshots_aborted += 1;
            self.outbox.push_back(Output::SnapshotAborted {
                index: incoming.meta.index,
                reason,
            });
        }
    }

    /// The application restored its state machine from snapshot `index`
    /// ([`Output::RestoreSnapshot`]) and made it durable: storage reports
    /// it ([`Storage::snapshot`]), with the log after it. The node moves
    /// its log past the snapshot (keeping the entries after it if its log
    /// held the snapshot's last entry), counts it committed and applied,
    /// and tells the leader; [`Output::Apply`] continues from `index + 1`.
    ///
    /// # Errors
    /// [`SnapshotError::NoRestorePending`] if no restore of `index` is
    /// pending, [`SnapshotError::NotDurable`] if storage does not report
    /// it yet; nothing changes.
    pub fn on_snapshot_restored(&mut self, index: Index) -> Result<(), SnapshotError> {
        let Some(incoming) = self
            .incoming
            .as_ref()
            .filter(|i| i.complete && i.meta.index == index)
        else {
            return Err(SnapshotError::NoRestorePending { index });
        };
        let term: Term = incoming.meta.term;
        let membership = incoming.meta.membership.clone();
        let storage = self.log.storage();
        let durable =
            storage.snapshot().is_some_and(|s| s.index >= index) && storage.term(index) == Ok(term);
        if !durable {
            return Err(SnapshotError::NotDurable { index });
        }
        self.incoming = None;
        self.log.restore_snapshot(index, term);
        self.membership_restored(index, term, membership);
        self.counters.snapshots_installed += 1;
        tracing::debug!(id = ?self.id, index, "snapshot restored");
        if let (Some(leader), Role::Follower) = (self.leader.clone(), self.role) {
            self.send(
                leader,
                MessageBody::SnapshotResponse {
                    index,
                    outcome: SnapshotOutcome::Installed,
                },
            );
        }
        Ok(())
    }
}
