//! Secret writes: versioned, encrypted create and update, rollback, soft delete and restore.
//! Each write appends its audit event in the same transaction.

use serde_json::json;

use super::keys::Key;
use super::kv::Table;
use super::secrets::{SecretRecord, VERSIONS, VersionRecord, live, load, save};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::audit::Draft;
use crate::crypto::{self, Binding, SecretValue};
use crate::paths;

/// A create-or-update request. Absent fields keep their stored value on update.
pub struct PutSecret {
    /// Full path (validated by the caller).
    pub path: String,
    /// The new value; absent means a metadata-only update.
    pub value: Option<SecretValue>,
    /// Type.
    pub secret_type: Option<String>,
    /// Sensitivity.
    pub sensitivity: Option<String>,
    /// Metadata (replaces the stored object).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Read limit.
    pub max_access_count: Option<u64>,
    /// Check-and-set: the version the caller last saw (0 = must not exist).
    pub if_version: Option<u64>,
}

fn write_version(
    ctx: &WriteCtx<'_>,
    rec: &SecretRecord,
    version: u64,
    plain: &[u8],
    by: &str,
    source: Option<String>,
    keyring: &crypto::Keyring,
) -> Result<(), StoreError> {
    let binding = Binding {
        namespace: &rec.namespace,
        path: &rec.path,
        version,
    };
    let sealed = crypto::seal(keyring, binding, plain);
    let v = VersionRecord {
        version,
        created_at: crate::util::rfc3339(ctx.now()),
        created_by: by.to_string(),
        source,
        sealed,
    };
    VERSIONS.put(&mut ctx.kv(), &(rec.path.as_str(), version), &v)
}

fn draft(
    origin: &Origin,
    event: &'static str,
    rec: &SecretRecord,
    details: serde_json::Value,
) -> Draft {
    Draft {
        event,
        actor: origin.actor.clone(),
        namespace: rec.namespace.clone(),
        resource_path: rec.path.clone(),
        action: "write".into(),
        outcome: "success",
        ip: origin.ip.clone(),
        details,
    }
}

impl Store {
    /// Creates or updates a secret; a value makes a new version. Also says whether it was created.
    pub async fn put_secret(
        &self,
        req: PutSecret,
        origin: Origin,
    ) -> Result<(SecretRecord, bool), StoreError> {
        let keyring = self.keyring();
        let reads = vec![(Table::Secrets, req.path.as_str().encode())];
        self.write_reading(reads, move |ctx| {
            let existing = load(&ctx.kv(), &req.path)?;
            if let Some(rec) = &existing
                && rec.deleted_at.is_some()
            {
                return Err(StoreError::Deleted(format!(
                    "the secret at {} is deleted; restore it first",
                    req.path
                )));
            }
            let current = existing.as_ref().map_or(0, |r| r.current_version);
            if let Some(expected) = req.if_version
                && expected != current
            {
                return Err(StoreError::VersionConflict { expected, current });
            }
            let now = crate::util::rfc3339(ctx.now());
            let by = origin.actor.id.clone();
            let created = existing.is_none();
            let mut rec = match existing {
                Some(r) => r,
                None => {
                    if req.value.is_none() {
                        return Err(StoreError::Invalid(
                            "a value is required to create a secret".into(),
                        ));
                    }
                    SecretRecord {
                        path: req.path.clone(),
                        namespace: paths::namespace_of(&req.path).to_string(),
                        secret_type: "api_key".into(),
                        sensitivity: "standard".into(),
                        metadata: Default::default(),
                        expires_at: None,
                        max_access_count: None,
                        access_count: 0,
                        current_version: 0,
                        latest_version: 0,
                        created_at: now.clone(),
                        created_by: by.clone(),
                        updated_at: now.clone(),
                        deleted_at: None,
                        expired_at: None,
                    }
                }
            };
            // `changed` names only the fields whose value changed (a field sent unchanged is not
            // news); a new value is always a change (a new version).
            let mut changed = Vec::new();
            if let Some(t) = req.secret_type.clone()
                && t != rec.secret_type
            {
                rec.secret_type = t;
                changed.push("secret_type");
            }
            if let Some(s) = req.sensitivity.clone()
                && s != rec.sensitivity
            {
                rec.sensitivity = s;
                changed.push("sensitivity");
            }
            if let Some(m) = req.metadata.clone()
                && m != rec.metadata
            {
                rec.metadata = m;
                changed.push("metadata");
            }
            if let Some(e) = req.expires_at.clone()
                && rec.expires_at.as_ref() != Some(&e)
            {
                rec.expires_at = Some(e);
                rec.expired_at = None;
                changed.push("expires_at");
            }
            if let Some(m) = req.max_access_count
                && rec.max_access_count != Some(m)
            {
                rec.max_access_count = Some(m);
                changed.push("max_access_count");
            }
            if let Some(value) = &req.value {
                use secrecy::ExposeSecret;
                let version = rec.latest_version + 1;
                write_version(
                    ctx,
                    &rec,
                    version,
                    value.expose_secret(),
                    &by,
                    None,
                    &keyring,
                )?;
                rec.latest_version = version;
                rec.current_version = version;
                changed.push("value");
            }
            rec.updated_at = now;
            save(&mut ctx.kv(), &rec)?;
            let event = if created {
                "secret.created"
            } else {
                "secret.updated"
            };
            let details = json!({
                "version": rec.current_version,
                "secret_type": rec.secret_type,
                "sensitivity": rec.sensitivity,
                "changed": changed,
            });
            ctx.audit(draft(&origin, event, &rec, details))?;
            Ok((rec, created))
        })
        .await
    }

    /// Makes an old version's value current again, as a new version.
    pub async fn rollback_secret(
        &self,
        path: String,
        to: u64,
        if_version: Option<u64>,
        origin: Origin,
    ) -> Result<SecretRecord, StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let mut rec = live(load(&ctx.kv(), &path)?, &path)?;
            if let Some(expected) = if_version
                && expected != rec.current_version
            {
                return Err(StoreError::VersionConflict {
                    expected,
                    current: rec.current_version,
                });
            }
            let old: VersionRecord = VERSIONS
                .get(&ctx.kv(), &(path.as_str(), to))?
                .ok_or_else(|| StoreError::NotFound(format!("{path} has no version {to}")))?;
            let binding = Binding {
                namespace: &rec.namespace,
                path: &rec.path,
                version: to,
            };
            let plain = crypto::open(&keyring, binding, &old.sealed)?;
            let version = rec.latest_version + 1;
            let from = rec.current_version;
            use secrecy::ExposeSecret;
            write_version(
                ctx,
                &rec,
                version,
                plain.expose_secret(),
                &origin.actor.id,
                Some(format!("rollback to version {to}")),
                &keyring,
            )?;
            rec.latest_version = version;
            rec.current_version = version;
            rec.updated_at = crate::util::rfc3339(ctx.now());
            save(&mut ctx.kv(), &rec)?;
            ctx.audit(draft(
                &origin,
                "secret.rolled_back",
                &rec,
                json!({"from_version": from, "to_version": to, "new_version": version}),
            ))?;
            Ok(rec)
        })
        .await
    }

    /// Soft-deletes a secret; its versions are kept for restore.
    pub async fn delete_secret(
        &self,
        path: String,
        origin: Origin,
    ) -> Result<SecretRecord, StoreError> {
        self.write(move |ctx| {
            let mut rec = live(load(&ctx.kv(), &path)?, &path)?;
            let now = crate::util::rfc3339(ctx.now());
            rec.deleted_at = Some(now.clone());
            rec.updated_at = now;
            save(&mut ctx.kv(), &rec)?;
            ctx.audit(draft(
                &origin,
                "secret.deleted",
                &rec,
                json!({"version": rec.current_version}),
            ))?;
            Ok(rec)
        })
        .await
    }

    /// Restores a soft-deleted secret.
    pub async fn restore_secret(
        &self,
        path: String,
        origin: Origin,
    ) -> Result<SecretRecord, StoreError> {
        self.write(move |ctx| {
            let mut rec = load(&ctx.kv(), &path)?
                .ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
            if rec.deleted_at.is_none() {
                return Err(StoreError::Conflict(format!(
                    "the secret at {path} is not deleted"
                )));
            }
            rec.deleted_at = None;
            rec.updated_at = crate::util::rfc3339(ctx.now());
            save(&mut ctx.kv(), &rec)?;
            ctx.audit(draft(
                &origin,
                "secret.restored",
                &rec,
                json!({"version": rec.current_version}),
            ))?;
            Ok(rec)
        })
        .await
    }
}
