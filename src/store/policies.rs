//! Grants and approval-matrix overrides set through the API. Changes are audited
//! (`grant.created`, `grant.deleted`, `policy.set`, `policy.deleted`).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tables::{CARDS, GRANTS, POLICIES};
use super::{Origin, Store, StoreError, decode, encode};
use crate::audit::Draft;
use crate::policy::{Grant, Override};

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

impl Store {
    /// Stores a new grant.
    pub async fn create_grant(&self, grant: Grant, origin: Origin) -> Result<Grant, StoreError> {
        self.write(move |ctx| {
            ctx.txn.open_table(GRANTS)?.insert(grant.id.as_str(), encode(&grant)?.as_slice())?;
            let details = json!({"id": grant.id, "subject": grant.subject, "actions": grant.actions, "limits": grant.limits});
            ctx.audit(draft(&origin, "grant.created", &grant.pattern, details))?;
            Ok(grant)
        })
        .await
    }

    /// Removes a grant.
    pub async fn delete_grant(&self, id: String, origin: Origin) -> Result<Grant, StoreError> {
        self.write(move |ctx| {
            let grant: Grant = {
                let table = ctx.txn.open_table(GRANTS)?;
                let got = table.get(id.as_str())?;
                match got {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound(format!("no grant {id}"))),
                }
            };
            ctx.txn.open_table(GRANTS)?.remove(id.as_str())?;
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
        let txn = self.read()?;
        let table = txn.open_table(GRANTS)?;
        table.iter()?.map(|item| decode(item?.1.value())).collect()
    }

    /// Sets (creates or replaces) the override for a pattern.
    pub async fn set_policy(
        &self,
        policy: Override,
        origin: Origin,
    ) -> Result<Override, StoreError> {
        self.write(move |ctx| {
            ctx.txn
                .open_table(POLICIES)?
                .insert(policy.pattern.as_str(), encode(&policy)?.as_slice())?;
            let details = serde_json::to_value(&policy).unwrap_or_default();
            ctx.audit(draft(&origin, "policy.set", &policy.pattern, details))?;
            Ok(policy)
        })
        .await
    }

    /// Removes the override for a pattern.
    pub async fn delete_policy(&self, pattern: String, origin: Origin) -> Result<(), StoreError> {
        self.write(move |ctx| {
            if ctx
                .txn
                .open_table(POLICIES)?
                .remove(pattern.as_str())?
                .is_none()
            {
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
        let txn = self.read()?;
        let table = txn.open_table(POLICIES)?;
        table.iter()?.map(|item| decode(item?.1.value())).collect()
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
            let mut all: Vec<CardRef> = {
                let t = ctx.txn.open_table(CARDS)?;
                let got = t.get(approval_id.as_str())?;
                match got {
                    Some(v) => decode(v.value())?,
                    None => Vec::new(),
                }
            };
            all.extend(refs);
            ctx.txn
                .open_table(CARDS)?
                .insert(approval_id.as_str(), encode(&all)?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// Where an approval's cards are.
    pub fn card_refs(&self, approval_id: &str) -> Result<Vec<CardRef>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(CARDS)?;
        let got = t.get(approval_id)?;
        Ok(got
            .map(|v| decode(v.value()))
            .transpose()?
            .unwrap_or_default())
    }
}
