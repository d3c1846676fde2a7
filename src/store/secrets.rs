//! Secret operations: versioned, encrypted writes, soft delete and restore, rollback,
//! listing, and the internal decrypt path. Each write appends its audit event in the
//! same transaction.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tables::{SECRETS, VERSIONS};
use super::{Origin, Store, StoreError, WriteCtx, decode, encode};
use crate::audit::Draft;
use crate::crypto::{self, Binding, Sealed, SecretValue};
use crate::paths;

/// A secret's stored description (never its value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Full path.
    pub path: String,
    /// Namespace the path belongs to.
    pub namespace: String,
    /// `api_key`, `password`, `env_bundle`, …
    pub secret_type: String,
    /// `standard`, `sensitive` or `critical`.
    pub sensitivity: String,
    /// Free-form JSON object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// After this time the secret can no longer be used.
    pub expires_at: Option<String>,
    /// How many reads are allowed in total.
    pub max_access_count: Option<u64>,
    /// How many reads happened.
    pub access_count: u64,
    /// The version reads return.
    pub current_version: u64,
    /// Highest version number written.
    pub latest_version: u64,
    /// Creation time.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// Last change.
    pub updated_at: String,
    /// Soft-deletion time.
    pub deleted_at: Option<String>,
    /// When the expire_secrets job found it past `expires_at`.
    #[serde(default)]
    pub expired_at: Option<String>,
}

/// One stored version: who wrote it and its sealed value.
#[derive(Serialize, Deserialize)]
pub(super) struct VersionRecord {
    pub(super) version: u64,
    pub(super) created_at: String,
    pub(super) created_by: String,
    pub(super) source: Option<String>,
    pub(super) sealed: Sealed,
}

/// One version, as listed (never the value).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// When it was written.
    pub created_at: String,
    /// Who wrote it.
    pub created_by: String,
    /// How it came to be, e.g. `rollback of version 2`.
    pub source: Option<String>,
    /// Which key-encryption key wraps its data key.
    pub kek_id: u32,
    /// Is it the current version?
    pub current: bool,
}

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

fn load(txn: &WriteTransaction, path: &str) -> Result<Option<SecretRecord>, StoreError> {
    let table = txn.open_table(SECRETS)?;
    let got = table.get(path)?;
    got.map(|v| decode(v.value())).transpose()
}

fn save(txn: &WriteTransaction, rec: &SecretRecord) -> Result<(), StoreError> {
    txn.open_table(SECRETS)?
        .insert(rec.path.as_str(), encode(rec)?.as_slice())?;
    Ok(())
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
    ctx.txn
        .open_table(VERSIONS)?
        .insert((rec.path.as_str(), version), encode(&v)?.as_slice())?;
    Ok(())
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

fn live(rec: Option<SecretRecord>, path: &str) -> Result<SecretRecord, StoreError> {
    let rec = rec.ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
    if rec.deleted_at.is_some() {
        return Err(StoreError::Deleted(format!(
            "the secret at {path} is deleted; restore it first"
        )));
    }
    Ok(rec)
}

impl Store {
    /// Creates or updates a secret; a value makes a new version. Also says whether it was created.
    pub async fn put_secret(
        &self,
        req: PutSecret,
        origin: Origin,
    ) -> Result<(SecretRecord, bool), StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let existing = load(ctx.txn, &req.path)?;
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
            let mut changed = Vec::new();
            if let Some(t) = req.secret_type {
                rec.secret_type = t;
                changed.push("secret_type");
            }
            if let Some(s) = req.sensitivity {
                rec.sensitivity = s;
                changed.push("sensitivity");
            }
            if let Some(m) = req.metadata {
                rec.metadata = m;
                changed.push("metadata");
            }
            if let Some(e) = req.expires_at {
                rec.expires_at = Some(e);
                rec.expired_at = None;
                changed.push("expires_at");
            }
            if let Some(m) = req.max_access_count {
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
            save(ctx.txn, &rec)?;
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

    /// A secret's record, deleted or not.
    pub fn get_secret(&self, path: &str) -> Result<Option<SecretRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(SECRETS)?;
        let got = table.get(path)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// Secrets whose path starts with `prefix`, in path order, after `after`, at most `limit`.
    pub fn list_secrets(
        &self,
        prefix: &str,
        after: Option<&str>,
        include_deleted: bool,
        limit: usize,
        mut keep: impl FnMut(&SecretRecord) -> bool,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(SECRETS)?;
        let mut out = Vec::new();
        let start = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        for item in table.range(start..)? {
            let (k, v) = item?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if Some(key) == after {
                continue;
            }
            let rec: SecretRecord = decode(v.value())?;
            if (include_deleted || rec.deleted_at.is_none()) && keep(&rec) {
                out.push(rec);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Every version of a secret, oldest first.
    pub fn list_versions(&self, path: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let rec = self
            .get_secret(path)?
            .ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
        let txn = self.read()?;
        let table = txn.open_table(VERSIONS)?;
        let mut out = Vec::new();
        for item in table.range((path, 0u64)..=(path, u64::MAX))? {
            let (_, v) = item?;
            let v: VersionRecord = decode(v.value())?;
            out.push(VersionInfo {
                version: v.version,
                created_at: v.created_at,
                created_by: v.created_by,
                source: v.source,
                kek_id: v.sealed.kek_id,
                current: v.version == rec.current_version,
            });
        }
        Ok(out)
    }

    /// Decrypts a version (the current one by default). Internal: no endpoint of the core
    /// returns values; leases use this path.
    pub fn read_value(&self, path: &str, version: Option<u64>) -> Result<SecretValue, StoreError> {
        let rec = live(self.get_secret(path)?, path)?;
        let version = version.unwrap_or(rec.current_version);
        let txn = self.read()?;
        let table = txn.open_table(VERSIONS)?;
        let got = table
            .get((path, version))?
            .ok_or_else(|| StoreError::NotFound(format!("{path} has no version {version}")))?;
        let v: VersionRecord = decode(got.value())?;
        let binding = Binding {
            namespace: &rec.namespace,
            path: &rec.path,
            version,
        };
        Ok(crypto::open(&self.keyring(), binding, &v.sealed)?)
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
            let mut rec = live(load(ctx.txn, &path)?, &path)?;
            if let Some(expected) = if_version
                && expected != rec.current_version
            {
                return Err(StoreError::VersionConflict {
                    expected,
                    current: rec.current_version,
                });
            }
            let old: VersionRecord = {
                let table = ctx.txn.open_table(VERSIONS)?;
                let got = table.get((path.as_str(), to))?;
                match got {
                    Some(v) => decode(v.value())?,
                    None => {
                        return Err(StoreError::NotFound(format!("{path} has no version {to}")));
                    }
                }
            };
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
            save(ctx.txn, &rec)?;
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
            let mut rec = live(load(ctx.txn, &path)?, &path)?;
            let now = crate::util::rfc3339(ctx.now());
            rec.deleted_at = Some(now.clone());
            rec.updated_at = now;
            save(ctx.txn, &rec)?;
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
            let mut rec = load(ctx.txn, &path)?
                .ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
            if rec.deleted_at.is_none() {
                return Err(StoreError::Conflict(format!(
                    "the secret at {path} is not deleted"
                )));
            }
            rec.deleted_at = None;
            rec.updated_at = crate::util::rfc3339(ctx.now());
            save(ctx.txn, &rec)?;
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

    /// Re-wraps every data key not yet under the newest KEK, in batches. Returns how many
    /// versions were re-wrapped.
    pub async fn rewrap_all(&self, origin: Origin) -> Result<u64, StoreError> {
        let keyring = self.keyring();
        let newest = keyring.newest().id;
        let mut total = 0u64;
        let mut after: Option<(String, u64)> = None;
        loop {
            let ring = keyring.clone();
            let start = after.clone();
            let (done, count, last) = self
                .write(move |ctx| {
                    let mut todo = Vec::new();
                    let mut last = None;
                    let mut exhausted = true;
                    {
                        let table = ctx.txn.open_table(VERSIONS)?;
                        let iter = match &start {
                            Some((p, v)) => table.range((p.as_str(), *v)..)?,
                            None => table.range::<(&str, u64)>(..)?,
                        };
                        let mut scanned = 0;
                        for item in iter {
                            let (k, v) = item?;
                            let (p, ver) = k.value();
                            if start.as_ref().is_some_and(|(sp, sv)| sp == p && *sv == ver) {
                                continue;
                            }
                            if scanned == 512 {
                                exhausted = false;
                                break;
                            }
                            scanned += 1;
                            last = Some((p.to_string(), ver));
                            let rec: VersionRecord = decode(v.value())?;
                            if rec.sealed.kek_id != ring.newest().id {
                                todo.push((p.to_string(), rec));
                            }
                        }
                    }
                    let mut count = 0u64;
                    for (path, mut v) in todo {
                        let ns = match load(ctx.txn, &path)? {
                            Some(r) => r.namespace,
                            None => paths::namespace_of(&path).to_string(),
                        };
                        let binding = Binding {
                            namespace: &ns,
                            path: &path,
                            version: v.version,
                        };
                        if let Some(new) = crypto::rewrap(&ring, binding, &v.sealed)? {
                            v.sealed = new;
                            ctx.txn
                                .open_table(VERSIONS)?
                                .insert((path.as_str(), v.version), encode(&v)?.as_slice())?;
                            count += 1;
                        }
                    }
                    Ok((exhausted, count, last))
                })
                .await?;
            total += count;
            if done {
                break;
            }
            after = last;
        }
        self.write(move |ctx| {
            ctx.audit(Draft {
                event: "keys.rewrapped",
                actor: origin.actor.clone(),
                namespace: String::new(),
                resource_path: "keyring".into(),
                action: "rewrap".into(),
                outcome: "success",
                ip: origin.ip.clone(),
                details: json!({"rewrapped": total, "kek_id": newest}),
            })
        })
        .await?;
        Ok(total)
    }
}
