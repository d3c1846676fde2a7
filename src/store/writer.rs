//! The group-commit writer. One thread owns every write transaction: it takes the write
//! jobs that arrive together (up to `max_batch`), runs them in one transaction, numbers the
//! audit events they drafted under the chain head (as late as possible, so that commit order
//! is seq order: docs/STORAGE.md), commits once, durably, and only then answers each caller.
//! A commit failure fails every job of the batch (fail closed). When the backend asks for it
//! (a serialization failure or deadlock between daemons), the whole batch runs again from
//! the start: jobs are `Fn`, and everything they do outside the transaction (notices, deadline
//! wake-ups) is collected here and happens only after the commit.
//!
//! Jobs must check before they write: a job that returns a domain error must not have
//! written anything (there are no savepoints inside a dirty transaction).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::StoreError;
use super::audit_log::{AUDIT, last_event};
use super::backend::{AnyWrite, Backend};
use super::kv::{RedbWrite, Table};
use crate::audit::{Draft, Event, GENESIS};
use crate::notice::{Notice, Notices};

/// How many times a batch runs before its jobs fail with 503 when the backend keeps asking
/// for a retry.
const MAX_ATTEMPTS: usize = 8;

/// Work done once an audit event has its seq (inside the same transaction).
type SeqHook = Box<dyn for<'t> FnOnce(&mut AnyWrite<'t>, u64) -> Result<(), StoreError> + Send>;

/// What a job sees: the open transaction and the audit appender.
pub struct WriteCtx<'a> {
    tx: AnyWrite<'a>,
    now: time::OffsetDateTime,
    notices: Vec<Notice>,
    deadline_added: bool,
    drafts: Vec<Draft>,
    seq_hooks: Vec<(usize, SeqHook)>,
}

impl<'a> WriteCtx<'a> {
    fn new(tx: AnyWrite<'a>) -> WriteCtx<'a> {
        WriteCtx {
            tx,
            now: time::OffsetDateTime::now_utc(),
            notices: Vec::new(),
            deadline_added: false,
            drafts: Vec::new(),
            seq_hooks: Vec::new(),
        }
    }

    /// The batch's transaction behind the table seam.
    pub fn kv(&self) -> AnyWrite<'a> {
        self.tx
    }

    /// Drafts an audit event in this transaction; it is numbered and chained at commit.
    pub fn audit(&mut self, draft: Draft) -> Result<(), StoreError> {
        self.drafts.push(draft);
        Ok(())
    }

    /// Drafts an audit event and runs `then` with its seq once it is numbered, in the same
    /// transaction (for records that point at their own creation event).
    pub fn audit_then(
        &mut self,
        draft: Draft,
        then: impl for<'t> FnOnce(&mut AnyWrite<'t>, u64) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.seq_hooks.push((self.drafts.len(), Box::new(then)));
        self.drafts.push(draft);
    }

    /// The batch's timestamp.
    pub fn now(&self) -> time::OffsetDateTime {
        self.now
    }

    /// The batch's timestamp in unix seconds.
    pub fn now_unix(&self) -> i64 {
        self.now.unix_timestamp()
    }

    /// Queues a notice, published only if the batch commits.
    pub fn notify(&mut self, n: Notice) {
        self.notices.push(n);
    }

    /// Tells the deadline worker to look again after the commit.
    pub fn deadline_added(&mut self) {
        self.deadline_added = true;
    }

    /// Numbers and chains the drafted events from `head` (the next seq and the last hash),
    /// stores them and runs the hooks that wait for their seqs; returns the new head.
    fn number(&mut self, head: (u64, String)) -> Result<(u64, String), StoreError> {
        let (mut seq, mut prev) = head;
        let stamp = crate::util::rfc3339(self.now);
        let mut seqs = Vec::with_capacity(self.drafts.len());
        for draft in self.drafts.drain(..) {
            let event = Event::from_draft(draft, seq, prev, stamp.clone());
            AUDIT.put(&mut self.tx, &seq, &event)?;
            seqs.push(seq);
            prev = event.hash;
            seq += 1;
        }
        for (i, hook) in self.seq_hooks.drain(..) {
            hook(&mut self.tx, seqs[i])?;
        }
        Ok((seq, prev))
    }
}

/// Where committed batches announce themselves.
#[derive(Clone)]
pub struct Hooks {
    /// The notice stream.
    pub notices: Notices,
    /// Wakes the deadline worker.
    pub deadlines: Arc<Notify>,
    /// This daemon's id among the daemons of one PostgreSQL database.
    pub daemon: String,
    /// This daemon's metrics (batch sizes, commit latency, what committed batches announce).
    pub metrics: crate::metrics::Metrics,
}

/// Handle to submit jobs.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

/// The writer thread; join it after every [`Writer`] handle is dropped.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    /// Waits (blocking) until the writer has drained its queue and stopped.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl Writer {
    /// Submits a job and waits for its durable result. The job may run more than once (see
    /// the module doc); only the run that commits counts.
    pub async fn submit<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = job(f, move |out| {
            let _ = tx.send(out);
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Writer::submit`] for a job that first reads the records `reads` names (table and
    /// encoded key): on PostgreSQL the writer reads every such record of a batch, with its key
    /// lock, in one round trip before the jobs run, instead of one round trip per job.
    pub async fn submit_reading<R, F>(
        &self,
        reads: Vec<(Table, Vec<u8>)>,
        f: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(Queued {
            f,
            result: None,
            done: move |out| {
                let _ = tx.send(out);
            },
            reads,
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Submits a job without waiting for its commit: the writer still commits it durably (and
    /// drains it before stopping); a failure is logged as "could not record `what`". Not async,
    /// so it cannot be cancelled half-way (usable from `Drop`).
    pub fn submit_detached<F>(&self, what: &'static str, f: F)
    where
        F: Fn(&mut WriteCtx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let job = job(f, move |out| {
            if let Err(e) = out {
                tracing::error!(error = %e, "could not record {what}");
            }
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            // A full queue: wait for room in a task of our own.
            Err(mpsc::error::TrySendError::Full(job)) => {
                let tx = self.tx.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(async move {
                            if tx.send(job).await.is_err() {
                                tracing::error!("could not record {what}: the store is closed");
                            }
                        });
                    }
                    Err(_) => tracing::error!("could not record {what}: the write queue is full"),
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("could not record {what}: the store is closed");
            }
        }
    }

    /// Has the writer thread stopped?
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// How a job's run went, for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Its result (a value or a domain error) stands.
    Done,
    /// The backend asks for the batch to run again.
    Retry,
    /// The database cannot be reached: nothing commits, every job answers 503.
    Unavailable(String),
    /// A store-level failure: the transaction must not commit.
    Fatal,
}

/// A queued job: run (perhaps several times), then told the batch's outcome once.
trait Job: Send {
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> Step;
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
    /// The records the job will read first (see [`Writer::submit_reading`]).
    fn reads(&self) -> &[(Table, Vec<u8>)];
}

struct Queued<F, R, D> {
    f: F,
    result: Option<Result<R, StoreError>>,
    done: D,
    reads: Vec<(Table, Vec<u8>)>,
}

impl<F, R, D> Job for Queued<F, R, D>
where
    F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send,
    R: Send,
    D: FnOnce(Result<R, StoreError>) + Send,
{
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> Step {
        let result = (self.f)(ctx);
        let step = match &result {
            Err(StoreError::Retry) => Step::Retry,
            Err(StoreError::Unavailable(m)) => Step::Unavailable(m.clone()),
            Err(StoreError::Db(_) | StoreError::Corrupt(_)) => Step::Fatal,
            _ => Step::Done,
        };
        self.result = Some(result);
        step
    }

    fn reads(&self) -> &[(Table, Vec<u8>)] {
        &self.reads
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let me = *self;
        let result = me.result.unwrap_or(Err(StoreError::Closed));
        (me.done)(match commit {
            // A job's own domain error stands even when the batch failed after it.
            Err(e) => result.and(Err(e)),
            Ok(()) => result,
        });
    }
}

/// Wraps `f` as a job: once the batch's commit is known, `done` gets the job's error if it
/// failed, else the commit's error, else its value.
fn job<R, F>(f: F, done: impl FnOnce(Result<R, StoreError>) + Send + 'static) -> Box<dyn Job>
where
    R: Send + 'static,
    F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
{
    Box::new(Queued {
        f,
        result: None,
        done,
        reads: Vec::new(),
    })
}

/// Starts the writer thread.
/// Starts the writer thread. The watch it answers holds the highest committed audit seq (on
/// PostgreSQL the other daemons' commits move it too: see `pg_notices`).
pub fn spawn(
    backend: Backend,
    max_batch: usize,
    hooks: Hooks,
) -> Result<(Writer, WriterThread, Arc<watch::Sender<u64>>), StoreError> {
    let head = audit_head(&backend)?;
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>(8192);
    let seq_tx = Arc::new(watch::Sender::new(head.0 - 1));
    let seq = seq_tx.clone();
    let handle = std::thread::Builder::new()
        .name("latchkey-writer".into())
        .spawn(move || run(backend, rx, max_batch.max(1), head, seq, hooks))
        .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
    Ok((Writer { tx }, WriterThread(handle), seq_tx))
}

fn audit_head(backend: &Backend) -> Result<(u64, String), StoreError> {
    match last_event(&backend.begin_read()?)? {
        Some(e) => Ok((e.seq + 1, e.hash)),
        None => Ok((1, GENESIS.to_string())),
    }
}

/// What one run of a batch came to.
enum Attempt {
    /// Committed; the chain's new head, and what to announce.
    Committed((u64, String), Vec<Notice>, bool),
    /// Run it again.
    Retry,
    /// Failed; every job fails with this.
    Failed(StoreError),
}

/// Runs every job of the batch in `ctx`'s transaction; fails when the batch may not commit.
fn run_jobs(ctx: &mut WriteCtx<'_>, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let mut fatal = false;
    for job in batch.iter_mut() {
        match job.run(ctx) {
            Step::Done => {}
            Step::Retry => return Err(StoreError::Retry),
            // The connection is gone: the rest of the batch would fail the same way.
            Step::Unavailable(m) => return Err(StoreError::Unavailable(m)),
            Step::Fatal => fatal = true,
        }
    }
    if fatal {
        return Err(StoreError::Db(
            "a job failed inside the transaction".to_string(),
        ));
    }
    Ok(())
}

/// The outcome of a batch that did not commit.
fn not_committed(e: StoreError) -> Attempt {
    match e {
        StoreError::Retry => Attempt::Retry,
        e => Attempt::Failed(e),
    }
}

/// Runs every job of the batch in one transaction, numbers their events and commits.
fn attempt(backend: &Backend, batch: &mut [Box<dyn Job>], head: &(u64, String)) -> Attempt {
    match backend {
        Backend::Redb(db) => {
            let txn = match db.begin_write() {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot begin a write transaction");
                    return Attempt::Failed(StoreError::Closed);
                }
            };
            let mut ctx = WriteCtx::new(AnyWrite::Redb(RedbWrite(&txn)));
            // One writer per file: the head in memory is the chain's head.
            let numbered = run_jobs(&mut ctx, batch).and_then(|()| ctx.number(head.clone()));
            let (notices, deadline_added) = (std::mem::take(&mut ctx.notices), ctx.deadline_added);
            drop(ctx);
            match numbered {
                Ok(new_head) => match txn.commit() {
                    Ok(()) => Attempt::Committed(new_head, notices, deadline_added),
                    Err(e) => Attempt::Failed(StoreError::Db(e.to_string())),
                },
                Err(e) => {
                    let _ = txn.abort();
                    not_committed(e)
                }
            }
        }
        Backend::Pg(pg) => {
            let txn = pg.begin_write();
            // The records the jobs said they read, in one round trip.
            let reads: Vec<(Table, Vec<u8>)> = batch
                .iter()
                .flat_map(|j| j.reads().iter().cloned())
                .collect();
            if !reads.is_empty()
                && let Err(e) = txn.prefetch(reads)
            {
                let _ = txn.rollback();
                return not_committed(e.into());
            }
            let mut ctx = WriteCtx::new(AnyWrite::Pg(&txn));
            // Several daemons: the head is read, locked, at the last moment (docs/STORAGE.md).
            let numbered = run_jobs(&mut ctx, batch).and_then(|()| {
                if ctx.drafts.is_empty() {
                    return Ok(None);
                }
                let head = txn.lock_chain_head()?;
                let new_head = ctx.number(head)?;
                txn.set_chain_head(new_head.0, &new_head.1)?;
                Ok(Some(new_head))
            });
            let (notices, deadline_added) = (std::mem::take(&mut ctx.notices), ctx.deadline_added);
            drop(ctx);
            match numbered {
                Ok(new_head) => match txn.commit() {
                    Ok(()) => Attempt::Committed(
                        new_head.unwrap_or_else(|| head.clone()),
                        notices,
                        deadline_added,
                    ),
                    // The outcome of a failed COMMIT is unknown: nothing is acknowledged.
                    Err(e) => Attempt::Failed(e.into()),
                },
                Err(e) => {
                    let _ = txn.rollback();
                    not_committed(e)
                }
            }
        }
    }
}

fn run(
    backend: Backend,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    mut head: (u64, String),
    seq_tx: Arc<watch::Sender<u64>>,
    hooks: Hooks,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let mut outcome = Attempt::Retry;
        for n in 0..MAX_ATTEMPTS {
            if n > 0 {
                hooks.metrics.batch_retried();
            }
            outcome = attempt(&backend, &mut batch, &head);
            if !matches!(outcome, Attempt::Retry) {
                break;
            }
        }
        let (size, took) = (batch.len(), started.elapsed());
        match outcome {
            Attempt::Committed(new_head, notices, deadline_added) => {
                hooks.metrics.batch_committed(size, took, &notices);
                head = new_head;
                let last = head.0 - 1;
                seq_tx.send_if_modified(|v| {
                    let moved = last > *v;
                    *v = (*v).max(last);
                    moved
                });
                // Callers first, so a request is answered before its notice wakes a poller.
                for job in batch.drain(..) {
                    job.finish(Ok(()));
                }
                // The other daemons of a PostgreSQL database hear of it too (one notification
                // per batch).
                if let Backend::Pg(pg) = &backend {
                    super::pg_notices::send(pg, &hooks.daemon, &notices, deadline_added, last);
                }
                for n in notices {
                    hooks.notices.publish(n);
                }
                if deadline_added {
                    hooks.deadlines.notify_one();
                }
            }
            Attempt::Retry => {
                hooks.metrics.batch_failed(size, took, true);
                tracing::error!("a write batch kept conflicting; every request in it fails");
                for job in batch.drain(..) {
                    job.finish(Err(StoreError::Unavailable(
                        "the database kept reporting conflicts; try again".into(),
                    )));
                }
            }
            Attempt::Failed(e) => {
                hooks.metrics.batch_failed(size, took, false);
                tracing::error!(error = %e, "write batch aborted; every request in it fails");
                let msg = e.to_string();
                for job in batch.drain(..) {
                    let e = match &e {
                        StoreError::Closed => StoreError::Closed,
                        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                        _ => StoreError::Db(msg.clone()),
                    };
                    job.finish(Err(e));
                }
            }
        }
    }
}
