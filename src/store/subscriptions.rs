//! Webhook subscriptions: their records (URL, event patterns, namespace, signing secrets
//! sealed like every secret) and the operator's changes to them. Their delivery state
//! (cursors into the audit log, the delivery log) is in `webhook_delivery`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use std::ops::Bound;

use super::keys::{prefix_end, tuple_prefix};
use super::kv::{Records, Table};
use super::webhook_delivery::{WEBHOOK_CURSORS, WEBHOOK_DELIVERIES};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::audit::Draft;
use crate::crypto::{self, Binding, Sealed};

/// A signing secret as stored (sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSecret {
    /// Its number within the subscription (binds the ciphertext).
    pub n: u64,
    /// The sealed `whsec_` bytes.
    pub sealed: Sealed,
    /// When it was made (unix seconds).
    pub created_at: i64,
    /// After this it no longer signs (set when a newer secret replaces it).
    pub expires_at: Option<i64>,
}

/// Why a subscription does not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Delivering.
    Active,
    /// Paused by an operator.
    Paused,
    /// The consumer answered 410 Gone.
    Disabled,
    /// Retries ran out; unpause (PATCH `paused: false`) to resume.
    Failing,
}

/// A subscription.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookRecord {
    /// Id.
    pub id: String,
    /// Destination.
    pub url: String,
    /// Event patterns (`audit.*`, `audit.secret.read`, `audit.approval.*`).
    pub events: Vec<String>,
    /// Only events of this namespace (and below).
    pub namespace: Option<String>,
    /// Free text.
    pub description: String,
    /// Delivery status.
    pub status: WebhookStatus,
    /// Why it stopped, when it did.
    pub status_reason: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Sealed secrets, newest last.
    #[serde(default)]
    #[schema(ignore)]
    pub secrets: Vec<StoredSecret>,
}

fn binding(id: &str, n: u64) -> (String, String, u64) {
    ("webhooks".into(), format!("webhooks/{id}"), n)
}

/// Subscriptions by id.
pub(super) const WEBHOOKS: Records<WebhookRecord> = Records::new(Table::Webhooks);

pub(super) fn load(ctx: &WriteCtx<'_>, id: &str) -> Result<WebhookRecord, StoreError> {
    WEBHOOKS
        .get(&ctx.kv(), id)?
        .ok_or_else(|| StoreError::NotFound(format!("no webhook {id}")))
}

pub(super) fn save(ctx: &WriteCtx<'_>, w: &WebhookRecord) -> Result<(), StoreError> {
    WEBHOOKS.put(&mut ctx.kv(), w.id.as_str(), w)
}

pub(super) fn audit(
    ctx: &mut WriteCtx<'_>,
    origin: &Origin,
    event: &'static str,
    w: &WebhookRecord,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    ctx.audit(draft(origin, event, w, details))
}

fn draft(
    origin: &Origin,
    event: &'static str,
    w: &WebhookRecord,
    details: serde_json::Value,
) -> Draft {
    Draft {
        event,
        actor: origin.actor.clone(),
        namespace: w.namespace.clone().unwrap_or_default(),
        resource_path: format!("webhooks/{}", w.id),
        action: "admin".into(),
        outcome: "success",
        ip: origin.ip.clone(),
        details,
    }
}

fn seal_secret(
    keyring: &crypto::Keyring,
    id: &str,
    n: u64,
    secret: &[u8],
    now: i64,
) -> StoredSecret {
    let (ns, path, v) = binding(id, n);
    StoredSecret {
        n,
        sealed: crypto::seal(
            keyring,
            Binding {
                namespace: &ns,
                path: &path,
                version: v,
            },
            secret,
        ),
        created_at: now,
        expires_at: None,
    }
}

impl Store {
    /// Creates a subscription; its delivery starts at its own `webhook.created` event, or at
    /// `from_seq` (1 = the whole log) when given.
    pub async fn create_webhook(
        &self,
        w: WebhookRecord,
        secret: zeroize::Zeroizing<Vec<u8>>,
        from_seq: Option<u64>,
        origin: Origin,
    ) -> Result<WebhookRecord, StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let mut w = w.clone();
            w.secrets = vec![seal_secret(&keyring, &w.id, 1, &secret, ctx.now_unix())];
            save(ctx, &w)?;
            let details = json!({"url": w.url, "events": w.events, "namespace": w.namespace});
            // The creation event itself is the first one the subscription may see, unless the
            // caller asked for an earlier start: the cursor is set once the event has its seq.
            let id = w.id.clone();
            ctx.audit_then(
                draft(&origin, "webhook.created", &w, details),
                move |tx, seq| {
                    let start = from_seq.map_or(seq, |f| f.clamp(1, seq));
                    WEBHOOK_CURSORS.put(tx, id.as_str(), &(start - 1))
                },
            );
            Ok(w)
        })
        .await
    }

    /// Applies a change to a subscription (audited `webhook.updated` with the fields named).
    pub async fn update_webhook(
        &self,
        id: String,
        change: impl Fn(&mut WebhookRecord) -> Vec<&'static str> + Send + 'static,
        origin: Origin,
    ) -> Result<WebhookRecord, StoreError> {
        self.write(move |ctx| {
            let mut w = load(ctx, &id)?;
            let changed = change(&mut w);
            save(ctx, &w)?;
            audit(
                ctx,
                &origin,
                "webhook.updated",
                &w,
                json!({"changed": changed, "status": w.status}),
            )?;
            Ok(w)
        })
        .await
    }

    /// Deletes a subscription, its cursor and its delivery log.
    pub async fn delete_webhook(&self, id: String, origin: Origin) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let w = load(ctx, &id)?;
            WEBHOOKS.delete(&mut ctx.kv(), id.as_str())?;
            WEBHOOK_CURSORS.delete(&mut ctx.kv(), id.as_str())?;
            let start = tuple_prefix(id.as_str());
            let end = prefix_end(&start);
            WEBHOOK_DELIVERIES.delete_range(
                &mut ctx.kv(),
                Bound::Included(start.as_slice()),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
            )?;
            audit(ctx, &origin, "webhook.deleted", &w, json!({}))?;
            Ok(())
        })
        .await
    }

    /// Adds a new signing secret; the previous ones keep signing for `grace` seconds.
    pub async fn rotate_webhook_secret(
        &self,
        id: String,
        secret: zeroize::Zeroizing<Vec<u8>>,
        grace: i64,
        origin: Origin,
    ) -> Result<WebhookRecord, StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let mut w = load(ctx, &id)?;
            let now = ctx.now_unix();
            for s in w
                .secrets
                .iter_mut()
                .filter(|s| s.expires_at.is_none_or(|e| e > now + grace))
            {
                s.expires_at = Some(now + grace);
            }
            w.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
            let n = w.secrets.iter().map(|s| s.n).max().unwrap_or(0) + 1;
            w.secrets
                .push(seal_secret(&keyring, &w.id, n, &secret, now));
            save(ctx, &w)?;
            audit(
                ctx,
                &origin,
                "webhook.secret_rotated",
                &w,
                json!({"grace_seconds": grace, "signing_secrets": w.secrets.len()}),
            )?;
            Ok(w)
        })
        .await
    }

    /// A subscription.
    pub fn get_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        WEBHOOKS.get(&self.kv_read()?, id)
    }

    /// Every subscription.
    pub fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        WEBHOOKS.all(&self.kv_read()?)
    }

    /// The signing secrets of a subscription still valid at `now`, unsealed.
    pub fn webhook_secrets(
        &self,
        w: &WebhookRecord,
        now: i64,
    ) -> Result<Vec<crypto::SecretValue>, StoreError> {
        let keyring = self.keyring();
        let mut out = Vec::new();
        for s in w
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
        {
            let (ns, path, v) = binding(&w.id, s.n);
            out.push(crypto::open(
                &keyring,
                Binding {
                    namespace: &ns,
                    path: &path,
                    version: v,
                },
                &s.sealed,
            )?);
        }
        Ok(out)
    }
}
