//! The [`Persister`] for [`DiskStorage`] (features `tokio` and `durable`).

use std::io;

use super::{PersistFuture, Persister};
use crate::NodeId;
use crate::codec::IdCodec;
use crate::durable::{DiskStorage, WriteError};
use crate::entry::HardState;
use crate::output::Persist;

/// The [`Persister`] for [`DiskStorage`]: stages each batch (readable
/// through the storage at once) and syncs it in the background, so the
/// driver calls `on_persisted` for a batch only once it is on disk, while
/// the node goes on meanwhile.
///
/// Every batch handed out in one round of the driver (the proposals and
/// messages waiting when the round began) is staged in the driver's task
/// (`write(2)` into the page cache) and handed to the storage's syncer
/// thread with [`DiskStorage::sync_in_background`]; the future resolves
/// once that sync (or a later one) made them durable. While one fsync
/// runs, the driver keeps staging the rounds that follow, and the next
/// fsync covers all of them: group commit across rounds, with the fsync
/// off the driver's task. A hard state that changes only the commit index
/// is written and not fsynced (the commit index is lazy), and one that
/// changes the term or the vote (an election) is synced in the driver's
/// task in etcd's order (see `sync_in_background` for why both are
/// safe).
///
/// An error (the file system failed, or the storage did earlier) resolves
/// the batch's future with it, which stops the driver: reopen the storage
/// and restart the node from what is durable, as after a crash.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dsys_consensus::durable::{DiskStorage, DiskStorageConfig};
/// use dsys_consensus::tokio::DiskPersister;
/// use dsys_consensus::{Config, Membership, RaftNode};
///
/// let dir = std::env::temp_dir().join(format!("dsys-disk-persister-{}", std::process::id()));
/// // The same call creates the log on first start and reopens it on restart.
/// let storage = DiskStorage::<u64>::open(
///     &dir,
///     Membership::from_voters([1, 2, 3]),
///     DiskStorageConfig::default(),
/// )?;
/// let node = RaftNode::new(1, storage, Config::default())?;
/// // spawn(node, DiskPersister, transport, state_machine, DriverConfig::default())
/// # let _ = (node, DiskPersister);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskPersister;

impl<N: NodeId + IdCodec + Send + 'static> Persister<DiskStorage<N>> for DiskPersister {
    fn persist(
        &mut self,
        storage: &mut DiskStorage<N>,
        batch: Persist<HardState<N>, N>,
    ) -> PersistFuture {
        self.persist_all(storage, vec![batch])
    }

    /// Group commit: stages every batch, then one request to the storage's
    /// syncer (one fsync of the segment, and of the state file if the
    /// commit index moved, covering every request made while the previous
    /// sync ran).
    fn persist_all(
        &mut self,
        storage: &mut DiskStorage<N>,
        batches: Vec<Persist<HardState<N>, N>>,
    ) -> PersistFuture {
        let ticket = batches
            .iter()
            .try_for_each(|batch| storage.stage(batch))
            .and_then(|()| storage.sync_in_background())
            .map_err(io_error);
        Box::pin(async move { ticket?.await.map(drop) })
    }
}

fn io_error(e: WriteError) -> io::Error {
    match e {
        WriteError::Io(e) => e,
        WriteError::Storage(_) | WriteError::EntryTooLarge { .. } => {
            io::Error::new(io::ErrorKind::InvalidData, e)
        }
        e => io::Error::other(e),
    }
}
