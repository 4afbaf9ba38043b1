//! Machinery: the application around one Raft node in sections 6-9, the
//! part a service writes itself. It makes each `Persist` durable (here in
//! `MemStorage`, the node's own storage), applies committed commands to
//! its metadata map, takes snapshots of that map and compacts the log,
//! reads snapshot chunks when it leads, and stages and restores the
//! chunks it receives when it follows: the run loop of the crate README,
//! with every snapshot output handled.

use std::collections::BTreeMap;

use bytes::Bytes;
use dsys_consensus::{
    Config, EntryKind, Index, MemStorage, Membership, Message, Output, RaftNode,
    SnapshotAbortReason, SnapshotMeta, Term,
};

use crate::report::{Res, check_eq};

/// A node of sections 6-9: Raft over in-memory storage, named by number.
pub(super) type Node = RaftNode<MemStorage<u64>>;

/// Partition `P<key>` is led by broker `B<value>`.
pub(super) type Metadata = BTreeMap<u64, u64>;

/// Most bytes of a snapshot in one chunk: small, so the story's snapshot
/// of a few dozen bytes takes several.
pub(super) const CHUNK_SIZE: u64 = 16;

/// Most snapshot chunks sent and not yet acknowledged.
pub(super) const CHUNKS_IN_FLIGHT: usize = 2;

/// Something an application did that the story reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Act {
    /// Leader: read `len` bytes of snapshot `index` at `offset` for `to`
    /// (`Output::ReadSnapshot`, answered with `snapshot_chunk`).
    ChunkRead {
        to: u64,
        index: Index,
        offset: u64,
        len: u64,
        last: bool,
    },
    /// Leader: the transfer of snapshot `index` to `to` ended
    /// (`Output::SnapshotSendEnded`).
    SendEnded {
        to: u64,
        index: Index,
        aborted: Option<SnapshotAbortReason>,
    },
    /// Follower: staged `len` bytes of snapshot `index` at `offset`
    /// (`Output::SnapshotChunk`).
    ChunkStaged {
        index: Index,
        offset: u64,
        len: u64,
        last: bool,
    },
    /// Follower: restored the metadata map from snapshot `index`, made it
    /// durable and called `on_snapshot_restored` (`Output::RestoreSnapshot`).
    Restored {
        index: Index,
        term: Term,
        partitions: usize,
    },
    /// A committed configuration entry came out in `Output::Apply`.
    MembershipApplied {
        index: Index,
        membership: Membership<u64>,
    },
}

/// One node and the state its application keeps beside it.
pub(super) struct Application {
    pub(super) raft: Node,
    /// The state machine.
    pub(super) metadata: Metadata,
    /// Durable snapshots, by index: this node's own, or one it installed.
    snapshots: BTreeMap<Index, Bytes>,
    /// The snapshot being received (need not survive a crash).
    staging: Vec<u8>,
}

impl Application {
    /// Starts node `id`: a founding member when `voters` lists it, or a
    /// node that waits to be added when `voters` is empty.
    pub(super) fn start(id: u64, voters: &[u64]) -> Res<Self> {
        let mut config = Config::default();
        config.seed = id;
        config.snapshot_chunk_size = CHUNK_SIZE;
        config.max_snapshot_chunks_in_flight = CHUNKS_IN_FLIGHT;
        Ok(Self {
            raft: RaftNode::new(id, MemStorage::new(voters.to_vec()), config)?,
            metadata: Metadata::new(),
            snapshots: BTreeMap::new(),
            staging: Vec::new(),
        })
    }

    /// Acts on every output, in order; messages go to `outbox`, what the
    /// story reports to `acts`.
    pub(super) fn drain(&mut self, outbox: &mut Vec<Message<u64>>, acts: &mut Vec<Act>) -> Res {
        while let Some(output) = self.raft.poll_output() {
            match output {
                Output::Persist(batch) => {
                    // Durable at once: entries first, then the hard state.
                    self.raft.storage_mut().append(&batch.entries)?;
                    if let Some(hard_state) = batch.hard_state {
                        self.raft.storage_mut().set_hard_state(hard_state);
                    }
                    self.raft.on_persisted(batch.id);
                }
                Output::Send(message) => outbox.push(message),
                Output::Apply(entries) => {
                    for entry in entries {
                        match &entry.kind {
                            EntryKind::Membership(membership) => {
                                acts.push(Act::MembershipApplied {
                                    index: entry.index,
                                    membership: Membership::clone(membership),
                                });
                            }
                            // A new leader's no-op (section 8) carries nothing.
                            _ if entry.data.is_empty() => {}
                            _ => {
                                let (partition, broker) = parse(&entry.data)?;
                                self.metadata.insert(partition, broker);
                            }
                        }
                    }
                }
                Output::ReadReady(_) | Output::ReadFailed { .. } => {}
                Output::ReadSnapshot {
                    to,
                    index,
                    offset,
                    max_len,
                } => {
                    let data = self
                        .snapshots
                        .get(&index)
                        .ok_or_else(|| format!("asked for snapshot {index}, never taken"))?;
                    let start = usize::try_from(offset)?.min(data.len());
                    let end = start
                        .saturating_add(usize::try_from(max_len)?)
                        .min(data.len());
                    let chunk = data.slice(start..end);
                    let last = end == data.len();
                    self.raft.snapshot_chunk(&to, index, offset, chunk, last)?;
                    acts.push(Act::ChunkRead {
                        to,
                        index,
                        offset,
                        len: u64::try_from(end - start)?,
                        last,
                    });
                }
                Output::SnapshotSendEnded { to, index, aborted } => {
                    acts.push(Act::SendEnded { to, index, aborted });
                }
                Output::SnapshotChunk {
                    index,
                    offset,
                    data,
                    last,
                } => {
                    if offset == 0 {
                        self.staging.clear();
                    }
                    check_eq(
                        "a chunk's offset (chunks come in order)",
                        &offset,
                        &u64::try_from(self.staging.len())?,
                    )?;
                    self.staging.extend_from_slice(&data);
                    acts.push(Act::ChunkStaged {
                        index,
                        offset,
                        len: u64::try_from(data.len())?,
                        last,
                    });
                }
                Output::RestoreSnapshot(meta) => acts.push(self.restore(meta)?),
                Output::SnapshotAborted { .. } => self.staging.clear(),
            }
        }
        Ok(())
    }

    /// The state machine from the staged snapshot, then the snapshot made
    /// durable (`apply_snapshot`), then `on_snapshot_restored`: the order
    /// `Output::RestoreSnapshot` asks for.
    fn restore(&mut self, meta: SnapshotMeta<u64>) -> Res<Act> {
        let data = Bytes::from(std::mem::take(&mut self.staging));
        self.metadata = decode(&data)?;
        let (index, term) = (meta.index, meta.term);
        self.snapshots.insert(index, data);
        self.raft.storage_mut().apply_snapshot(meta);
        self.raft.on_snapshot_restored(index)?;
        Ok(Act::Restored {
            index,
            term,
            partitions: self.metadata.len(),
        })
    }

    /// Snapshots the metadata map at the applied index, makes it durable,
    /// records it in storage and only then compacts, as far as the node
    /// allows. Returns the snapshot's meta and size in bytes.
    pub(super) fn snapshot_and_compact(&mut self) -> Res<(SnapshotMeta<u64>, usize)> {
        let meta = self.raft.snapshot_meta(self.raft.log().applied())?;
        let data = encode(&self.metadata);
        let size = data.len();
        self.snapshots.insert(meta.index, data);
        self.raft.storage_mut().set_snapshot(meta.clone())?;
        let limit = self.raft.compaction_limit();
        check_eq("the compaction limit", &limit, &meta.index)?;
        self.raft.storage_mut().compact(limit)?;
        Ok((meta, size))
    }
}

/// The command that records `P<partition>=B<broker>`.
pub(super) fn command(partition: u64, broker: u64) -> Bytes {
    Bytes::from(format!("P{partition}=B{broker}"))
}

fn parse(data: &[u8]) -> Res<(u64, u64)> {
    let text = std::str::from_utf8(data)?;
    let (partition, broker) = text
        .strip_prefix('P')
        .and_then(|rest| rest.split_once("=B"))
        .ok_or_else(|| format!("not a metadata command: {text:?}"))?;
    Ok((partition.parse()?, broker.parse()?))
}

/// A snapshot of the map: its commands, one a line, so it reads as text.
fn encode(metadata: &Metadata) -> Bytes {
    let lines: String = metadata
        .iter()
        .map(|(partition, broker)| format!("P{partition}=B{broker}\n"))
        .collect();
    Bytes::from(lines)
}

fn decode(data: &[u8]) -> Res<Metadata> {
    std::str::from_utf8(data)?
        .lines()
        .map(|line| parse(line.as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_snapshots_round_trip() {
        assert_eq!(parse(&command(12, 3)).unwrap(), (12, 3));
        let metadata: Metadata = [(1, 5), (10, 3), (2, 4)].into_iter().collect();
        let bytes = encode(&metadata);
        assert_eq!(&bytes[..], b"P1=B5\nP2=B4\nP10=B3\n");
        assert_eq!(decode(&bytes).unwrap(), metadata);
        assert_eq!(decode(b"").unwrap(), Metadata::new());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [&b"P1=3"[..], b"X1=B3", b"P=B3", b"P1=B", b"P1=B-1", b"\xff"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(decode(b"P1=B5\nP2").is_err());
    }
}
