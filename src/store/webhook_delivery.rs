//! Delivery state of webhook subscriptions: the cursor into the audit log (moved by replay
//! and by delivery progress), the delivery log, stopping a subscription that cannot be
//! delivered to, and the audit events to deliver next.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::subscriptions::{WebhookRecord, WebhookStatus, audit, load, save};
use super::tables::{AUDIT, WEBHOOK_CURSORS, WEBHOOK_DELIVERIES};
use super::{Origin, Store, StoreError, decode, encode};
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
            ctx.txn
                .open_table(WEBHOOK_CURSORS)?
                .insert(id.as_str(), after)?;
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
    pub async fn save_webhook_progress(
        &self,
        id: String,
        cursor: u64,
        records: Vec<DeliveryRecord>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            if super::subscriptions::WEBHOOKS
                .get(&ctx.kv(), id.as_str())?
                .is_none()
            {
                return Ok(());
            }
            ctx.txn
                .open_table(WEBHOOK_CURSORS)?
                .insert(id.as_str(), cursor)?;
            let mut log = ctx.txn.open_table(WEBHOOK_DELIVERIES)?;
            let mut next = log
                .range((id.as_str(), 0u64)..=(id.as_str(), u64::MAX))?
                .next_back()
                .transpose()?
                .map_or(0, |(k, _)| k.value().1 + 1);
            for r in records {
                log.insert((id.as_str(), next), encode(&r)?.as_slice())?;
                next += 1;
            }
            // Keep the newest 1,000 attempts.
            if next > 1000 {
                log.retain_in((id.as_str(), 0u64)..(id.as_str(), next - 1000), |_, _| {
                    false
                })?;
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
        let txn = self.read()?;
        let t = txn.open_table(WEBHOOK_CURSORS)?;
        Ok(t.get(id)?.map_or(0, |v| v.value()))
    }

    /// The newest delivery attempts, newest first.
    pub fn list_deliveries(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(WEBHOOK_DELIVERIES)?;
        let mut out = Vec::new();
        for item in t.range((id, 0u64)..=(id, u64::MAX))?.rev().take(limit) {
            out.push(decode(item?.1.value())?);
        }
        Ok(out)
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
        let txn = self.read()?;
        let t = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        let mut last = after;
        for item in t.range(after.saturating_add(1)..)?.take(scan) {
            let (k, v) = item?;
            let e: Event = decode(v.value())?;
            last = k.value();
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
