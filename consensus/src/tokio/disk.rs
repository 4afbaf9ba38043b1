//! The [`Persister`] for [`DiskStorage`] (features `tokio` and `durable`).

use std::io;

use super::{PersistFuture, Persister};
use crate::NodeId;
use crate::codec::IdCodec;
use crate::durable::{DiskStorage, WriteError};
use crate::entry::HardState;
use crate::output::Persist;

/// The [`Persister`] for [`DiskStorage`]: stages each batch (readable
/// through the storage at once) and syncs it (entries, then the hard
/// state, fsynced) before returning a future that is already resolved, so
/// the driver calls `on_persisted` for a batch only once it is on disk.
///
/// The write happens in the driver's task, during
/// [`persist_all`](Persister::persist_all): the node waits for each fsync
/// (the storage is borrowed only for that call, so a sync cannot be left
/// to the background). Every batch handed out in one round of the driver
/// (the proposals and messages waiting when the round began) is staged and
/// then synced once: group commit. Run the node on a multi-threaded
/// runtime so that other tasks (the transport's) go on meanwhile.
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
        let result = storage.write(&batch).map(drop).map_err(io_error);
        Box::pin(std::future::ready(result))
    }

    /// Group commit: stages every batch, then one [`DiskStorage::sync`]
    /// (one fsync of the segment, one of the state file if a hard state
    /// changed) makes them all durable.
    fn persist_all(
        &mut self,
        storage: &mut DiskStorage<N>,
        batches: Vec<Persist<HardState<N>, N>>,
    ) -> PersistFuture {
        let result = batches
            .iter()
            .try_for_each(|batch| storage.stage(batch))
            .and_then(|()| storage.sync())
            .map(drop)
            .map_err(io_error);
        Box::pin(std::future::ready(result))
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
