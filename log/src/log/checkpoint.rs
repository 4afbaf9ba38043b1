//! The recovery-point checkpoint file (Kafka's `recovery-point-offset-checkpoint`,
//! plus its clean-shutdown marker): where [`Log::open`](super::Log::open) starts
//! validating, and whether it may skip validation altogether.

use std::io;

use super::files::{read_small_file, write_file_atomic};
use crate::storage::Storage;

/// Name of the recovery-point checkpoint file.
const CHECKPOINT_FILE: &str = "recovery.checkpoint";

/// The recovery point: offsets below `offset` are in fsynced, sealed segments. A
/// clean shutdown also records the active segment's size, so a file changed after
/// the shutdown is validated anyway.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checkpoint {
    pub(super) offset: u64,
    pub(super) clean_size: Option<u64>,
}

impl Checkpoint {
    /// A checkpoint at `offset` that claims no clean shutdown.
    pub(super) fn dirty(offset: u64) -> Self {
        Checkpoint {
            offset,
            clean_size: None,
        }
    }

    /// Reads the checkpoint file; `None` if it is missing, unreadable or damaged.
    pub(super) fn read<S: Storage>(dir: &S) -> Option<Self> {
        read_small_file(dir, CHECKPOINT_FILE).and_then(|b| Checkpoint::decode(&b))
    }

    /// Replaces the checkpoint file atomically.
    pub(super) fn write<S: Storage>(self, dir: &S) -> io::Result<()> {
        write_file_atomic(dir, CHECKPOINT_FILE, &self.encode())
    }

    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21);
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.push(self.clean_size.is_some() as u8);
        out.extend_from_slice(&self.clean_size.unwrap_or(0).to_be_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 21 {
            return None;
        }
        let (body, crc) = bytes.split_at(17);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let offset = u64::from_be_bytes(body[..8].try_into().ok()?);
        if offset > i64::MAX as u64 {
            return None;
        }
        let size = u64::from_be_bytes(body[9..17].try_into().ok()?);
        let clean_size = match body[8] {
            0 => None,
            1 => Some(size),
            _ => return None,
        };
        Some(Checkpoint { offset, clean_size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        for cp in [
            Checkpoint::dirty(0),
            Checkpoint::dirty(i64::MAX as u64),
            Checkpoint {
                offset: 42,
                clean_size: Some(4096),
            },
        ] {
            let bytes = cp.encode();
            let back = Checkpoint::decode(&bytes).expect("a fresh checkpoint decodes");
            assert_eq!((back.offset, back.clean_size), (cp.offset, cp.clean_size));
            for i in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1;
                assert!(
                    Checkpoint::decode(&damaged).is_none(),
                    "bit flip at byte {i}"
                );
            }
            assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_none());
        }
    }
}
