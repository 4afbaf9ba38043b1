//! Choreographed sagas: no orchestrator. Each participant subscribes to
//! event kinds and reacts to the previous step's event by doing its local
//! transaction and emitting the next event; a failure emits a failure event
//! that the earlier participants react to with their compensations, so the
//! saga unwinds backwards through the events (the choreography variant of
//! Garcia-Molina & Salem's backward recovery, §1).
//!
//! Delivery is at least once, so each participant keeps an [`Inbox`] of the
//! event ids it handled and ignores repeats; an emitted event's id derives
//! from the event that caused it and from the participant that emitted it
//! (`"{cause id}>{participant}:{kind}"`, see [`Participant::handle`]), so a
//! participant that handles a
//! redelivered event (after losing its inbox, say) emits the same ids and
//! the next participant still dedupes. In a real deployment the inbox entry,
//! the local transaction and the emitted events commit in one transaction
//! (the transactional inbox and outbox); here [`Participant::handle`] is
//! that atomic step.
//!
//! See [`Choreography`] for an example.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use super::definition::SagaId;

/// One event of a choreographed saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per event; redeliveries carry the same id.
    pub id: String,
    /// The saga it belongs to.
    pub saga: SagaId,
    /// What happened (`"OrderCreated"`, `"PaymentFailed"`), the routing key.
    pub kind: String,
    /// Data for the next participant.
    pub payload: Bytes,
}

impl Event {
    /// An event.
    pub fn new(
        id: impl Into<String>,
        saga: SagaId,
        kind: impl Into<String>,
        payload: Bytes,
    ) -> Self {
        Self {
            id: id.into(),
            saga,
            kind: kind.into(),
            payload,
        }
    }
}

/// A participant's reaction to one event kind: do the local transaction
/// (or compensation) and return the events to emit, as `(kind, payload)`.
pub type Handler = Box<dyn FnMut(&Event) -> Vec<(String, Bytes)> + Send>;

/// The ids of the events a participant has handled.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    seen: BTreeSet<String>,
    duplicates: u64,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `id`; `false` (and counted) if it was seen before.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            self.duplicates += 1;
            return false;
        }
        self.seen.insert(id.to_owned());
        true
    }

    /// Repeated deliveries ignored so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Drops every id of a saga's events, once the saga has ended
    /// everywhere: `prefix` is its first event's id, and the ids derived
    /// from it are `prefix` followed by `>` ([`Participant::handle`]). Ids
    /// that merely start with the same characters (`"o10"` for `"o1"`) are
    /// kept.
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.seen.retain(|id| match id.strip_prefix(prefix) {
            Some(rest) => !(rest.is_empty() || rest.starts_with('>')),
            None => true,
        });
    }
}

/// One service of a choreographed saga.
pub struct Participant {
    name: String,
    handlers: Vec<(String, Handler)>,
    inbox: Inbox,
}

impl core::fmt::Debug for Participant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Participant")
            .field("name", &self.name)
            .field(
                "kinds",
                &self.handlers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("inbox", &self.inbox)
            .finish()
    }
}

impl Participant {
    /// A participant with no subscriptions.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            handlers: Vec::new(),
            inbox: Inbox::new(),
        }
    }

    /// Subscribes `handler` to events of `kind` (replacing an earlier one).
    #[must_use]
    pub fn on(
        mut self,
        kind: impl Into<String>,
        handler: impl FnMut(&Event) -> Vec<(String, Bytes)> + Send + 'static,
    ) -> Self {
        let kind = kind.into();
        self.handlers.retain(|(k, _)| *k != kind);
        self.handlers.push((kind, Box::new(handler)));
        self
    }

    /// The participant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it reacts to `kind`.
    pub fn subscribes(&self, kind: &str) -> bool {
        self.handlers.iter().any(|(k, _)| k == kind)
    }

    /// Handles one delivery: nothing if the participant does not subscribe
    /// to its kind or has handled its id; otherwise the handler runs once
    /// and its events come back with ids `"{cause id}>{participant}:{kind}"`,
    /// `#n` appended to the `n`-th repeat of one kind (n >= 1). In the
    /// participant's name and the kind, `%`, `>`, `:` and `#` are written
    /// `%25`, `%3E`, `%3A` and `%23`, so the part after the last `>` splits
    /// one way only: distinct events (another cause, participant, kind or
    /// repeat) never share an id, and a redelivered cause gives the same
    /// ids again.
    pub fn handle(&mut self, event: &Event) -> Vec<Event> {
        let Some((_, handler)) = self.handlers.iter_mut().find(|(k, _)| *k == event.kind) else {
            return Vec::new();
        };
        if !self.inbox.first_time(&event.id) {
            return Vec::new();
        }
        let emitted = handler(event);
        let mut out: Vec<Event> = Vec::with_capacity(emitted.len());
        for (kind, payload) in emitted {
            let same = out.iter().filter(|e| e.kind == kind).count();
            let (name, k) = (escape(&self.name), escape(&kind));
            let id = if same == 0 {
                format!("{}>{name}:{k}", event.id)
            } else {
                format!("{}>{name}:{k}#{same}", event.id)
            };
            out.push(Event {
                id,
                saga: event.saga,
                kind,
                payload,
            });
        }
        out
    }

    /// Its inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

/// `s` with the characters that delimit a derived event id escaped.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '>', ':', '#']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '>' => out.push_str("%3E"),
            ':' => out.push_str("%3A"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.into()
}

/// A choreographed saga: no orchestrator; each [`Participant`] reacts to the
/// previous step's event with its local transaction and emits the next
/// event, and a failure event makes the earlier participants run their
/// compensations, so the saga unwinds backwards through events. Delivery is
/// at least once; each participant's [`Inbox`] dedupes by event id, and an
/// emitted event's id derives from its cause's, so a re-handled event
/// emits the same ids. (In production the inbox entry, the local
/// transaction and the emitted events commit together: the transactional
/// inbox and outbox.)
///
/// ```
/// use bytes::Bytes;
/// use dsys_txn::saga::{Choreography, Event, Participant, SagaId};
///
/// let mut c = Choreography::new()
///     .participant(Participant::new("inventory").on("OrderCreated", |_e| {
///         vec![("InventoryReserved".into(), Bytes::new())]
///     }))
///     .participant(Participant::new("payment").on("InventoryReserved", |_e| {
///         vec![("PaymentFailed".into(), Bytes::new())]
///     }));
/// c.publish(Event::new("o1", SagaId(1), "OrderCreated", Bytes::new()));
/// c.run(100);
/// let kinds: Vec<_> = c.history().iter().map(|e| e.kind.as_str()).collect();
/// assert_eq!(kinds, ["OrderCreated", "InventoryReserved", "PaymentFailed"]);
/// ```
///
/// This type holds the participants and an in-memory event bus
/// between them (at-least-once, in publication order; tests republish to
/// simulate redelivery). It keeps every distinct event it delivered
/// ([`history`](Self::history)): a bus for tests and examples, not for a
/// long-running process.
#[derive(Debug, Default)]
pub struct Choreography {
    participants: Vec<Participant>,
    queue: VecDeque<Event>,
    history: Vec<Event>,
    delivered: BTreeSet<String>,
}

impl Choreography {
    /// No participants, an empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a participant.
    #[must_use]
    pub fn participant(mut self, p: Participant) -> Self {
        self.participants.push(p);
        self
    }

    /// Puts `event` on the bus (a saga's first event, or a redelivery).
    pub fn publish(&mut self, event: Event) {
        self.queue.push_back(event);
    }

    /// Delivers the next event on the bus to every subscriber and publishes
    /// what they emit; `None` when the bus is empty.
    pub fn deliver_next(&mut self) -> Option<Event> {
        let event = self.queue.pop_front()?;
        for p in &mut self.participants {
            let emitted = p.handle(&event);
            self.queue.extend(emitted);
        }
        if self.delivered.insert(event.id.clone()) {
            self.history.push(event.clone());
        }
        Some(event)
    }

    /// Delivers until the bus is empty or `max` deliveries were made (a
    /// bound against handlers that emit forever); returns the deliveries
    /// made.
    pub fn run(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.deliver_next().is_some() {
            n += 1;
        }
        n
    }

    /// Every distinct event delivered, in first-delivery order.
    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// Events published but not yet delivered.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The participants, in the order added.
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }
}
