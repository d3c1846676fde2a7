//! The deadline worker: sleeps until the earliest queued deadline (approvals and active
//! leases, persisted in redb), applies what is due, and is woken early when a commit adds a
//! deadline. At start it applies every deadline that passed while the daemon was down.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

/// Longest sleep between checks, so a clock jump is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true.
pub async fn run(store: Store, mut shutdown: watch::Receiver<bool>) {
    let wake = store.deadline_wake();
    loop {
        // Apply everything due (in batches of 512 per transaction).
        loop {
            match store.apply_due_deadlines().await {
                Ok(n) if n >= 512 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "applying deadlines failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        let sleep = match store.next_deadline() {
            Ok(Some(at)) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                // Deadlines are whole seconds: a deadline at T is due from T.
                Duration::from_secs(u64::try_from(at - now).unwrap_or(0)).min(MAX_SLEEP)
            }
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::error!(error = %e, "reading the deadline queue failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
