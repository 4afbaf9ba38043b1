//! The outbox's configuration, shared by the write side, the relays and the
//! operator calls.

use std::time::Duration;

/// What happens to a key's later events once one of its events is
/// dead-lettered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DeadLetterPolicy {
    /// The key is parked: its later events wait until an operator replays
    /// ([`OutboxStore::replay_dead_letter`](super::OutboxStore::replay_dead_letter))
    /// or purges the dead letter. Per-key order is never broken. Other keys go on.
    #[default]
    Park,
    /// The dead letter is set aside and the key's later events go on: per-key
    /// order then has a hole (and a later replay delivers the event late).
    Skip,
}

/// Outbox configuration: set fields by assignment on [`Config::default`], then
/// [`validate`](Config::validate) (every constructor validates).
///
/// Every relay of one outbox must use the same `table_prefix` and `partitions`
/// (checked against the database), and should use the same timing fields.
///
/// **Clock skew.** Leases compare the wall clocks of different relays. The
/// outbox is correct (no two relays publish one partition at once, beyond
/// re-deliveries) when `renew_margin` exceeds the largest clock skew between
/// relays plus the longest single publish, and `lease_duration` exceeds
/// `renew_margin` plus one relay pass's database work. Per-key order of first
/// deliveries does not depend on this (see the module doc); duplicates do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// Prefix of every table name (`{prefix}outbox_events`...): ASCII
    /// lowercase letters, digits and `_`, at most 32 bytes. Default `dsys_`.
    pub table_prefix: String,
    /// Partitions keys hash into (the unit of leasing), 1..=4096. Fixed
    /// at `migrate`. Default 16.
    pub partitions: u32,
    /// How long a lease lasts after each renewal, 100 ms..=1 h. Default 10 s.
    pub lease_duration: Duration,
    /// A relay stops publishing a partition this long before its lease ends,
    /// 10 ms..`lease_duration`. Default 3 s.
    pub renew_margin: Duration,
    /// How often a relay heartbeats, renews its leases and rebalances (each
    /// a database write; passes in between only publish), 1 ms..,
    /// `rebalance_interval + renew_margin < lease_duration` so that leases
    /// are renewed before publishing must stop. Default 2 s.
    pub rebalance_interval: Duration,
    /// Publish attempts before an event is dead-lettered, 1..=1000. Default 10.
    pub max_attempts: u32,
    /// Wait after the first failure; doubles per failure, 1 ms..=`backoff_max`.
    /// Default 100 ms.
    pub backoff_initial: Duration,
    /// Longest wait between attempts, ..=1 day. Default 60 s.
    pub backoff_max: Duration,
    /// What a dead letter does to its key. Default [`DeadLetterPolicy::Park`].
    pub dead_letter_policy: DeadLetterPolicy,
    /// Published rows are deleted this long after publishing; must exceed the
    /// whole retry schedule ([`Config::retry_schedule`]), ..=10 years.
    /// Default 7 days.
    pub retention: Duration,
    /// Rows read per query, 1..=10 000. Default 256.
    pub batch_size: u32,
    /// Most events one relay pass publishes per partition, 1..=1 000 000.
    /// Default 4096.
    pub max_events_per_pass: u32,
    /// Most rows one retention cleanup deletes, 1..=1 000 000. Default 1000.
    pub cleanup_batch: u32,
    /// Longest key, 1..=64 KiB. Default 1 KiB.
    pub max_key_len: u32,
    /// Largest payload, 1..=512 MiB. Default 16 MiB.
    pub max_payload_len: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            table_prefix: "dsys_".to_owned(),
            partitions: 16,
            lease_duration: Duration::from_secs(10),
            renew_margin: Duration::from_secs(3),
            rebalance_interval: Duration::from_secs(2),
            max_attempts: 10,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(60),
            dead_letter_policy: DeadLetterPolicy::Park,
            retention: Duration::from_secs(7 * 24 * 3600),
            batch_size: 256,
            max_events_per_pass: 4096,
            cleanup_batch: 1000,
            max_key_len: 1024,
            max_payload_len: 16 * 1024 * 1024,
        }
    }
}

/// A [`Config`] field out of its bounds. Nothing was created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The named field is outside the range its doc gives.
    #[error("config field `{field}` is out of bounds: {why}")]
    OutOfBounds {
        /// The field.
        field: &'static str,
        /// The bound it breaks.
        why: &'static str,
    },
}

fn check(ok: bool, field: &'static str, why: &'static str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfBounds { field, why })
    }
}

impl Config {
    /// Checks every field's bounds (see each field's doc).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.table_prefix;
        check(
            p.len() <= 32
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !p.starts_with(|c: char| c.is_ascii_digit()),
            "table_prefix",
            "[a-z_][a-z0-9_]*, at most 32 bytes",
        )?;
        check(
            (1..=4096).contains(&self.partitions),
            "partitions",
            "1..=4096",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.lease_duration),
            "lease_duration",
            "100 ms..=1 h",
        )?;
        check(
            self.renew_margin >= Duration::from_millis(10)
                && self.renew_margin < self.lease_duration,
            "renew_margin",
            "10 ms..lease_duration",
        )?;
        check(
            self.rebalance_interval >= Duration::from_millis(1)
                && self.rebalance_interval.saturating_add(self.renew_margin) < self.lease_duration,
            "rebalance_interval",
            "1 ms.., rebalance_interval + renew_margin < lease_duration",
        )?;
        check(
            (1..=1000).contains(&self.max_attempts),
            "max_attempts",
            "1..=1000",
        )?;
        check(
            self.backoff_max <= Duration::from_secs(24 * 3600),
            "backoff_max",
            "..=1 day",
        )?;
        check(
            self.backoff_initial >= Duration::from_millis(1)
                && self.backoff_initial <= self.backoff_max,
            "backoff_initial",
            "1 ms..=backoff_max",
        )?;
        check(
            self.retention <= Duration::from_secs(10 * 365 * 24 * 3600),
            "retention",
            "..=10 years",
        )?;
        check(
            self.retention > self.retry_schedule(),
            "retention",
            "must exceed the retry schedule (sum of all backoffs)",
        )?;
        check(
            (1..=10_000).contains(&self.batch_size),
            "batch_size",
            "1..=10000",
        )?;
        check(
            (1..=1_000_000).contains(&self.max_events_per_pass),
            "max_events_per_pass",
            "1..=1000000",
        )?;
        check(
            (1..=1_000_000).contains(&self.cleanup_batch),
            "cleanup_batch",
            "1..=1000000",
        )?;
        check(
            (1..=64 * 1024).contains(&self.max_key_len),
            "max_key_len",
            "1..=65536",
        )?;
        check(
            (1..=512 * 1024 * 1024).contains(&self.max_payload_len),
            "max_payload_len",
            "1..=512 MiB",
        )?;
        Ok(())
    }

    /// The wait after the `attempts`-th failure (1-based):
    /// `backoff_initial * 2^(attempts-1)`, capped at `backoff_max`. No jitter:
    /// keys wait independently, so retries of different keys do not align
    /// unless their failures did.
    pub fn backoff(&self, attempts: u32) -> std::time::Duration {
        let shift = attempts.saturating_sub(1).min(40);
        self.backoff_initial
            .checked_mul(1u32 << shift.min(31))
            .map_or(self.backoff_max, |d| d.min(self.backoff_max))
    }

    /// The longest time an event can spend being retried: the sum of the
    /// backoffs after failures 1..max_attempts. Saturating.
    pub fn retry_schedule(&self) -> Duration {
        (1..self.max_attempts).fold(Duration::ZERO, |acc, a| acc.saturating_add(self.backoff(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn backoff_table() {
        let c = Config::default();
        let ms = |m| Duration::from_millis(m);
        for (attempts, want) in [
            (0, ms(100)),
            (1, ms(100)),
            (2, ms(200)),
            (3, ms(400)),
            (10, ms(51_200)),
            (11, ms(60_000)),
            (1000, ms(60_000)),
        ] {
            assert_eq!(c.backoff(attempts), want, "attempts {attempts}");
        }
        // 100+200+...+25600 (9 backoffs for 10 attempts).
        assert_eq!(c.retry_schedule(), ms(51_100));
    }

    #[test]
    fn bounds() {
        let bad: [fn(&mut Config); 11] = [
            |c| c.rebalance_interval = Duration::ZERO,
            |c| c.rebalance_interval = c.lease_duration - c.renew_margin,
            |c| c.partitions = 0,
            |c| c.table_prefix = "Bad-Name".into(),
            |c| c.table_prefix = "1x".into(),
            |c| c.renew_margin = c.lease_duration,
            |c| c.max_attempts = 0,
            |c| c.backoff_initial = Duration::ZERO,
            |c| c.retention = Duration::from_secs(1),
            |c| c.batch_size = 0,
            |c| c.max_key_len = 0,
        ];
        for (i, f) in bad.iter().enumerate() {
            let mut c = Config::default();
            f(&mut c);
            assert!(c.validate().is_err(), "case {i}");
        }
    }
}
