//! Wake-ups between daemons on one PostgreSQL database: after each committed batch the writer
//! sends its notices (lease and approval changes, announcements, "a deadline was added") in
//! one `pg_notify` per batch — not per transaction, which costs half the throughput — and every
//! daemon's listener republishes what the others sent on its own notice stream, so a long-poll
//! on daemon A wakes when daemon B commits the vote. A notification sent while a listener is
//! reconnecting is lost: long-polls on PostgreSQL also re-read their lease every second.

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::pg::PgBackend;
use crate::notice::{Notice, Notices};

/// The LISTEN channel.
pub const CHANNEL: &str = "latchkey_notices";

/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_000;

/// One notification: who sent it and what happened.
#[derive(Serialize, Deserialize)]
struct Batch {
    /// The sending daemon (its own notifications come back to it and are skipped).
    from: String,
    /// Notices of the batch.
    notices: Vec<Notice>,
    /// The batch queued a deadline (wakes the deadline worker wherever it runs).
    #[serde(default)]
    deadline: bool,
    /// The keyring kept in the database changed (a key rotation): read it again.
    #[serde(default)]
    keyring: bool,
    /// The highest audit seq the batch committed (webhook workers look for new events).
    #[serde(default)]
    seq: u64,
}

/// Sends a committed batch's notices to the other daemons (several notifications when they
/// do not fit in one). Failures are logged: the other daemons' polling fallback covers them.
pub fn send(pg: &PgBackend, daemon: &str, notices: &[Notice], deadline: bool, seq: u64) {
    let mut chunks: Vec<Vec<Notice>> = vec![Vec::new()];
    let mut size = 0;
    for n in notices {
        let len = serde_json::to_vec(n).map_or(0, |v| v.len());
        if size + len > MAX_PAYLOAD && chunks.last().is_some_and(|c| !c.is_empty()) {
            chunks.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(last) = chunks.last_mut() {
            last.push(n.clone());
        }
    }
    for (i, chunk) in chunks.into_iter().enumerate() {
        let batch = Batch {
            from: daemon.to_string(),
            notices: chunk,
            deadline: deadline && i == 0,
            keyring: false,
            seq,
        };
        let Ok(payload) = serde_json::to_string(&batch) else {
            continue;
        };
        if payload.len() >= 8000 {
            tracing::warn!("a notice too large to pass to the other daemons was dropped");
            continue;
        }
        if let Err(e) = pg.notify(CHANNEL, &payload) {
            tracing::warn!(error = %e, "could not wake the other daemons");
        }
    }
}

/// Tells the other daemons that the keyring in the database changed.
pub fn send_keyring_changed(pg: &PgBackend, daemon: &str) {
    let batch = Batch {
        from: daemon.to_string(),
        notices: Vec::new(),
        deadline: false,
        keyring: true,
        seq: 0,
    };
    if let Ok(payload) = serde_json::to_string(&batch)
        && let Err(e) = pg.notify(CHANNEL, &payload)
    {
        tracing::warn!(error = %e, "could not tell the other daemons of the new key");
    }
}

/// Starts republishing the other daemons' notices on `notices` (a thread of its own: the
/// backend's listener reconnects by itself); `reload_keyring` runs when another daemon
/// changed the keyring.
pub fn start_listener(
    pg: &PgBackend,
    daemon: String,
    notices: Notices,
    deadlines: std::sync::Arc<Notify>,
    committed: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    reload_keyring: Box<dyn Fn() + Send>,
) {
    let mut rx = pg.listen(CHANNEL);
    let spawned = std::thread::Builder::new()
        .name("latchkey-notices".into())
        .spawn(move || {
            loop {
                let payload = match rx.blocking_recv() {
                    Ok(p) => p,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Ok(batch) = serde_json::from_str::<Batch>(&payload) else {
                    tracing::warn!("an unreadable notification from another daemon");
                    continue;
                };
                if batch.from == daemon {
                    continue;
                }
                for n in batch.notices {
                    notices.publish_remote(n);
                }
                if batch.deadline {
                    deadlines.notify_one();
                }
                if batch.keyring {
                    reload_keyring();
                }
                committed.send_if_modified(|v| {
                    let moved = batch.seq > *v;
                    *v = (*v).max(batch.seq);
                    moved
                });
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the notice listener");
    }
}
