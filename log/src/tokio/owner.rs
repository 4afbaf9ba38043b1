//! The owner task that holds the log, and the handle that talks to it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::tokio::sync::{mpsc, oneshot};
use ::tokio::task::spawn_blocking;
use ::tokio::time::{Instant, sleep_until};

use super::{
    AppendError, CloseError, Closed, DriverConfig, DriverConfigError, DriverCounters, FlushError,
};
use crate::Timestamp;
use crate::batch::{BatchBuf, RecordBatch};
use crate::log::{Appended, Log, LogReader, ReadError};
use crate::storage::Storage;

type Job<S> = Box<dyn FnOnce(&mut Log<S>) + Send>;
type AppendReply = oneshot::Sender<Result<Appended, AppendError>>;

enum Command<S: Storage> {
    Append {
        batch: BatchBuf,
        durable: bool,
        reply: AppendReply,
    },
    Flush(oneshot::Sender<Result<u64, FlushError>>),
    With(Job<S>),
    Close(oneshot::Sender<Result<(), CloseError>>),
}

#[derive(Debug, Default)]
struct Shared {
    rounds: AtomicU64,
    appends: AtomicU64,
    group_flushes: AtomicU64,
    timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A cloneable async handle on a log owned by a task ([`spawn`]).
///
/// The owner runs until [`close`](Self::close) or until every handle is
/// dropped (then it closes the log too).
pub struct Handle<S: Storage> {
    commands: mpsc::Sender<Command<S>>,
    reader: LogReader<S::File>,
    counters: Arc<Shared>,
}

impl<S: Storage> Clone for Handle<S> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            reader: self.reader.clone(),
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<S: Storage> std::fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.commands.is_closed())
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Handle<S> {
    /// Appends `batch` ([`Log::append`], with the wall clock as `now`) and
    /// resolves with where it went. It is durable only as far as
    /// [`Appended::durable_offset`] says (the log's flush policy).
    ///
    /// # Errors
    /// [`AppendError::Append`] when the log refused or failed it,
    /// [`AppendError::Closed`] when the owner has stopped.
    pub async fn append(&self, batch: BatchBuf) -> Result<Appended, AppendError> {
        self.send_append(batch, false).await
    }

    /// Appends `batch` and resolves once it is fsynced: the acknowledgement a
    /// producer with `acks` for durability waits for. The appends and flushes
    /// waiting together share one fsync (group commit); the returned
    /// [`Appended::durable_offset`] is past the batch.
    ///
    /// # Errors
    /// [`AppendError::Append`] when the log refused or failed it,
    /// [`AppendError::NotDurable`] when it was appended but the fsync failed,
    /// [`AppendError::Closed`] when the owner has stopped.
    pub async fn append_durable(&self, batch: BatchBuf) -> Result<Appended, AppendError> {
        self.send_append(batch, true).await
    }

    async fn send_append(&self, batch: BatchBuf, durable: bool) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append {
                batch,
                durable,
                reply,
            })
            .await
            .map_err(|_| AppendError::Closed)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .unwrap_or(Err(AppendError::Closed))
    }

    /// Fsyncs everything appended so far ([`Log::flush`]) and resolves with
    /// the new durable offset; shares the fsync with the durable appends
    /// waiting then.
    ///
    /// # Errors
    /// [`FlushError::Flush`] when the fsync failed, [`FlushError::Closed`]
    /// when the owner has stopped.
    pub async fn flush(&self) -> Result<u64, FlushError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Flush(reply))
            .await
            .map_err(|_| FlushError::Closed)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .unwrap_or(Err(FlushError::Closed))
    }

    /// Reads whole batches from `offset` on, about `max_bytes` of them
    /// ([`LogReader::read`]), on the blocking pool and without waiting for
    /// the owner: reads run concurrently with appends and with each other.
    /// They see offsets below the high-watermark only.
    ///
    /// # Errors
    /// [`ReadError`] as from [`LogReader::read`]; a read whose blocking task
    /// panicked or was cancelled is a [`ReadError::Io`].
    pub async fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<RecordBatch>, ReadError> {
        let reader = self.reader.clone();
        spawn_blocking(move || reader.read(offset, max_bytes))
            .await
            .map_err(|e| ReadError::Io(io::Error::other(e)))?
    }

    /// A reader on the log, for reading from threads of your own.
    pub fn reader(&self) -> LogReader<S::File> {
        self.reader.clone()
    }

    /// Readers see offsets below this.
    pub fn high_watermark(&self) -> u64 {
        self.reader.high_watermark()
    }

    /// Runs `f` on the log in the owner, on the blocking pool, between two
    /// rounds of commands: retention, compaction, `roll`,
    /// `set_high_watermark`, getters. `f` must not block for long: appends
    /// wait meanwhile (the runtime does not).
    ///
    /// # Errors
    /// [`Closed`] when the owner has stopped (or `f` panicked, which stops
    /// it and drops the log unclosed).
    pub async fn with<R, F>(&self, f: F) -> Result<R, Closed>
    where
        R: Send + 'static,
        F: FnOnce(&mut Log<S>) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job<S> = Box::new(move |log| {
            let _ = reply.send(f(log));
        });
        self.commands
            .send(Command::With(job))
            .await
            .map_err(|_| Closed)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .ok_or(Closed)
    }

    /// What the owner did so far.
    pub fn counters(&self) -> DriverCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DriverCounters {
            rounds: get(&self.counters.rounds),
            appends: get(&self.counters.appends),
            group_flushes: get(&self.counters.group_flushes),
            timeouts: get(&self.counters.timeouts),
        }
    }

    /// Whether the owner has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Closes the log ([`Log::close`]: flush, indexes, clean-shutdown
    /// checkpoint) after the commands queued before it, and stops the owner;
    /// later calls on any handle fail with `Closed`. Reads through
    /// [`reader`](Self::reader) keep working.
    ///
    /// # Errors
    /// [`CloseError::Close`] when closing failed, [`CloseError::Closed`]
    /// when the owner had stopped already.
    pub async fn close(&self) -> Result<(), CloseError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Close(reply))
            .await
            .map_err(|_| CloseError::Closed)?;
        dsys_net::answered(answer, &self.commands)
            .await
            .unwrap_or(Err(CloseError::Closed))
    }
}

/// Hands `log` to an owner task on the current tokio runtime and returns a
/// handle on it.
///
/// # Errors
/// [`DriverConfigError`] if `config` does not validate; nothing started (the
/// log is dropped unclosed).
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn<S: Storage>(
    log: Log<S>,
    config: DriverConfig,
) -> Result<Handle<S>, DriverConfigError> {
    config.validate()?;
    let (commands, receiver) = mpsc::channel(config.command_queue);
    let reader = log.reader();
    let counters = Arc::new(Shared::default());
    ::tokio::spawn(run(log, receiver, Arc::clone(&counters), config.max_group));
    Ok(Handle {
        commands,
        reader,
        counters,
    })
}

/// The wall clock as the log sees it: milliseconds since the Unix epoch.
fn wall_clock() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Timestamp::try_from(d.as_millis()).unwrap_or(Timestamp::MAX)
    })
}

/// The tokio instant at wall-clock time `at`.
fn instant_at(at: Timestamp) -> Instant {
    let wait = u64::try_from(at.saturating_sub(wall_clock())).unwrap_or(0);
    Instant::now() + Duration::from_millis(wait)
}

async fn run<S: Storage>(
    log: Log<S>,
    mut commands: mpsc::Receiver<Command<S>>,
    counters: Arc<Shared>,
    max_group: usize,
) {
    let mut log = log;
    // After a timer round, the next one waits at least this long, so a
    // deadline that `handle_timeout` could not clear (a failed flush) never
    // spins.
    let mut not_before = Instant::now();
    loop {
        let deadline = if log.is_failed() {
            None
        } else {
            log.poll_timeout().map(|at| instant_at(at).max(not_before))
        };
        let mut round = Vec::new();
        let mut timer = false;
        let mut hung_up = false;
        ::tokio::select! {
            command = commands.recv() => match command {
                Some(command) => round.push(command),
                None => hung_up = true,
            },
            () = async {
                match deadline {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => timer = true,
        }
        if hung_up {
            // Every handle is gone: close cleanly, nobody to tell.
            let _ = spawn_blocking(move || log.close()).await;
            return;
        }
        while round.len() < max_group {
            match commands.try_recv() {
                Ok(command) => round.push(command),
                Err(_) => break,
            }
        }
        if timer {
            not_before = Instant::now() + Duration::from_millis(1);
        }
        let shared = Arc::clone(&counters);
        match spawn_blocking(move || run_round(log, round, timer, &shared)).await {
            Ok(Some(back)) => log = back,
            // Closed, or a closure from `with` panicked and took the log.
            Ok(None) | Err(_) => return,
        }
    }
}

/// One round, on the blocking pool: the timer if it fired, every command in
/// order, then one fsync for the durable appends and flushes among them.
/// `None` once the log is closed.
fn run_round<S: Storage>(
    mut log: Log<S>,
    round: Vec<Command<S>>,
    timer: bool,
    counters: &Shared,
) -> Option<Log<S>> {
    bump(&counters.rounds);
    let now = wall_clock();
    if timer {
        bump(&counters.timeouts);
        // A failed flush fails the log; the next call on it says so.
        let _ = log.handle_timeout(now);
    }
    let mut durable: Vec<(Appended, AppendReply)> = Vec::new();
    let mut flushes = Vec::new();
    let mut close = None;
    for command in round {
        match command {
            Command::Append {
                batch,
                durable: wants_durable,
                reply,
            } => {
                bump(&counters.appends);
                match log.append(batch, now) {
                    Ok(appended)
                        if wants_durable && appended.durable_offset <= appended.last_offset =>
                    {
                        durable.push((appended, reply));
                    }
                    Ok(appended) => {
                        let _ = reply.send(Ok(appended));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Flush(reply) => flushes.push(reply),
            Command::With(job) => job(&mut log),
            Command::Close(reply) => {
                // Commands after it in this round are dropped: they fail
                // with `Closed`, as those still queued do.
                close = Some(reply);
                break;
            }
        }
    }
    if !durable.is_empty() || !flushes.is_empty() {
        bump(&counters.group_flushes);
        match log.flush() {
            Ok(offset) => {
                for (mut appended, reply) in durable {
                    appended.durable_offset = offset;
                    let _ = reply.send(Ok(appended));
                }
                for reply in flushes {
                    let _ = reply.send(Ok(offset));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for (appended, reply) in durable {
                    let _ = reply.send(Err(AppendError::NotDurable {
                        base_offset: appended.base_offset,
                        last_offset: appended.last_offset,
                        source: Arc::clone(&e),
                    }));
                }
                for reply in flushes {
                    let _ = reply.send(Err(FlushError::Flush(Arc::clone(&e))));
                }
            }
        }
    }
    match close {
        Some(reply) => {
            let _ = reply.send(log.close().map_err(CloseError::Close));
            None
        }
        None => Some(log),
    }
}
