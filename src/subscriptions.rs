//! Audit webhooks in the daemon: one delivery worker (from the `webhooks` crate) per active
//! subscription, fed from the audit log through the store, woken by each commit. Started at
//! boot, restarted when a subscription changes, stopped (after saving progress) at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webhooks::deliver::{Destinations, Sender};
use webhooks::worker::{Feed, Outgoing, Record, Stop, Target, WorkerConfig};

use crate::audit::{Event, type_matches};
use crate::config::WebhooksConfig;
use crate::store::{DeliveryRecord, Store, WebhookRecord, WebhookStatus};

/// The JSON body of one event, as consumers receive it (never a value: audit events hold none).
pub fn payload(e: &Event) -> serde_json::Value {
    json!({
        "type": format!("audit.{}", e.event),
        "timestamp": e.timestamp,
        "data": {
            "event": e.event, "seq": e.seq, "id": e.id, "timestamp": e.timestamp,
            "actor_type": e.actor.kind, "actor_id": e.actor.id, "agent_id": e.actor.agent_id,
            "namespace": e.namespace, "resource_path": e.resource_path, "action": e.action,
            "outcome": e.outcome, "ip": e.ip, "details": e.details,
        }
    })
}

/// Does the subscription want this event?
pub fn wants(w: &WebhookRecord, e: &Event) -> bool {
    let kind = format!("audit.{}", e.event);
    let ns_ok = w
        .namespace
        .as_deref()
        .is_none_or(|ns| e.namespace == ns || e.namespace.starts_with(&format!("{ns}/")));
    ns_ok && w.events.iter().any(|p| type_matches(p, &kind))
}

/// The destination policy the configuration allows.
pub fn destinations(cfg: &WebhooksConfig) -> Destinations {
    Destinations {
        allow_loopback: cfg.allow_loopback,
        allow_private: cfg.allow_private,
    }
}

struct StoreFeed {
    store: Store,
    id: String,
    /// On PostgreSQL: did this daemon hold the subscription at the last look? When it takes
    /// the duty (again), another daemon may have delivered meanwhile: the next batch starts at
    /// the stored cursor instead of this worker's own.
    held: std::sync::atomic::AtomicBool,
    /// The duty was just taken: read the cursor from the store once.
    taken: std::sync::atomic::AtomicBool,
    /// The stored cursor this worker last read or wrote: its writes expect it still there.
    last: std::sync::atomic::AtomicU64,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Feed for StoreFeed {
    async fn target(&self) -> Result<Option<Target>, String> {
        // One daemon delivers each subscription (several on PostgreSQL take turns only when
        // the holder dies); the others wait and look again.
        let store = self.store.clone();
        let duty = format!("webhook:{}", self.id);
        let held = tokio::task::spawn_blocking(move || store.holds_duty(&duty))
            .await
            .unwrap_or(false);
        let was = self.held.swap(held, std::sync::atomic::Ordering::Relaxed);
        if !held {
            return Err("another daemon delivers this subscription".into());
        }
        if !was {
            self.taken.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(w) = self
            .store
            .get_webhook(&self.id)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        if w.status != WebhookStatus::Active {
            return Ok(None);
        }
        let secrets = self
            .store
            .webhook_secrets(&w, now_unix())
            .map_err(|e| e.to_string())?
            .iter()
            .map(|s| webhooks::Secret::from_bytes(s.expose_secret()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Target {
            url: w.url,
            secrets,
        }))
    }

    async fn next_batch(&self, after: u64, limit: usize) -> Result<(Vec<Outgoing>, u64), String> {
        // On PostgreSQL another daemon may have delivered while this one did not hold the
        // subscription: right after taking it, go on from the stored cursor.
        let after = if self.store.postgres().is_some()
            && self.taken.swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let stored = self
                .store
                .webhook_cursor(&self.id)
                .map_err(|e| e.to_string())?;
            self.last
                .store(stored, std::sync::atomic::Ordering::Relaxed);
            stored
        } else {
            after
        };
        let w = self
            .store
            .get_webhook(&self.id)
            .map_err(|e| e.to_string())?
            .ok_or("gone")?;
        let (events, last) = self
            .store
            .audit_events_after(after, 4096, limit, |e| wants(&w, e))
            .map_err(|e| e.to_string())?;
        let out = events
            .iter()
            .map(|e| {
                Ok(Outgoing {
                    seq: e.seq,
                    id: e.id.clone(),
                    body: serde_json::to_vec(&payload(e)).map_err(|e| e.to_string())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((out, last))
    }

    async fn save_progress(&self, cursor: u64, records: Vec<Record>) -> Result<(), String> {
        // Each attempt reaches here exactly once (the worker hands its records over).
        for r in &records {
            self.store.metrics().webhook_delivery(r.attempt.status);
        }
        let records = records.into_iter().map(to_delivery).collect();
        let expected = self.last.load(std::sync::atomic::Ordering::Relaxed);
        self.store
            .save_webhook_progress(self.id.clone(), Some(expected), cursor, records)
            .await
            .map_err(|e| e.to_string())?;
        self.last
            .store(cursor, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn stop(&self, why: Stop, last: Record) -> Result<(), String> {
        let (status, reason) = match why {
            Stop::Gone => (
                WebhookStatus::Disabled,
                "the consumer answered 410 Gone".to_string(),
            ),
            Stop::Failing => (
                WebhookStatus::Failing,
                format!(
                    "retries ran out at seq {}: {}",
                    last.seq,
                    last.attempt.error.clone().unwrap_or_default()
                ),
            ),
        };
        tracing::warn!(webhook = %self.id, %reason, "webhook delivery stopped");
        self.store.notices().publish(crate::notice::Notice::Announcement { path: None, text: format!("⚠️ Audit webhook {} stopped delivering: {reason}. Fix the consumer, then resume it with PATCH /v1/webhooks/{} {{\"paused\": false}}.", self.id, self.id) });
        self.store
            .stop_webhook(self.id.clone(), status, reason)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn to_delivery(r: Record) -> DeliveryRecord {
    DeliveryRecord {
        time: crate::util::now_rfc3339(),
        seq: r.seq,
        event_id: r.id,
        status: r.attempt.status,
        latency_ms: r.attempt.latency.as_millis() as u64,
        error: r.attempt.error,
        try_number: r.try_number,
    }
}

/// Running workers: subscription id → (stop signal, task).
type Workers = HashMap<String, (watch::Sender<bool>, JoinHandle<()>)>;

/// Runs one worker per active subscription.
#[derive(Clone)]
pub struct Manager {
    store: Store,
    sender: Sender,
    cfg: WorkerConfig,
    workers: Arc<Mutex<Workers>>,
}

impl Manager {
    /// A manager; call [`Manager::start_all`] to begin.
    pub fn new(store: Store, cfg: &WebhooksConfig) -> anyhow::Result<Manager> {
        let sender = Sender::new(
            Duration::from_secs(cfg.timeout_seconds),
            destinations(cfg),
            &format!("latchkey/{}", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|e| anyhow::anyhow!("webhook client: {e}"))?;
        let cfg = WorkerConfig {
            retry_for: Duration::from_secs(cfg.retry_for_seconds),
            min_backoff: Duration::from_millis(cfg.min_backoff_ms.max(1)),
            max_backoff: Duration::from_secs(cfg.max_backoff_seconds),
            batch: 256,
        };
        Ok(Manager {
            store,
            sender,
            cfg,
            workers: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Workers> {
        match self.workers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Starts a worker for every active subscription.
    pub fn start_all(&self) -> anyhow::Result<()> {
        for w in self.store.list_webhooks()? {
            self.restart(&w.id);
        }
        Ok(())
    }

    /// (Re)starts the worker of one subscription from its saved cursor; stops it when the
    /// subscription is gone or not active.
    pub fn restart(&self, id: &str) {
        let old = self.lock().remove(id);
        if let Some((stop, handle)) = old {
            let _ = stop.send(true);
            handle.abort();
        }
        let Ok(Some(w)) = self.store.get_webhook(id) else {
            return;
        };
        if w.status != WebhookStatus::Active {
            return;
        }
        let cursor = self.store.webhook_cursor(id).unwrap_or(0);
        let (stop_tx, stop_rx) = watch::channel(false);
        let feed = StoreFeed {
            store: self.store.clone(),
            id: id.to_string(),
            // The cursor just read is this worker's starting point (a replay has set it);
            // only a duty taken later, from another daemon, reads the stored one again.
            held: std::sync::atomic::AtomicBool::new(true),
            taken: std::sync::atomic::AtomicBool::new(false),
            last: std::sync::atomic::AtomicU64::new(cursor),
        };
        let handle = tokio::spawn(webhooks::worker::run(
            feed,
            self.sender.clone(),
            self.cfg.clone(),
            cursor,
            self.store.committed_seq(),
            stop_rx,
        ));
        self.lock().insert(id.to_string(), (stop_tx, handle));
    }

    /// Stops every worker, letting each finish the attempt in flight and save its progress.
    pub async fn shutdown(&self) {
        let all: Vec<_> = self.lock().drain().collect();
        // Every worker is told first, then awaited: they stop together (the caller bounds it).
        for (_, (stop, _)) in &all {
            let _ = stop.send(true);
        }
        for (_, (_, handle)) in all {
            let _ = handle.await;
        }
    }
}
