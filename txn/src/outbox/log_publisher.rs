//! A publisher that appends outbox events to a `dsys-log` partition.

use dsys_log::{BatchBuilder, Log, NewRecord, Storage};

use super::event::Event;
use super::publisher::{PublishError, Publisher};

/// Appends each event as one record to a [`dsys_log::Log`] partition, then
/// flushes (fsync), so `Ok` means durable: record key = event key, value =
/// payload, timestamp = the event's `created_at` (milliseconds), headers =
/// the event's headers followed by `outbox-event-id` and `outbox-seq`
/// (decimal ASCII), by which consumers deduplicate and check order.
///
/// One publisher writes one partition; to spread outbox partitions over log
/// partitions, wrap several and choose by [`Event::partition`].
#[derive(Debug)]
pub struct LogPublisher<S: Storage> {
    log: Log<S>,
}

impl<S: Storage> LogPublisher<S> {
    /// Publishes into `log`.
    pub fn new(log: Log<S>) -> Self {
        Self { log }
    }

    /// The log.
    pub fn log(&self) -> &Log<S> {
        &self.log
    }

    /// The log back.
    pub fn into_log(self) -> Log<S> {
        self.log
    }
}

impl<S: Storage> Publisher for LogPublisher<S> {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        let id = event.id.0.to_string();
        let seq = event.seq.to_string();
        let mut headers: Vec<(&str, Option<&[u8]>)> = event
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), Some(v.as_slice())))
            .collect();
        headers.push(("outbox-event-id", Some(id.as_bytes())));
        headers.push(("outbox-seq", Some(seq.as_bytes())));
        let now = i64::try_from(event.created_at.as_millis()).unwrap_or(i64::MAX);
        let mut batch = BatchBuilder::new();
        batch.push(NewRecord {
            timestamp: now,
            key: Some(&event.key),
            value: Some(&event.payload),
            headers: &headers,
        });
        let batch = batch
            .finish()
            // One record was pushed, so the batch is not empty.
            .expect("a batch of one record");
        // Only a batch too large is this event's fault; every other error
        // (I/O, a failed fsync, which leaves the log failed until it is
        // reopened) is the partition's, and must not use up the attempts
        // of every event that meets it.
        self.log.append(batch, now).map_err(|e| match e {
            dsys_log::AppendError::BatchTooLarge { .. } => PublishError::Poison(e.to_string()),
            e => PublishError::Unavailable(e.to_string()),
        })?;
        self.log
            .flush()
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        Ok(())
    }
}
