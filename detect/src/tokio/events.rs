//! The stream of membership events a driver hands out.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::sync::mpsc;

use crate::Event;

/// The membership changes of a member run by [`spawn`](super::spawn), in
/// the order the state machine produced them: a bounded queue, read with
/// [`recv`](Self::recv) or as a `futures_core::Stream`.
///
/// Ends (`None`) once the driver has stopped and every queued event was
/// read. When the queue is full, the driver drops new events and counts
/// them ([`DriverCounters::events_dropped`](super::DriverCounters::events_dropped));
/// [`Handle::snapshot`](super::Handle::snapshot) always has the current
/// view. Dropping `Events` does not stop the driver.
pub struct Events {
    receiver: mpsc::Receiver<Event<SocketAddr>>,
}

impl Events {
    pub(super) fn new(receiver: mpsc::Receiver<Event<SocketAddr>>) -> Self {
        Self { receiver }
    }

    /// The next event; `None` once the driver has stopped and the queue is
    /// empty. Cancel safe: an event is never lost by dropping the future.
    pub async fn recv(&mut self) -> Option<Event<SocketAddr>> {
        self.receiver.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event<SocketAddr>> {
        self.receiver.try_recv().ok()
    }
}

impl futures_core::Stream for Events {
    type Item = Event<SocketAddr>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("queued", &self.receiver.len())
            .finish_non_exhaustive()
    }
}
