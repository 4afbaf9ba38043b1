//! Section 3's machinery: the orders service (SQLite in memory: an `orders`
//! table and dsys-txn's outbox tables in one database), the broker in front
//! of a dsys-log partition (its schema registry may refuse an event), and a
//! shipping service that reads the partition and deduplicates through an
//! inbox in its own SQLite database.

use std::collections::BTreeMap;
use std::time::Duration;

use dsys_clocks::{ManualClock, PhysicalClock, WallTime};
use dsys_log::{Log, LogConfig, MemDir};
use dsys_txn::outbox::{
    Config, Event, EventId, LogPublisher, PublishError, Publisher, SqliteInbox, SqliteOutbox,
    SqliteStore,
};
use rusqlite::{Connection, params};

use crate::report::Res;

/// The schema version the broker's registry did not know at first.
pub(super) const NEW_SCHEMA: &str = "v2";

/// The orders service: its database holds the orders and the outbox.
pub(super) struct Orders {
    outbox: SqliteOutbox,
    /// The relays' store; it owns the database connection, which the
    /// service borrows for its own transactions.
    pub(super) store: SqliteStore,
    pub(super) clock: ManualClock,
    pub(super) config: Config,
}

impl Orders {
    /// An empty orders database with the outbox tables, at a fixed time.
    pub(super) fn new() -> Res<Self> {
        let config = Config::default();
        let outbox = SqliteOutbox::new(config.clone())?;
        let mut conn = Connection::open_in_memory()?;
        outbox.migrate(&mut conn)?;
        conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")?;
        let store = SqliteStore::new(conn, &config)?;
        Ok(Self {
            outbox,
            store,
            clock: ManualClock::new(WallTime::from_millis(1_700_000_000_000)),
            config,
        })
    }

    /// One local transaction: order `id` gets `status` (inserted if new) and
    /// its events (type, schema) are enqueued; committed if `commit`, else
    /// rolled back. The events' ids.
    pub(super) fn write(
        &mut self,
        id: u32,
        status: &str,
        events: &[(&str, &str)],
        commit: bool,
    ) -> Res<Vec<EventId>> {
        let now = self.clock.now();
        let conn = self.store.connection();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO orders (id, status) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status",
            params![id, status],
        )?;
        let key = format!("order-{id}");
        let mut ids = Vec::new();
        for (kind, schema) in events {
            let payload = format!(r#"{{"order":{id},"status":"{status}"}}"#);
            let headers = [
                ("type".to_owned(), kind.as_bytes().to_vec()),
                ("schema".to_owned(), schema.as_bytes().to_vec()),
            ];
            ids.push(self.outbox.enqueue(
                &tx,
                key.as_bytes(),
                payload.as_bytes(),
                &headers,
                now,
            )?);
        }
        if commit {
            tx.commit()?;
        } else {
            tx.rollback()?;
        }
        Ok(ids)
    }

    /// Rows in `orders`.
    pub(super) fn order_count(&mut self) -> Res<u32> {
        Ok(self
            .store
            .connection()
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?)
    }

    /// The service's clock.
    pub(super) fn now(&self) -> WallTime {
        self.clock.now()
    }

    /// Moves the clock on.
    pub(super) fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }
}

/// The broker: a schema registry in front of one dsys-log partition.
pub(super) struct Broker {
    partition: LogPublisher<MemDir>,
    /// Whether the registry knows [`NEW_SCHEMA`].
    pub(super) knows_new_schema: bool,
    /// The next publish of this event is written, but its acknowledgement
    /// is lost on the way back to the relay.
    pub(super) lose_ack_of: Option<EventId>,
}

impl Broker {
    /// An empty partition in memory.
    pub(super) fn new() -> Res<Self> {
        let (log, _) = Log::open(MemDir::new(), LogConfig::default())?;
        Ok(Self {
            partition: LogPublisher::new(log),
            knows_new_schema: false,
            lose_ack_of: None,
        })
    }

    /// Records in the partition.
    pub(super) fn len(&self) -> u64 {
        self.partition.log().high_watermark()
    }

    /// The records from `offset` on, as a consumer's fetch returns them.
    pub(super) fn fetch(&self, offset: u64) -> Res<Vec<Delivery>> {
        let log = self.partition.log();
        let mut out = Vec::new();
        let mut next = offset;
        while next < log.high_watermark() {
            let batches = log.read(next, 64 << 10)?;
            let Some(last) = batches.last() else { break };
            let after = last.last_offset() + 1;
            for batch in &batches {
                for record in batch.records() {
                    let record = record?;
                    if record.offset < offset {
                        continue;
                    }
                    let header = |name: &str| {
                        record
                            .headers
                            .iter()
                            .find(|h| h.key.as_ref() == name.as_bytes())
                            .and_then(|h| h.value.as_ref())
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .ok_or_else(|| format!("record {} has no {name} header", record.offset))
                    };
                    out.push(Delivery {
                        offset: record.offset,
                        key: String::from_utf8_lossy(record.key.as_deref().unwrap_or_default())
                            .into_owned(),
                        kind: header("type")?,
                        id: EventId(header("outbox-event-id")?.parse()?),
                        seq: header("outbox-seq")?.parse()?,
                    });
                }
            }
            next = after;
        }
        Ok(out)
    }
}

impl Publisher for Broker {
    fn publish(&mut self, event: &Event) -> Result<(), PublishError> {
        let schema = event
            .headers
            .iter()
            .find(|(name, _)| name == "schema")
            .map(|(_, v)| v.as_slice());
        if schema == Some(NEW_SCHEMA.as_bytes()) && !self.knows_new_schema {
            return Err(PublishError::Poison(
                "schema registry: unknown schema v2".to_owned(),
            ));
        }
        self.partition.publish(event)?;
        if self.lose_ack_of == Some(event.id) {
            self.lose_ack_of = None;
            return Err(PublishError::Retryable(
                "no acknowledgement from the broker".to_owned(),
            ));
        }
        Ok(())
    }
}

/// One record as the consumer reads it.
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub(super) offset: u64,
    pub(super) key: String,
    pub(super) kind: String,
    pub(super) id: EventId,
    pub(super) seq: u64,
}

/// The shipping service: its own database, an inbox, and what it has done.
pub(super) struct Shipping {
    conn: Connection,
    inbox: SqliteInbox,
    /// The offset it resumes from (committed after processing).
    pub(super) committed: u64,
}

/// The inbox's consumer name.
const CONSUMER: &str = "shipping";

impl Shipping {
    pub(super) fn new() -> Res<Self> {
        let conn = Connection::open_in_memory()?;
        let inbox = SqliteInbox::new("dsys_")?;
        inbox.migrate(&conn)?;
        conn.execute_batch(
            "CREATE TABLE handled (key TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
                                   PRIMARY KEY (key, seq))",
        )?;
        Ok(Self {
            conn,
            inbox,
            committed: 0,
        })
    }

    /// Processes `d`: its effect and its inbox row in one transaction.
    /// `false`: a duplicate, dropped.
    pub(super) fn process(&mut self, d: &Delivery, now: WallTime) -> Res<bool> {
        let tx = self.conn.transaction()?;
        if !self.inbox.process(&tx, CONSUMER, d.id, now)? {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO handled (key, seq, kind) VALUES (?1, ?2, ?3)",
            params![d.key, d.seq, d.kind],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Every event handled, by key, in the order handled.
    pub(super) fn handled(&self) -> Res<BTreeMap<String, Vec<(u64, String)>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, seq, kind FROM handled ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let mut out: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for row in rows {
            let (key, seq, kind): (String, u64, String) = row?;
            out.entry(key).or_default().push((seq, kind));
        }
        Ok(out)
    }
}
