//! Using a lease: one use of an active lease gives the secret's value (or the allowed
//! entries of an env_bundle), counts the access and writes its audit event, in one
//! transaction.

use secrecy::ExposeSecret;
use serde_json::json;

use super::leases::{LEASES, LeaseRecord, apply, get, lease_draft, put};
use super::secrets::{SECRETS, VERSIONS};
use super::{Origin, SecretRecord, Store, StoreError};
use crate::access::LeaseGate;
use crate::crypto::{self, Binding, SecretValue};
use crate::lease::{LeaseEvent, LeaseState};
use crate::scope::Action;

/// What a use of a lease gave.
pub enum ReadOutcome {
    /// The value (or the allowed entries of a bundle, as JSON).
    Value(SecretValue, Box<LeaseRecord>, String),
    /// The lease or secret has expired (the lease is now `expired`).
    Expired(String),
    /// The secret's `max_access_count` is spent.
    AccessLimit,
    /// The lease is not active (state given).
    NotActive(LeaseState),
}

/// Picks the allowed entries of an env_bundle value.
fn bundle_subset(plain: &[u8], keys: &[String]) -> Result<SecretValue, StoreError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(plain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let picked: serde_json::Map<String, serde_json::Value> =
        map.into_iter().filter(|(k, _)| keys.contains(k)).collect();
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(&picked).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    );
    Ok(SecretValue::from(bytes.to_vec()))
}

impl Store {
    /// Uses one use of an active read lease the gate admits: returns the value, counts the
    /// access, writes `secret.read` — all in one transaction, so a single use is given at
    /// most once.
    pub async fn use_lease(
        &self,
        gate: LeaseGate,
        lease_id: String,
        origin: Origin,
    ) -> Result<ReadOutcome, StoreError> {
        self.use_lease_for(gate, lease_id, origin, Action::Read, None, Vec::new())
            .await
    }

    /// Uses one use of an active lease for `action`: `read` audits `secret.read`; `proxy`
    /// (when `for_path` names the service's secret) audits `lease.used` before the credential
    /// leaves, and the proxy audits `secret.used` with the upstream's answer after.
    pub async fn use_lease_for(
        &self,
        gate: LeaseGate,
        lease_id: String,
        origin: Origin,
        action: Action,
        for_path: Option<String>,
        need_keys: Vec<String>,
    ) -> Result<ReadOutcome, StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let mut lease: LeaseRecord = get(ctx, LEASES, &lease_id, "lease")?;
            if !gate.admits(&lease) {
                return Err(StoreError::NotFound(format!("no lease {lease_id}")));
            }
            if for_path.as_ref().is_some_and(|p| *p != lease.path) {
                return Err(StoreError::Invalid("the lease is for another secret than the service uses".into()));
            }
            if lease.action != action && action == Action::Proxy {
                return Err(StoreError::Invalid("this lease is for reading, not for the proxy".into()));
            }
            if lease.action != action {
                return Err(StoreError::Invalid("this lease is for the proxy, not for reading the value".into()));
            }
            if lease.state != LeaseState::Active {
                return Ok(ReadOutcome::NotActive(lease.state));
            }
            let now = ctx.now_unix();
            if now >= lease.expires_at {
                apply(ctx, &mut lease, LeaseEvent::Expire, &origin, json!({"reason": "ttl"}))?;
                return Ok(ReadOutcome::Expired("the lease has expired".into()));
            }
            let mut secret: SecretRecord = SECRETS
                .get(&ctx.kv(), lease.path.as_str())?
                .ok_or_else(|| StoreError::NotFound(format!("no secret at {}", lease.path)))?;
            if secret.deleted_at.is_some() {
                return Err(StoreError::Deleted(format!("the secret at {} is deleted", lease.path)));
            }
            if secret.expires_at.as_deref().and_then(super::parse_query_time).is_some_and(|t| t.unix_timestamp() <= now) {
                return Ok(ReadOutcome::Expired("the secret has expired".into()));
            }
            if secret.max_access_count.is_some_and(|m| secret.access_count >= m) {
                return Ok(ReadOutcome::AccessLimit);
            }
            let version = secret.current_version;
            let sealed = VERSIONS
                .get(&ctx.kv(), &(lease.path.as_str(), version))?
                .ok_or_else(|| StoreError::Corrupt(format!("{} lacks version {version}", lease.path)))?
                .sealed;
            let plain = crypto::open(&keyring, Binding { namespace: &secret.namespace, path: &secret.path, version }, &sealed)?;
            let value = match &lease.keys {
                Some(keys) if secret.secret_type == "env_bundle" => bundle_subset(plain.expose_secret(), keys)?,
                _ => plain,
            };
            // A proxy service that injects bundle entries: refused before anything is counted
            // when the secret is no bundle or the lease leaves an entry out.
            if !need_keys.is_empty() {
                if secret.secret_type != "env_bundle" {
                    return Err(StoreError::Invalid(format!("the service injects entries of {}, which is not an env_bundle", lease.path)));
                }
                let given: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(value.expose_secret()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(k) = need_keys.iter().find(|k| !given.contains_key(k.as_str())) {
                    return Err(StoreError::Denied(format!("the lease does not give the entry {k} the service injects")));
                }
            }
            secret.access_count += 1;
            SECRETS.put(&mut ctx.kv(), secret.path.as_str(), &secret)?;
            lease.uses_left = lease.uses_left.saturating_sub(1);
            let read = json!({"lease_id": lease.id, "version": version, "access_count": secret.access_count, "keys": lease.keys, "uses_left": lease.uses_left});
            let event = if action == Action::Read { "secret.read" } else { "lease.used" };
            ctx.audit(lease_draft(&lease, event, &origin, read))?;
            let last = lease.uses_left == 0;
            if last {
                apply(ctx, &mut lease, LeaseEvent::Use { last }, &origin, json!({}))?;
            } else {
                put(ctx, LEASES, &lease.id, &lease)?;
            }
            let kind = secret.secret_type.clone();
            Ok(ReadOutcome::Value(value, Box::new(lease), kind))
        })
        .await
    }
}
