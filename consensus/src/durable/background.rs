//! Syncing off the caller's thread: [`DiskStorage::sync_in_background`]
//! hands what was staged to a syncer thread of the storage's own, which
//! fsyncs it while the caller goes on staging the next batches, and
//! returns a [`SyncTicket`] that resolves once it is durable.
//!
//! The syncer holds no reference to the storage: each request carries
//! handles of its own to the files it must fsync (`File::try_clone`, a
//! second descriptor of the same open file). Requests that come while a
//! sync is running wait and are covered together by the next one (group
//! commit across the caller's rounds): a sync covers every request made
//! before it starts, so each ticket resolves with the first sync that
//! starts after its request.

use std::fs::File;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crate::output::PersistId;

/// How many syncs and file fsyncs a [`DiskStorage`](super::DiskStorage)
/// has made, from its thread and its syncer's together: a cloneable handle
/// that stays readable while the storage is in use elsewhere (in a driver
/// task). For benchmarks and tests.
#[derive(Debug, Clone, Default)]
pub struct SyncCounters(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    syncs: AtomicU64,
    fsyncs: AtomicU64,
    requests: AtomicU64,
    requests_durable: AtomicU64,
}

impl SyncCounters {
    /// Syncs that made something durable ([`sync`](super::DiskStorage::sync)
    /// calls and background syncs; a background sync covers every request
    /// made before it started).
    pub fn syncs(&self) -> u64 {
        self.0.syncs.load(Ordering::Relaxed)
    }

    /// File and directory fsyncs made by those syncs (segment, state file,
    /// directory), and by sealing a segment.
    pub fn fsyncs(&self) -> u64 {
        self.0.fsyncs.load(Ordering::Relaxed)
    }

    /// Background sync requests made so far: the number of the latest.
    pub fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::Acquire)
    }

    /// Every background sync request up to this number is durable (its
    /// fsyncs returned): a ticket for request `n` resolves only once this
    /// is at least `n`.
    pub fn requests_durable(&self) -> u64 {
        self.0.requests_durable.load(Ordering::Acquire)
    }

    pub(super) fn count_sync(&self) {
        self.0.syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_fsyncs(&self, n: u64) {
        self.0.fsyncs.fetch_add(n, Ordering::Relaxed);
    }
}

/// What one request asks the syncer to make durable. Fields left `None`
/// had nothing new.
#[derive(Debug, Default)]
pub(super) struct Request {
    /// The active segment, with entries written to it (`fdatasync`).
    pub(super) segment: Option<File>,
    /// The directory, after a segment was created in it (`fsync`).
    pub(super) dir: Option<PathBuf>,
    /// The highest batch id staged before the request.
    pub(super) id: Option<PersistId>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Requests made so far (each gets the next number).
    requested: u64,
    /// Every request up to this one is durable.
    durable: u64,
    /// What the next sync must cover, merged over the requests since the
    /// last one started. A newer segment replaces an older one: the older
    /// was fsynced when it was sealed, or cut and fsynced by a truncation.
    pending: Request,
    /// The highest id requested.
    requested_id: Option<PersistId>,
    /// A sync failed (kind and message): nothing after `durable` is known
    /// to be on disk, and no sync runs again.
    error: Option<(io::ErrorKind, String)>,
    shutdown: bool,
    wakers: Vec<Waker>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the syncer (a request, shutdown) and blocking waiters (a sync
    /// finished).
    changed: Condvar,
    counters: SyncCounters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock (none of the code under it
        // panics) would leave plain counters behind: still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The syncer thread and what it shares with the storage.
#[derive(Debug)]
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub(super) fn start(counters: SyncCounters) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
            counters,
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dsys-disk-sync".into())
            .spawn(move || run(&for_thread))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `request`; the ticket resolves once it (and every request
    /// before it) is durable.
    pub(super) fn request(&self, request: Request) -> SyncTicket {
        let mut inner = self.shared.lock();
        inner.requested += 1;
        let Request { segment, dir, id } = request;
        if segment.is_some() {
            inner.pending.segment = segment;
        }
        if dir.is_some() {
            inner.pending.dir = dir;
        }
        inner.requested_id = inner.requested_id.max(id);
        self.shared
            .counters
            .0
            .requests
            .store(inner.requested, Ordering::Release);
        let ticket = SyncTicket {
            shared: Some(Arc::clone(&self.shared)),
            number: inner.requested,
            id: inner.requested_id,
        };
        drop(inner);
        self.shared.changed.notify_all();
        ticket
    }

    /// Blocks until every request is durable.
    ///
    /// # Errors
    /// A sync failed.
    pub(super) fn wait_idle(&self) -> io::Result<()> {
        let mut inner = self.shared.lock();
        loop {
            if let Some((kind, message)) = &inner.error {
                return Err(io::Error::new(*kind, message.clone()));
            }
            if inner.durable >= inner.requested {
                return Ok(());
            }
            inner = self
                .shared
                .changed
                .wait(inner)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Whether every request is durable (false after a failure).
    pub(super) fn is_idle(&self) -> bool {
        let inner = self.shared.lock();
        inner.error.is_none() && inner.durable >= inner.requested
    }

    /// Whether a background sync failed.
    pub(super) fn failed(&self) -> bool {
        self.shared.lock().error.is_some()
    }
}

impl Drop for Syncer {
    /// Stops the syncer without starting another sync: what was requested
    /// and not yet synced is left to the kernel, as at a crash (a sync
    /// already running finishes first). Tickets still waiting resolve with
    /// an error.
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let wakers = {
            let mut inner = self.shared.lock();
            if inner.error.is_none() && inner.durable < inner.requested {
                inner.error = Some((
                    io::ErrorKind::BrokenPipe,
                    "the storage was dropped before this sync ran".into(),
                ));
            }
            std::mem::take(&mut inner.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The syncer thread's loop: wait for a request, take everything
/// requested so far, fsync it, publish.
fn run(shared: &Shared) {
    loop {
        let (number, job) = {
            let mut inner = shared.lock();
            loop {
                if inner.shutdown || inner.error.is_some() {
                    return;
                }
                if inner.requested > inner.durable {
                    break;
                }
                inner = shared
                    .changed
                    .wait(inner)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            (inner.requested, std::mem::take(&mut inner.pending))
        };
        let result = sync_files(job, &shared.counters);
        let wakers = {
            let mut inner = shared.lock();
            match result {
                Ok(()) => {
                    inner.durable = number;
                    shared
                        .counters
                        .0
                        .requests_durable
                        .store(number, Ordering::Release);
                }
                Err(e) => inner.error = Some((e.kind(), e.to_string())),
            }
            std::mem::take(&mut inner.wakers)
        };
        shared.changed.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Fsyncs what `job` names: the segment, then the directory. (A
/// commit-only hard state appended to the state file meanwhile is not
/// fsynced: the commit index is lazy; see
/// `DiskStorage::sync_in_background`.)
fn sync_files(job: Request, counters: &SyncCounters) -> io::Result<()> {
    let Request {
        segment,
        dir,
        id: _,
    } = job;
    let mut n = 0;
    if let Some(segment) = segment {
        segment.sync_data()?;
        n += 1;
    }
    if let Some(dir) = dir {
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        let _ = dir;
        n += 1;
    }
    counters.count_sync();
    counters.count_fsyncs(n);
    Ok(())
}

/// Resolves once the request it was returned for, and every one before
/// it, is durable, with the highest batch id staged before that request
/// (`None` if none was): pass it to `on_persisted`. A [`Future`], and
/// [`wait`](Self::wait) blocks for it outside async code.
///
/// Resolves with an error if a sync fails (the storage then refuses every
/// later write: reopen it) or the storage is dropped first.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless waited for"]
pub struct SyncTicket {
    /// `None`: durable when it was made (synced in the caller's thread).
    shared: Option<Arc<Shared>>,
    number: u64,
    id: Option<PersistId>,
}

impl SyncTicket {
    pub(super) fn ready(id: Option<PersistId>) -> Self {
        Self {
            shared: None,
            number: 0,
            id,
        }
    }

    /// The highest batch id this ticket covers.
    pub fn id(&self) -> Option<PersistId> {
        self.id
    }

    /// Whether it is durable already (false after a failure).
    pub fn is_durable(&self) -> bool {
        self.shared.as_ref().is_none_or(|shared| {
            let inner = shared.lock();
            inner.error.is_none() && inner.durable >= self.number
        })
    }

    /// Blocks until durable.
    ///
    /// # Errors
    /// A sync failed, or the storage was dropped first.
    pub fn wait(self) -> io::Result<Option<PersistId>> {
        let Some(shared) = &self.shared else {
            return Ok(self.id);
        };
        let mut inner = shared.lock();
        loop {
            if let Some(result) = self.check(&inner) {
                return result;
            }
            inner = shared
                .changed
                .wait(inner)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn check(&self, inner: &Inner) -> Option<io::Result<Option<PersistId>>> {
        if inner.durable >= self.number {
            // Durable before any failure.
            return Some(Ok(self.id));
        }
        if let Some((kind, message)) = &inner.error {
            return Some(Err(io::Error::new(*kind, message.clone())));
        }
        None
    }
}

impl Future for SyncTicket {
    type Output = io::Result<Option<PersistId>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(Ok(self.id));
        };
        let mut inner = shared.lock();
        if let Some(result) = self.check(&inner) {
            return Poll::Ready(result);
        }
        if !inner.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
