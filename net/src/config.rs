//! How a [`FramedTcp`](crate::FramedTcp) frames, queues, reconnects and
//! bounds what peers may hold.

use std::time::Duration;

/// How a [`FramedTcp`](crate::FramedTcp) frames, queues, reconnects and
/// bounds incoming connections. Set fields on [`Default`] and check them with
/// [`validate`](Self::validate) (which [`FramedTcp::new`](crate::FramedTcp::new)
/// calls).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FramedTcpConfig {
    /// Largest frame payload sent or accepted, in bytes (the 4-byte length
    /// prefix aside). A larger frame is not sent (counted in
    /// `dropped_oversized`); a peer that announces a larger one is
    /// disconnected (counted in `oversized_frames`). At least 64.
    pub max_frame_len: u32,
    /// Frames queued per peer before new ones are dropped. At least 1.
    pub send_queue: usize,
    /// Frames received and not yet taken by
    /// [`recv`](crate::FramedTcp::recv) before readers stop reading (TCP then
    /// pushes back on the senders). At least 1.
    pub recv_queue: usize,
    /// First wait before reconnecting to a peer. At least 1 ms.
    pub reconnect_min: Duration,
    /// Longest wait between reconnection attempts (the wait doubles from
    /// `reconnect_min` up to this). A connection that breaks within this
    /// long of opening counts as a failed attempt. At least `reconnect_min`.
    pub reconnect_max: Duration,
    /// Longest wait for one connection attempt (a peer whose packets are
    /// dropped would otherwise hold it for minutes). At least 1 ms.
    pub connect_timeout: Duration,
    /// Most incoming connections open at once; a connection accepted beyond
    /// it is closed at once (counted in `refused_connections`), so whoever
    /// can reach the port cannot hold an unbounded number of them. Each peer
    /// opens one (two for a moment while it reconnects). At least 1.
    pub max_connections: usize,
    /// An incoming connection that delivers no frame for this long is closed
    /// (counted in `idle_closed`); its peer reconnects when it next sends.
    /// At least 1 ms.
    pub idle_timeout: Duration,
}

impl Default for FramedTcpConfig {
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

/// Why a [`FramedTcpConfig`] was refused. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_frame_len` is under 64. Nothing was started.
    #[error("max_frame_len {0} is under 64")]
    MaxFrameLen(u32),
    /// `send_queue` or `recv_queue` is 0. Nothing was started.
    #[error("queues must hold at least one frame")]
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

impl FramedTcpConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis(1);
        if self.max_frame_len < 64 {
            return Err(ConfigError::MaxFrameLen(self.max_frame_len));
        }
        if self.send_queue == 0 || self.recv_queue == 0 {
            return Err(ConfigError::Queue);
        }
        if self.reconnect_min < ms
            || self.reconnect_min > self.reconnect_max
            || self.connect_timeout < ms
        {
            return Err(ConfigError::Reconnect);
        }
        if self.max_connections == 0 || self.idle_timeout < ms {
            return Err(ConfigError::Incoming);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One field out of range, and the error it must give.
    type Case = (fn(&mut FramedTcpConfig), ConfigError);

    #[test]
    fn each_bound_is_checked() {
        let ok = FramedTcpConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases: [Case; 7] = [
            (|c| c.max_frame_len = 63, ConfigError::MaxFrameLen(63)),
            (|c| c.send_queue = 0, ConfigError::Queue),
            (|c| c.recv_queue = 0, ConfigError::Queue),
            (|c| c.reconnect_min = Duration::ZERO, ConfigError::Reconnect),
            (
                |c| c.reconnect_min = c.reconnect_max * 2,
                ConfigError::Reconnect,
            ),
            (|c| c.max_connections = 0, ConfigError::Incoming),
            (|c| c.idle_timeout = Duration::ZERO, ConfigError::Incoming),
        ];
        for (change, error) in cases {
            let mut config = ok.clone();
            change(&mut config);
            assert_eq!(config.validate(), Err(error));
        }
    }
}
