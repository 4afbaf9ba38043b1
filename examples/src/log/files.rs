//! The chapter's files: a fresh directory per run, one partition directory
//! per log, and the topic's log configuration.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dsys_log::{FlushPolicy, LogConfig, StdDir};

use super::topic::TOPIC;
use crate::report::Res;

/// A fresh directory for the chapter's files, removed when dropped (also
/// when the chapter fails half-way). Its path names the process, so runs in
/// parallel do not share it; the path is never printed, so the output does
/// not depend on it.
pub(super) struct Workspace {
    pub(super) root: PathBuf,
}

impl Workspace {
    pub(super) fn create() -> Res<Self> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("dsys-log-tour-{}-{run}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        Ok(Workspace { root })
    }

    /// `orders-2`: a partition's directory, named as Kafka names it.
    pub(super) fn partition(&self, partition: u32) -> Res<StdDir> {
        Ok(StdDir::open(
            self.root.join(format!("{TOPIC}-{partition}")),
        )?)
    }

    /// The offset store's directory.
    pub(super) fn offsets(&self) -> Res<StdDir> {
        Ok(StdDir::open(self.root.join("__consumer_offsets-0"))?)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The topic's log configuration: Kafka's defaults, plus an fsync per
/// batch, so a delivery report means the order is on disk (what `acks=all`
/// promises with replicas, one machine can only promise with an fsync).
pub(super) fn topic_config() -> LogConfig {
    let mut config = LogConfig::default();
    config.flush = FlushPolicy::every_batch();
    config
}
