//! Opening a store on PostgreSQL: connect, create or upgrade the schema (under an advisory
//! lock, safe when several daemons start at once), and unseal the keyring the database keeps
//! (sealed under the master key, so every daemon needs only the master key). A wrong master
//! key is refused before anything is written.

use std::path::Path;

use super::pg::{PgBackend, PgOptions};
use super::{Store, StoreError, writer};
use crate::audit::GENESIS;
use crate::crypto::{Keyring, KeyringError};

/// The `latchkey_meta` key of the sealed keyring.
const KEYRING_KEY: &str = "keyring";

/// How errors name the keyring kept in the database.
fn origin() -> &'static Path {
    Path::new("the keyring in the PostgreSQL database")
}

/// Connects and brings the schema up to date.
pub fn connect(opts: PgOptions) -> Result<PgBackend, StoreError> {
    let pg = PgBackend::connect(opts)?;
    pg.migrate(GENESIS)?;
    Ok(pg)
}

/// The keyring the database keeps, unsealed; `None` before `latchkey init`.
pub fn load_keyring(pg: &PgBackend, master: &[u8; 32]) -> Result<Option<Keyring>, KeyringError> {
    let sealed = pg
        .meta_get(KEYRING_KEY)
        .map_err(|e| KeyringError::Malformed {
            path: origin().to_path_buf(),
            why: e.to_string(),
        })?;
    sealed
        .map(|s| Keyring::unseal(s.as_bytes(), master, origin()))
        .transpose()
}

/// Stores a keyring sealed under `master`: a new one only where none is (answers whether it
/// wrote), or a changed one (rotation) in place.
pub fn save_keyring(
    pg: &PgBackend,
    ring: &Keyring,
    master: &[u8; 32],
    only_if_absent: bool,
) -> Result<bool, StoreError> {
    let sealed = ring.seal(master).map_err(StoreError::Corrupt)?;
    let text = String::from_utf8(sealed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(pg.meta_put(KEYRING_KEY, &text, only_if_absent)?)
}

impl Store {
    /// Opens a store on an initialised PostgreSQL database and starts the writer; `master`
    /// unseals the keyring again when another daemon rotates it.
    pub fn open_pg(
        pg: PgBackend,
        keyring: Keyring,
        master: &[u8; 32],
        max_batch: usize,
    ) -> Result<(Store, writer::WriterThread), StoreError> {
        let master = zeroize::Zeroizing::new(*master);
        Store::start(
            super::backend::Backend::Pg(pg),
            keyring,
            Some(master),
            max_batch,
        )
    }

    /// Adds a new key-encryption key to the keyring where it is kept (the data directory's
    /// `keyring.json` for redb, the database for PostgreSQL) and returns it (not yet in use:
    /// the caller sets it with [`Store::set_keyring`]).
    pub fn rotate_keyring(&self, dir: &Path, master: &[u8; 32]) -> Result<Keyring, StoreError> {
        let mut ring = match self.postgres() {
            Some(pg) => load_keyring(pg, master)
                .map_err(|e| StoreError::Db(e.to_string()))?
                .ok_or_else(|| StoreError::Db("the database holds no keyring".into()))?,
            None => Keyring::load(dir, master).map_err(|e| StoreError::Db(e.to_string()))?,
        };
        ring.add_generated();
        match self.postgres() {
            Some(pg) => {
                save_keyring(pg, &ring, master, false)?;
                super::pg_notices::send_keyring_changed(pg, self.daemon_id());
            }
            None => ring
                .save(dir, master)
                .map_err(|e| StoreError::Db(e.to_string()))?,
        }
        Ok(ring)
    }

    /// Does this daemon hold the duty `name` (claimed or renewed now, for 15 s)? Always on
    /// redb (one daemon per file); on PostgreSQL one daemon at a time holds each duty, and it
    /// moves to another within 15 s of its holder's death. A database error answers no.
    pub fn holds_duty(&self, name: &str) -> bool {
        match self.postgres() {
            None => true,
            Some(pg) => {
                let fence = pg
                    .claim_duty(name, self.daemon_id(), std::time::Duration::from_secs(15))
                    .map_err(|e| tracing::warn!(error = %e, duty = name, "cannot claim a duty"))
                    .ok()
                    .flatten();
                self.note_duty(name, fence);
                fence.is_some()
            }
        }
    }

    /// Hands back this daemon's duties (PostgreSQL; nothing on redb), so that another daemon
    /// takes them over at once.
    pub fn release_duties(&self) {
        if let Some(pg) = self.postgres() {
            if let Err(e) = pg.release_duties(self.daemon_id()) {
                tracing::warn!(error = %e, "cannot hand back the duties; they move when their claims run out");
            }
            self.note_duty_all_released();
        }
    }

    /// In a write job: fails unless this daemon still holds the duty `name` under the fencing
    /// token it claimed it with (checked inside the transaction). Always passes on redb.
    pub(super) fn check_fence(
        &self,
        ctx: &super::WriteCtx<'_>,
        name: &str,
        fence: Option<i64>,
    ) -> Result<(), StoreError> {
        let super::backend::AnyWrite::Pg(txn) = ctx.kv() else {
            return Ok(());
        };
        let held = match fence {
            Some(f) => txn.fence_holds(name, self.daemon_id(), f)?,
            None => false,
        };
        if held {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "this daemon no longer holds {name}; another one has taken it over"
            )))
        }
    }

    /// The fencing token this daemon holds `name` with, to pass to [`Store::check_fence`].
    pub fn fence_of(&self, name: &str) -> Option<i64> {
        self.duty_fence(name)
    }

    /// The PostgreSQL backend, when the store runs on one.
    pub fn postgres(&self) -> Option<&PgBackend> {
        match &self.backend {
            super::backend::Backend::Pg(pg) => Some(pg),
            super::backend::Backend::Redb(_) => None,
        }
    }
}
