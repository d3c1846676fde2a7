//! Grants and approval-matrix overrides set through the API. Changes are audited
//! (`grant.created`, `grant.deleted`, `policy.set`, `policy.deleted`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::kv::{Records, Table};
use super::leases::{add_deadline, remove_deadline};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::audit::Draft;
use crate::policy::{Grant, Override};

/// Grants by id.
const GRANTS: Records<Grant> = Records::new(Table::Grants);
/// Approval-matrix overrides set through the API, by pattern.
const POLICIES: Records<Override> = Records::new(Table::Policies);
/// Where each approval's cards were posted, by approval id.
const CARDS: Records<Vec<CardRef>> = Records::new(Table::Cards);

fn draft(
    origin: &Origin,
    event: &'static str,
    resource: &str,
    details: serde_json::Value,
) -> Draft {
    Draft {
        event,
        actor: origin.actor.clone(),
        namespace: crate::paths::namespace_of(resource.trim_start_matches('/')).to_string(),
        resource_path: resource.to_string(),
        action: "admin".into(),
        outcome: "success",
        ip: origin.ip.clone(),
        details,
    }
}

/// A time-bound grant's deadline came: audit `grant.expired` (it stopped applying at that
/// moment already; the grant stays listed, marked by its `expires_at`).
pub(super) fn grant_expired(ctx: &mut WriteCtx<'_>, id: &str) -> Result<(), StoreError> {
    if let Some(g) = GRANTS.get(&ctx.kv(), id)? {
        let details = json!({"id": g.id, "subject": g.subject, "actions": g.actions, "expires_at": g.expires_at});
        ctx.audit(draft(
            &Origin::system(),
            "grant.expired",
            &g.pattern,
            details,
        ))?;
    }
    Ok(())
}

impl Store {
    /// Grants that still apply now (time-bound ones past their expiry are left out).
    pub fn live_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut grants = self.list_grants()?;
        grants.retain(|g| g.is_live(now));
        Ok(grants)
    }

    /// Stores a new grant.
    pub async fn create_grant(&self, grant: Grant, origin: Origin) -> Result<Grant, StoreError> {
        self.write(move |ctx| {
            // A replaced time-bound grant takes its expiry deadline with it.
            let old = GRANTS.get(&ctx.kv(), grant.id.as_str())?;
            if let Some(at) = old.and_then(|g| g.expires_unix()) {
                remove_deadline(ctx, at, &format!("grant:{}", grant.id))?;
            }
            if let Some(at) = grant.expires_unix() {
                add_deadline(ctx, at, &format!("grant:{}", grant.id))?;
            }
            GRANTS.put(&mut ctx.kv(), grant.id.as_str(), &grant)?;
            let details = json!({"id": grant.id, "subject": grant.subject, "actions": grant.actions, "limits": grant.limits, "expires_at": grant.expires_at});
            ctx.audit(draft(&origin, "grant.created", &grant.pattern, details))?;
            Ok(grant.clone())
        })
        .await
    }

    /// Removes a grant.
    pub async fn delete_grant(&self, id: String, origin: Origin) -> Result<Grant, StoreError> {
        self.write(move |ctx| {
            let grant = GRANTS
                .get(&ctx.kv(), id.as_str())?
                .ok_or_else(|| StoreError::NotFound(format!("no grant {id}")))?;
            GRANTS.delete(&mut ctx.kv(), id.as_str())?;
            if let Some(at) = grant.expires_unix() {
                remove_deadline(ctx, at, &format!("grant:{id}"))?;
            }
            ctx.audit(draft(
                &origin,
                "grant.deleted",
                &grant.pattern,
                json!({"id": grant.id}),
            ))?;
            Ok(grant)
        })
        .await
    }

    /// Every grant.
    pub fn list_grants(&self) -> Result<Vec<Grant>, StoreError> {
        GRANTS.all(&self.kv_read()?)
    }

    /// Sets (creates or replaces) the override for a pattern.
    pub async fn set_policy(
        &self,
        policy: Override,
        origin: Origin,
    ) -> Result<Override, StoreError> {
        self.write(move |ctx| {
            POLICIES.put(&mut ctx.kv(), policy.pattern.as_str(), &policy)?;
            let details = serde_json::to_value(&policy).unwrap_or_default();
            ctx.audit(draft(&origin, "policy.set", &policy.pattern, details))?;
            Ok(policy.clone())
        })
        .await
    }

    /// Removes the override for a pattern.
    pub async fn delete_policy(&self, pattern: String, origin: Origin) -> Result<(), StoreError> {
        self.write(move |ctx| {
            if !POLICIES.delete(&mut ctx.kv(), pattern.as_str())? {
                return Err(StoreError::NotFound(format!(
                    "no approval policy for {pattern}"
                )));
            }
            ctx.audit(draft(&origin, "policy.deleted", &pattern, json!({})))?;
            Ok(())
        })
        .await
    }

    /// Overrides set through the API.
    pub fn list_policies(&self) -> Result<Vec<Override>, StoreError> {
        POLICIES.all(&self.kv_read()?)
    }
}

/// One posted card: which channel target shows it, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRef {
    /// The channel target (e.g. `telegram:-1001`).
    pub target: String,
    /// Chat or channel id.
    pub chat_id: String,
    /// Message id.
    pub message_id: String,
}

impl Store {
    /// Remembers where an approval's card was posted.
    pub async fn add_card_refs(
        &self,
        approval_id: String,
        refs: Vec<CardRef>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let mut all = CARDS
                .get(&ctx.kv(), approval_id.as_str())?
                .unwrap_or_default();
            all.extend(refs.iter().cloned());
            CARDS.put(&mut ctx.kv(), approval_id.as_str(), &all)?;
            Ok(())
        })
        .await
    }

    /// Where an approval's cards are.
    pub fn card_refs(&self, approval_id: &str) -> Result<Vec<CardRef>, StoreError> {
        Ok(CARDS
            .get(&self.kv_read()?, approval_id)?
            .unwrap_or_default())
    }
}
