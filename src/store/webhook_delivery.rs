//! Delivery state of webhook subscriptions: the cursor into the audit log (moved by replay
//! and by delivery progress), the delivery log, stopping a subscription that cannot be
//! delivered to, and the audit events to deliver next.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit_log::AUDIT;
use super::keys::{Key, Reader, tuple_prefix};
use super::kv::{Records, Table};
use super::subscriptions::{WebhookRecord, WebhookStatus, audit, load, save};
use super::{Origin, Store, StoreError};
use crate::audit::Event;

/// One delivery attempt, as logged.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    /// When (RFC 3339).
    pub time: String,
    /// The event's seq.
    pub seq: u64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// HTTP status, if one came back.
    pub status: Option<u16>,
    /// Latency in milliseconds.
    pub latency_ms: u64,
    /// Error, for failures.
    pub error: Option<String>,
    /// Which try (1 = first).
    pub try_number: u32,
}

/// Each subscription's cursor: the last audit seq delivered or skipped.
pub(super) const WEBHOOK_CURSORS: Records<u64> = Records::new(Table::WebhookCursors);
/// Delivery attempts by (subscription id, counter).
pub(super) const WEBHOOK_DELIVERIES: Records<DeliveryRecord> =
    Records::new(Table::WebhookDeliveries);

impl Store {
    /// Moves the cursor so delivery restarts after `after` (replay).
    pub async fn set_webhook_cursor(
        &self,
        id: String,
        after: u64,
        origin: Origin,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let w = load(ctx, &id)?;
            WEBHOOK_CURSORS.put(&mut ctx.kv(), id.as_str(), &after)?;
            audit(
                ctx,
                &origin,
                "webhook.replayed",
                &w,
                json!({"from_seq": after + 1}),
            )?;
            Ok(())
        })
        .await
    }

    /// Saves delivery progress (no audit event: deliveries are not audit events).
    /// With `expected`, the stored cursor must still be that (the one this worker started
    /// from): a replay that moved it meanwhile wins over a worker it replaced, whose write may
    /// still be in the queue (`Conflict`, nothing written).
    pub async fn save_webhook_progress(
        &self,
        id: String,
        expected: Option<u64>,
        cursor: u64,
        records: Vec<DeliveryRecord>,
    ) -> Result<(), StoreError> {
        // On PostgreSQL only the daemon holding the subscription's duty may move its cursor:
        // a daemon that lost it (paused, cut off) cannot commit stale progress.
        let duty = format!("webhook:{id}");
        let fence = self.fence_of(&duty);
        let store = self.clone();
        self.write(move |ctx| {
            store.check_fence(ctx, &duty, fence)?;
            if super::subscriptions::WEBHOOKS
                .get(&ctx.kv(), id.as_str())?
                .is_none()
            {
                return Ok(());
            }
            if let Some(expected) = expected {
                let stored = WEBHOOK_CURSORS.get(&ctx.kv(), id.as_str())?.unwrap_or(0);
                if stored != expected {
                    return Err(StoreError::Conflict(format!(
                        "the cursor of webhook {id} moved to {stored} (a replay): this worker's progress from {expected} is dropped"
                    )));
                }
            }
            let mut tx = ctx.kv();
            WEBHOOK_CURSORS.put(&mut tx, id.as_str(), &cursor)?;
            let mut next = WEBHOOK_DELIVERIES
                .prefixed(&tx, &tuple_prefix(id.as_str()), true, 1)?
                .first()
                .and_then(|(k, _)| {
                    let mut key = Reader::new(k);
                    key.string()?;
                    key.u64()
                })
                .map_or(0, |n| n + 1);
            for r in &records {
                WEBHOOK_DELIVERIES.put(&mut tx, &(id.as_str(), next), r)?;
                next += 1;
            }
            // Keep the newest 1,000 attempts.
            if next > 1000 {
                let start = tuple_prefix(id.as_str());
                let end = (id.as_str(), next - 1000).encode();
                WEBHOOK_DELIVERIES.delete_range(
                    &mut tx,
                    Bound::Included(start.as_slice()),
                    Bound::Excluded(end.as_slice()),
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Marks a subscription disabled (410) or failing (retries ran out).
    pub async fn stop_webhook(
        &self,
        id: String,
        status: WebhookStatus,
        reason: String,
    ) -> Result<WebhookRecord, StoreError> {
        self.write(move |ctx| {
            let mut w = load(ctx, &id)?;
            w.status = status;
            w.status_reason = Some(reason.clone());
            save(ctx, &w)?;
            let event = if status == WebhookStatus::Disabled {
                "webhook.disabled"
            } else {
                "webhook.failing"
            };
            audit(ctx, &Origin::system(), event, &w, json!({"reason": reason}))?;
            Ok(w)
        })
        .await
    }

    /// A subscription's cursor (the last seq delivered or skipped).
    pub fn webhook_cursor(&self, id: &str) -> Result<u64, StoreError> {
        Ok(WEBHOOK_CURSORS.get(&self.kv_read()?, id)?.unwrap_or(0))
    }

    /// The newest delivery attempts, newest first.
    pub fn list_deliveries(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(WEBHOOK_DELIVERIES
            .prefixed(&self.kv_read()?, &tuple_prefix(id), true, limit)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// Audit events after `after` (at most `scan` examined) that `keep` selects; also returns
    /// the highest seq examined.
    pub fn audit_events_after(
        &self,
        after: u64,
        scan: usize,
        limit: usize,
        keep: impl Fn(&Event) -> bool,
    ) -> Result<(Vec<Event>, u64), StoreError> {
        let mut out = Vec::new();
        let mut last = after;
        let from = after.saturating_add(1).encode();
        let page = AUDIT.range(
            &self.kv_read()?,
            Bound::Included(from.as_slice()),
            Bound::Unbounded,
            false,
            scan,
        )?;
        for (_, e) in page {
            last = e.seq;
            if keep(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok((out, last))
    }
}
