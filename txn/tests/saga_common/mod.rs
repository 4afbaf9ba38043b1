//! What the async-runner tests share: a future that yields a few times, and
//! virtual wall time whose sleeps yield to the executor and then jump the
//! clock to their end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use dsys_txn::WallTime;
use dsys_txn::saga::{Clock, Sleep};

/// Ready after yielding `n` times (waking itself each time).
pub(crate) struct Yield(pub(crate) u32);

impl Future for Yield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Virtual wall time: a sleep yields to the executor `yields` times (every
/// ready invocation runs meanwhile, as a runner's select polls them first),
/// then moves the clock to the sleep's end.
#[derive(Clone)]
pub(crate) struct VirtualTime {
    nanos: Arc<AtomicU64>,
    yields: u32,
}

impl VirtualTime {
    /// Starts at `start`; each sleep yields `yields` times.
    pub(crate) fn new(start: WallTime, yields: u32) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(start.as_nanos())),
            yields,
        }
    }

    /// The runner's clock.
    pub(crate) fn clock(&self) -> Clock {
        let t = self.nanos.clone();
        Arc::new(move || WallTime::from_nanos(t.load(Ordering::SeqCst)))
    }

    /// The runner's sleep.
    pub(crate) fn sleep(&self) -> Sleep {
        let (t, yields) = (self.nanos.clone(), self.yields);
        Arc::new(move |d: Duration| {
            let t = t.clone();
            let target = t.load(Ordering::SeqCst) + u64::try_from(d.as_nanos()).unwrap();
            Box::pin(async move {
                Yield(yields).await;
                t.fetch_max(target, Ordering::SeqCst);
            })
        })
    }
}
