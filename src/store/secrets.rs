//! Secrets as stored: the record, its sealed versions, and the reads (describe, list, list
//! versions, and the internal decrypt path). Writes are in `secret_writes`; re-wrapping the
//! data keys under a new KEK in `rewrap`.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::keys::{Key, Reader, tuple_prefix};
use super::kv::{ReadTxn, Records, Table, WriteTxn};
use super::{Store, StoreError};
use crate::crypto::{self, Binding, Sealed, SecretValue};

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

/// Secret records by full path.
pub(super) const SECRETS: Records<SecretRecord> = Records::new(Table::Secrets);
/// Sealed versions by (full path, version).
pub(super) const VERSIONS: Records<VersionRecord> = Records::new(Table::Versions);

pub(super) fn load(tx: &impl ReadTxn, path: &str) -> Result<Option<SecretRecord>, StoreError> {
    SECRETS.get(tx, path)
}

pub(super) fn save(tx: &mut impl WriteTxn, rec: &SecretRecord) -> Result<(), StoreError> {
    SECRETS.put(tx, rec.path.as_str(), rec)
}

pub(super) fn live(rec: Option<SecretRecord>, path: &str) -> Result<SecretRecord, StoreError> {
    let rec = rec.ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
    if rec.deleted_at.is_some() {
        return Err(StoreError::Deleted(format!(
            "the secret at {path} is deleted; restore it first"
        )));
    }
    Ok(rec)
}

impl Store {
    /// A secret's record, deleted or not.
    pub fn get_secret(&self, path: &str) -> Result<Option<SecretRecord>, StoreError> {
        SECRETS.get(&self.kv_read_latest()?, path)
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
        let txn = self.kv_read()?;
        let mut out = Vec::new();
        // A path's key is its UTF-8 (paths hold no NUL) and a terminator: the paths that start
        // with `prefix` are the keys that start with its bytes.
        let from = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.encode()),
            _ => Bound::Included(prefix.as_bytes().to_vec()),
        };
        SECRETS.scan(&txn, from, Bound::Unbounded, false, |k, rec| {
            let path = Reader::new(k).string().unwrap_or_default();
            if !path.starts_with(prefix) {
                return Ok(false);
            }
            if (include_deleted || rec.deleted_at.is_none()) && keep(&rec) {
                out.push(rec);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Every version of a secret, oldest first.
    pub fn list_versions(&self, path: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let rec = self
            .get_secret(path)?
            .ok_or_else(|| StoreError::NotFound(format!("no secret at {path}")))?;
        let txn = self.kv_read()?;
        let mut out = Vec::new();
        for (_, v) in VERSIONS.prefixed(&txn, &tuple_prefix(path), false, usize::MAX)? {
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
        let v = VERSIONS
            .get(&self.kv_read_latest()?, &(path, version))?
            .ok_or_else(|| StoreError::NotFound(format!("{path} has no version {version}")))?;
        let binding = Binding {
            namespace: &rec.namespace,
            path: &rec.path,
            version,
        };
        Ok(crypto::open(&self.keyring(), binding, &v.sealed)?)
    }
}
