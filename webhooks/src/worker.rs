//! The delivery worker of one subscription: reads events after its cursor from a [`Feed`]
//! (the daemon's audit log, filtered), delivers them in order, at least once, retrying each
//! with backoff until it is delivered, the consumer answers 410 Gone, or the retry window
//! closes; progress (cursor and attempts) is saved per batch, so a restart resumes from the
//! cursor and may deliver a few events twice (same `webhook-id`), never skip one.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;

use crate::deliver::{Attempt, Message, Sender, backoff};
use crate::sign::Secret;

/// An event ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its position in the source log.
    pub seq: u64,
    /// Its id: the `webhook-id`.
    pub id: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Where and how to send.
pub struct Target {
    /// Destination URL.
    pub url: String,
    /// Signing secrets (several during a rotation's grace period).
    pub secrets: Vec<Secret>,
}

/// One attempt, for the delivery log.
#[derive(Debug, Clone)]
pub struct Record {
    /// The event's seq.
    pub seq: u64,
    /// The event's id.
    pub id: String,
    /// What happened.
    pub attempt: Attempt,
    /// Which try this was (1 = first).
    pub try_number: u32,
}

/// Why the worker stopped delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The consumer answered 410 Gone: disable the subscription.
    Gone,
    /// The retry window closed: mark the subscription failing.
    Failing,
}

/// What the worker needs from its owner.
pub trait Feed: Send + Sync {
    /// The current destination and secrets; `None` when the subscription is gone.
    fn target(&self) -> impl Future<Output = Result<Option<Target>, String>> + Send;
    /// Up to `limit` matching events after `after`, and the highest seq examined.
    fn next_batch(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<Outgoing>, u64), String>> + Send;
    /// Saves the cursor and the attempts made since the last save.
    fn save_progress(
        &self,
        cursor: u64,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Records why delivery stopped.
    fn stop(&self, why: Stop, last: Record) -> impl Future<Output = Result<(), String>> + Send;
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long an event is retried before the subscription is marked failing.
    pub retry_for: Duration,
    /// Wait before the first retry (doubling after).
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Events read per batch.
    pub batch: usize,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Delivers until the subscription is gone or stopped, or `shutdown` turns true. `wake`
/// changes whenever new events may be available.
pub async fn run<F: Feed>(
    feed: F,
    sender: Sender,
    cfg: WorkerConfig,
    mut cursor: u64,
    mut wake: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let retry_pause = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let target = match feed.target().await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(_) => {
                if pause(&mut shutdown, retry_pause).await {
                    return;
                }
                continue;
            }
        };
        let (batch, scanned) = match feed.next_batch(cursor, cfg.batch).await {
            Ok(b) => b,
            Err(_) => {
                if pause(&mut shutdown, retry_pause).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if scanned > cursor {
                if feed.save_progress(scanned, Vec::new()).await.is_ok() {
                    cursor = scanned;
                }
                continue;
            }
            // Nothing new: wait for the log to grow (or a periodic look, or shutdown).
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let mut records = Vec::new();
        let mut target = target;
        for ev in &batch {
            let mut tries = 0u32;
            let mut first_failure: Option<Instant> = None;
            loop {
                tries += 1;
                // A hanging consumer must not hold up shutdown: the event is simply sent again
                // after the restart (at least once).
                let message = Message {
                    id: &ev.id,
                    body: &ev.body,
                };
                let attempt = tokio::select! {
                    a = sender.send(&target.url, &target.secrets, message, now_unix()) => a,
                    _ = shutdown.changed() => {
                        let _ = feed.save_progress(cursor, records).await;
                        return;
                    }
                };
                let record = Record {
                    seq: ev.seq,
                    id: ev.id.clone(),
                    attempt: attempt.clone(),
                    try_number: tries,
                };
                if attempt.delivered() {
                    records.push(record);
                    break;
                }
                // Persist progress up to the previous event, with this failure, before waiting.
                records.push(record.clone());
                let _ = feed
                    .save_progress(cursor, std::mem::take(&mut records))
                    .await;
                if attempt.gone() {
                    let _ = feed.stop(Stop::Gone, record).await;
                    return;
                }
                let since = *first_failure.get_or_insert_with(Instant::now);
                if since.elapsed() >= cfg.retry_for {
                    let _ = feed.stop(Stop::Failing, record).await;
                    return;
                }
                let wait = backoff(
                    tries,
                    cfg.min_backoff,
                    cfg.max_backoff,
                    rand::thread_rng().r#gen::<f64>(),
                );
                if pause(&mut shutdown, wait).await {
                    return;
                }
                // The subscription may have changed meanwhile (URL, rotated secret, deleted).
                match feed.target().await {
                    Ok(Some(t)) => target = t,
                    Ok(None) => return,
                    Err(_) => {}
                }
            }
            cursor = ev.seq;
        }
        cursor = cursor.max(scanned);
        let _ = feed.save_progress(cursor, records).await;
    }
}

/// Sleeps, or returns true at once when shutdown is asked for.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}
