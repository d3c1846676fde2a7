//! The group-commit writer. One thread owns every write transaction: it takes the write
//! jobs that arrive together (up to `max_batch`), runs them in one redb transaction — each
//! appending its audit events to the same transaction — commits once, durably, and only then
//! answers each caller. A commit failure fails every job of the batch (fail closed).
//!
//! Jobs must check before they write: a job that returns a domain error must not have
//! written anything (redb has no savepoints inside a dirty transaction).

use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase, WriteTransaction};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::StoreError;
use super::audit_log::{AUDIT, last_event};
use crate::audit::{Draft, Event, GENESIS};
use crate::notice::{Notice, Notices};

type Finisher = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (Finisher, bool) + Send>;

/// What a job sees: the open transaction and the audit appender.
pub struct WriteCtx<'a> {
    /// The batch's write transaction.
    pub txn: &'a WriteTransaction,
    next_seq: u64,
    last_hash: String,
    now: time::OffsetDateTime,
    notices: Vec<Notice>,
    deadline_added: bool,
}

impl WriteCtx<'_> {
    /// The batch's transaction behind the table seam.
    pub fn kv(&self) -> super::kv::RedbWrite<'_> {
        super::kv::RedbWrite(self.txn)
    }

    /// Appends an audit event in this transaction; returns its seq.
    pub fn audit(&mut self, draft: Draft) -> Result<u64, StoreError> {
        let seq = self.next_seq;
        let event = Event::from_draft(
            draft,
            seq,
            self.last_hash.clone(),
            crate::util::rfc3339(self.now),
        );
        AUDIT.put(&mut self.kv(), &seq, &event)?;
        self.next_seq += 1;
        self.last_hash = event.hash;
        Ok(seq)
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
}

/// Where committed batches announce themselves.
#[derive(Clone)]
pub struct Hooks {
    /// The notice stream.
    pub notices: Notices,
    /// Wakes the deadline worker.
    pub deadlines: Arc<Notify>,
}

/// Handle to submit jobs.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
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
    /// Submits a job and waits for its durable result.
    pub async fn submit<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = job(f, move |out| {
            let _ = tx.send(out);
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Submits a job without waiting for its commit: the writer still commits it durably (and
    /// drains it before stopping); a failure is logged as "could not record `what`". Not async,
    /// so it cannot be cancelled half-way (usable from `Drop`).
    pub fn submit_detached<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<(), StoreError> + Send + 'static,
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

/// Wraps `f` as a job: once the batch's commit is known, `done` gets the job's error if it
/// failed, else the commit's error, else its value. A store-level error poisons the batch.
fn job<R, F>(f: F, done: impl FnOnce(Result<R, StoreError>) + Send + 'static) -> Job
where
    R: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
{
    Box::new(move |ctx| {
        let result = f(ctx);
        let fatal = matches!(result, Err(StoreError::Db(_) | StoreError::Corrupt(_)));
        let finish: Finisher =
            Box::new(move |commit| done(result.and_then(|r| commit.map(|()| r))));
        (finish, fatal)
    })
}

/// Starts the writer thread.
pub fn spawn(
    db: Arc<Database>,
    max_batch: usize,
    hooks: Hooks,
) -> Result<(Writer, WriterThread, watch::Receiver<u64>), StoreError> {
    let (next_seq, last_hash) = audit_head(&db)?;
    let (tx, rx) = mpsc::channel::<Job>(8192);
    let (seq_tx, seq_rx) = watch::channel(next_seq - 1);
    let handle = std::thread::Builder::new()
        .name("latchkey-writer".into())
        .spawn(move || run(db, rx, max_batch.max(1), next_seq, last_hash, seq_tx, hooks))
        .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
    Ok((Writer { tx }, WriterThread(handle), seq_rx))
}

fn audit_head(db: &Database) -> Result<(u64, String), StoreError> {
    match last_event(&super::kv::RedbRead(db.begin_read()?))? {
        Some(e) => Ok((e.seq + 1, e.hash)),
        None => Ok((1, GENESIS.to_string())),
    }
}

fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    mut next_seq: u64,
    mut last_hash: String,
    seq_tx: watch::Sender<u64>,
    hooks: Hooks,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                // Dropping the jobs answers their callers with `Closed` (503).
                tracing::error!(error = %e, "cannot begin a write transaction");
                batch.clear();
                continue;
            }
        };
        let mut ctx = WriteCtx {
            txn: &txn,
            next_seq,
            last_hash: last_hash.clone(),
            now: time::OffsetDateTime::now_utc(),
            notices: Vec::new(),
            deadline_added: false,
        };
        let mut finishers = Vec::with_capacity(batch.len());
        let mut poisoned = false;
        for job in batch.drain(..) {
            let (finish, fatal) = job(&mut ctx);
            poisoned |= fatal;
            finishers.push(finish);
        }
        let (new_seq, new_hash, notices, deadline_added) =
            (ctx.next_seq, ctx.last_hash, ctx.notices, ctx.deadline_added);
        let outcome = if poisoned {
            let _ = txn.abort();
            Err("a job failed inside the transaction".to_string())
        } else {
            txn.commit().map_err(|e| e.to_string())
        };
        match outcome {
            Ok(()) => {
                next_seq = new_seq;
                last_hash = new_hash;
                let _ = seq_tx.send(next_seq - 1);
                // Callers first, so a request is answered before its notice wakes a poller.
                for f in finishers {
                    f(Ok(()));
                }
                for n in notices {
                    hooks.notices.publish(n);
                }
                if deadline_added {
                    hooks.deadlines.notify_one();
                }
            }
            Err(msg) => {
                tracing::error!(error = %msg, "write batch aborted; every request in it fails");
                for f in finishers {
                    f(Err(StoreError::Db(msg.clone())));
                }
            }
        }
    }
}
