//! The storage seam. Every read and write of persistent state goes through the domain-level
//! operations of [`Store`] (secrets, identities, the audit log), written once over the
//! transactional table seam ([`kv`]) that two backends implement: redb (one file, the
//! embedded default) and PostgreSQL (any number of daemons on one database; [`pg`]). Each
//! daemon has one writer thread that group-commits the writes that arrive together (see
//! [`writer`]). docs/STORAGE.md has the design.

mod agents;
mod approvals;
mod audit_append;
mod audit_log;
pub mod backend;
mod console;
mod credentials;
mod gauges;
mod housekeeping;
pub mod keys;
pub mod kv;
mod lease_end;
mod lease_use;
mod leases;
mod overview;
pub mod pg;
pub mod pg_cluster;
mod pg_listen;
mod pg_notices;
pub mod pg_open;
mod pg_overlay;
mod pg_schema;
#[cfg(test)]
mod pg_tests;
mod pg_txn;
mod policies;
mod rewrap;
mod secret_writes;
mod secrets;
mod services;
mod subscriptions;
pub(crate) mod tables;
mod tokens;
pub mod transfer;
mod webhook_delivery;
pub(crate) mod writer;

use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::Database;
use tokio::sync::{Notify, watch};

use crate::notice::Notices;

pub use agents::AgentRecord;
pub use approvals::{ApprovalRecord, VoteResult};
pub use audit_log::{AuditFilter, AuditPage, VerifyReport, parse_query_time};
pub use console::{ConsoleLink, ConsoleSession, ConsoleWho, NewSession};
pub use credentials::{AdminTokenInfo, Credential, CredentialKind};
pub use housekeeping::{Checkpoint, JobRun};
pub use lease_use::ReadOutcome;
pub use leases::{LeaseRecord, NewLease};
pub use policies::CardRef;
pub use secret_writes::PutSecret;
pub use secrets::{SecretRecord, VersionInfo};
pub use subscriptions::{StoredSecret, WebhookRecord, WebhookStatus};
pub use tokens::{RevokeTarget, TokenRecord};
pub use webhook_delivery::DeliveryRecord;
pub use writer::WriteCtx;

use crate::audit::Actor;
use crate::crypto::{CryptoError, Keyring};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "latchkey.redb";

/// Storage failures: domain outcomes first, then faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// Check-and-set failed.
    #[error("version conflict: expected {expected}, current {current}")]
    VersionConflict {
        /// What the caller expected.
        expected: u64,
        /// What is stored.
        current: u64,
    },
    /// The secret is soft-deleted.
    #[error("{0}")]
    Deleted(String),
    /// The record exists or is in a conflicting state.
    #[error("{0}")]
    Conflict(String),
    /// The request is not valid for the stored state.
    #[error("{0}")]
    Invalid(String),
    /// The caller's credential does not reach what it asked for.
    #[error("{0}")]
    Denied(String),
    /// The writer has stopped (shutting down).
    #[error("the store is shut down")]
    Closed,
    /// The backend cannot be reached or is restarting (503 `unavailable`; nothing was
    /// applied).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The backend asks the writer to run the batch again (a conflict between daemons).
    #[error("the database asked for the transaction to be retried")]
    Retry,
    /// Decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(String),
}

impl From<kv::KvError> for StoreError {
    fn from(e: kv::KvError) -> Self {
        match e {
            kv::KvError::Backend(m) | kv::KvError::Schema(m) => StoreError::Db(m),
            kv::KvError::Retry(_) => StoreError::Retry,
            kv::KvError::Unavailable(m) => StoreError::Unavailable(m),
        }
    }
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Who is acting and from where: recorded in every audit event a request causes.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The authenticated actor.
    pub actor: Actor,
    /// Client address.
    pub ip: Option<String>,
}

impl Origin {
    /// The daemon itself.
    pub fn system() -> Origin {
        Origin {
            actor: Actor::system(),
            ip: None,
        }
    }
}

/// Shared, swappable keyring (rotation replaces it).
pub type KeyringHandle = Arc<RwLock<Arc<Keyring>>>;

/// The store: a database (redb or PostgreSQL), its writer thread and the keyring.
#[derive(Clone)]
pub struct Store {
    backend: backend::Backend,
    writer: writer::Writer,
    keyring: KeyringHandle,
    committed: watch::Receiver<u64>,
    /// The duties this daemon holds (PostgreSQL), by name, with their fencing tokens.
    duties: Arc<std::sync::Mutex<std::collections::BTreeMap<String, i64>>>,
    hooks: writer::Hooks,
}

impl Store {
    /// Opens (creating if needed) the database in `dir` and starts the writer.
    pub fn open(
        dir: &Path,
        keyring: Keyring,
        max_batch: usize,
    ) -> Result<(Store, writer::WriterThread), StoreError> {
        let path = dir.join(DB_FILE);
        crate::util::make_private_file(&path)
            .map_err(|e| StoreError::Db(format!("{}: {e}", path.display())))?;
        let db = Arc::new(Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Db(format!(
                "another latchkey is using {}; stop it or use another --data-dir",
                dir.display()
            )),
            e => e.into(),
        })?);
        tables::ensure(&db)?;
        Store::start(backend::Backend::Redb(db), keyring, None, max_batch)
    }

    /// Starts the writer on an opened backend.
    fn start(
        backend: backend::Backend,
        keyring: Keyring,
        master: Option<zeroize::Zeroizing<[u8; 32]>>,
        max_batch: usize,
    ) -> Result<(Store, writer::WriterThread), StoreError> {
        let hooks = writer::Hooks {
            notices: Notices::new(4096),
            deadlines: Arc::new(Notify::new()),
            daemon: crate::util::new_id(),
            metrics: crate::metrics::Metrics::new(),
        };
        let (writer, thread, seq) = writer::spawn(backend.clone(), max_batch, hooks.clone())?;
        let committed = seq.subscribe();
        let keyring = Arc::new(RwLock::new(Arc::new(keyring)));
        if let (backend::Backend::Pg(pg), Some(master)) = (&backend, master) {
            // Weak: the listener thread must not keep the backend (its pool) alive.
            let (weak, ring) = (pg.downgrade(), keyring.clone());
            let reload = Box::new(move || {
                let Some(pg2) = weak.upgrade() else { return };
                match pg_open::load_keyring(&pg2, &master) {
                    Ok(Some(new)) => {
                        let mut guard = match ring.write() {
                            Ok(g) => g,
                            Err(poisoned) => poisoned.into_inner(),
                        };
                        *guard = Arc::new(new);
                        tracing::info!("the keyring changed on another daemon; reloaded");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot reload the keyring"),
                }
            });
            pg_notices::start_listener(
                pg,
                hooks.daemon.clone(),
                hooks.notices.clone(),
                hooks.deadlines.clone(),
                seq,
                reload,
            );
        }
        Ok((
            Store {
                backend,
                writer,
                keyring,
                committed,
                duties: Arc::default(),
                hooks,
            },
            thread,
        ))
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the keyring (after rotation).
    pub fn set_keyring(&self, ring: Keyring) {
        let mut guard = match self.keyring.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(ring);
    }

    /// The duties this daemon held at its last claim of each (PostgreSQL; none on redb).
    pub fn duties_held(&self) -> Vec<String> {
        match self.duties.lock() {
            Ok(d) => d.keys().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().keys().cloned().collect(),
        }
    }

    /// The fencing token of a duty this daemon holds.
    fn duty_fence(&self, name: &str) -> Option<i64> {
        match self.duties.lock() {
            Ok(d) => d.get(name).copied(),
            Err(poisoned) => poisoned.into_inner().get(name).copied(),
        }
    }

    fn note_duty_all_released(&self) {
        match self.duties.lock() {
            Ok(mut d) => d.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    fn note_duty(&self, name: &str, fence: Option<i64>) {
        let mut d = match self.duties.lock() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        match fence {
            Some(f) => {
                d.insert(name.to_string(), f);
            }
            None => {
                d.remove(name);
            }
        }
    }

    /// This daemon's id (distinct for each daemon on one PostgreSQL database).
    pub fn daemon_id(&self) -> &str {
        &self.hooks.daemon
    }

    /// The notice stream (published after each commit).
    pub fn notices(&self) -> &Notices {
        &self.hooks.notices
    }

    /// Notified when a commit added a deadline.
    pub fn deadline_wake(&self) -> Arc<Notify> {
        self.hooks.deadlines.clone()
    }

    /// A watch on the highest committed audit seq.
    pub fn committed_seq(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// A read snapshot behind the table seam.
    fn kv_read(&self) -> Result<backend::AnyRead, StoreError> {
        Ok(self.backend.begin_read()?)
    }

    /// Reads for a single lookup (one record, or records that need no common snapshot): on
    /// PostgreSQL each statement runs on its own, without a BEGIN/ROLLBACK around it, and
    /// sees the latest commits (the hot paths: credentials, agents, tokens, secrets).
    fn kv_read_latest(&self) -> Result<backend::AnyRead, StoreError> {
        Ok(self.backend.begin_read_latest()?)
    }

    /// [`Store::write`] for a job that reads the records `reads` names first (on PostgreSQL
    /// the writer reads a batch's records in one round trip).
    pub(crate) async fn write_reading<R, F>(
        &self,
        reads: Vec<(kv::Table, Vec<u8>)>,
        f: F,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.submit_reading(reads, f).await
    }

    /// Runs `f` inside the next group commit; answers after the commit is durable.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// Is the writer alive and the database readable?
    pub fn healthy(&self) -> bool {
        !self.writer.is_closed()
            && match self.postgres() {
                // A read transaction is lazy: ask the database something.
                Some(pg) => pg.meta_get("schema_version").is_ok(),
                None => self.kv_read().is_ok(),
            }
    }
}

/// Decodes a JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Encodes a JSON record.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}
