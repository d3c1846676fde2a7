//! Moving a whole store: `latchkey migrate` (redb ⇄ PostgreSQL) and `latchkey backup` /
//! `restore` (a file). Rows are copied as they are stored — the table seam's keys and values,
//! the sealed keyring, the audit chain's head — so the copy verifies (`audit verify`) and the
//! same agent keys and tokens work against it. A target that already holds data is refused.
//!
//! A backup file is JSON lines: a header (`format`, `version`, the sealed keyring, the time),
//! then one line per row (`t` table, `k` and `v` in base64). Values in it are sealed as in
//! the store: without the master key they are unreadable.

use std::io::{BufRead, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::backend::{AnyRead, Backend};
use super::kv::{ReadTxn, RedbWrite, Table, WriteTxn};
use super::pg::{PgBackend, PgOptions};
use super::{DB_FILE, StoreError};
use crate::audit::GENESIS;
use crate::crypto::keyring::KEYRING_FILE;

/// Rows per transaction while copying.
const PAGE: usize = 1000;

/// Where a store is: a data directory (redb) or a PostgreSQL database.
pub enum Place {
    /// `DIR/latchkey.redb` and `DIR/keyring.json`.
    Dir(PathBuf),
    /// A PostgreSQL database.
    Pg(PgOptions),
}

impl Place {
    /// `postgres://…` / `postgresql://…` is a database, anything else a data directory.
    pub fn parse(s: &str) -> Place {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Place::Pg(PgOptions::new(s))
        } else {
            Place::Dir(PathBuf::from(s))
        }
    }

    /// How messages name it (a URL without its password).
    pub fn shown(&self) -> String {
        match self {
            Place::Dir(d) => d.display().to_string(),
            Place::Pg(o) => o.url.redacted(),
        }
    }
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The first line of a backup file.
#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    /// The keyring as stored (sealed under the master key), base64.
    keyring: String,
    created_at: String,
}

/// One row of a backup file.
#[derive(Serialize, Deserialize)]
struct Row {
    t: String,
    k: String,
    v: String,
}

/// An opened source: a read snapshot and the sealed keyring.
struct Source {
    read: AnyRead,
    keyring: Vec<u8>,
    // Keeps the database open while the snapshot lives.
    _backend: Backend,
}

fn open_source(place: &Place) -> Result<Source, StoreError> {
    match place {
        Place::Dir(dir) => {
            let path = dir.join(DB_FILE);
            if !path.exists() {
                return Err(StoreError::NotFound(format!("no {}", path.display())));
            }
            let database = redb::Database::create(&path).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Conflict(format!(
                    "a latchkey daemon is using {}: stop it first (or back up through PostgreSQL)",
                    dir.display()
                )),
                e => db(e),
            })?;
            // A file of an older layout is converted as the daemon would at open.
            super::tables::ensure(&database)?;
            let keyring = std::fs::read(dir.join(KEYRING_FILE))
                .map_err(|e| db(format!("{}: {e}", dir.join(KEYRING_FILE).display())))?;
            let backend = Backend::Redb(Arc::new(database));
            Ok(Source {
                read: backend.begin_read()?,
                keyring,
                _backend: backend,
            })
        }
        Place::Pg(opts) => {
            let pg = PgBackend::connect(opts.clone())?;
            let keyring = pg.meta_get("keyring").ok().flatten().ok_or_else(|| {
                StoreError::NotFound(format!("{} holds no Latchkey store", place.shown()))
            })?;
            let backend = Backend::Pg(pg);
            Ok(Source {
                read: backend.begin_read()?,
                keyring: keyring.into_bytes(),
                _backend: backend,
            })
        }
    }
}

/// An opened, empty target.
enum Target {
    Redb(redb::Database, PathBuf),
    Pg(PgBackend),
}

fn open_target(place: &Place) -> Result<Target, StoreError> {
    match place {
        Place::Dir(dir) => {
            if dir.join(DB_FILE).exists() || dir.join(KEYRING_FILE).exists() {
                return Err(StoreError::Conflict(format!(
                    "{} already holds a store; the target must be empty",
                    dir.display()
                )));
            }
            crate::init::create_private_dir(dir).map_err(db)?;
            let path = dir.join(DB_FILE);
            crate::util::make_private_file(&path).map_err(db)?;
            let database = redb::Database::create(&path).map_err(db)?;
            super::tables::ensure(&database)?;
            Ok(Target::Redb(database, dir.clone()))
        }
        Place::Pg(opts) => {
            let pg = PgBackend::connect(opts.clone())?;
            pg.migrate(GENESIS)?;
            let read = pg.begin_read();
            let has_rows = Table::ALL.iter().try_fold(false, |any, t| {
                Ok::<_, StoreError>(
                    any || !read
                        .range(*t, Bound::Unbounded, Bound::Unbounded, false, 1)?
                        .is_empty(),
                )
            })?;
            if has_rows || pg.meta_get("keyring")?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "{} already holds a store; the target must be empty",
                    place.shown()
                )));
            }
            Ok(Target::Pg(pg))
        }
    }
}

impl Target {
    /// Writes one page of rows in one transaction.
    fn put_page(&self, rows: &[(Table, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        match self {
            Target::Redb(database, _) => {
                let txn = database.begin_write()?;
                {
                    let mut w = RedbWrite(&txn);
                    for (t, k, v) in rows {
                        w.put(*t, k, v)?;
                    }
                }
                txn.commit()?;
            }
            Target::Pg(pg) => {
                let w = pg.begin_write();
                for (t, k, v) in rows {
                    w.put_shared(*t, k, v)?;
                }
                w.commit()?;
            }
        }
        Ok(())
    }

    /// Stores the sealed keyring and, on PostgreSQL, the chain head after the copied log.
    fn finish(&self, keyring: &[u8]) -> Result<(), StoreError> {
        match self {
            Target::Redb(_, dir) => {
                crate::crypto::keyring::write_private(&dir.join(KEYRING_FILE), keyring)
                    .map_err(db)?;
            }
            Target::Pg(pg) => {
                let text = String::from_utf8(keyring.to_vec()).map_err(db)?;
                pg.meta_put("keyring", &text, true)?;
                let last = super::audit_log::last_event(&pg.begin_read())?;
                let (next, hash) = match last {
                    Some(e) => (e.seq + 1, e.hash),
                    None => (1, GENESIS.to_string()),
                };
                let w = pg.begin_write();
                w.lock_chain_head()?;
                w.set_chain_head(next, &hash)?;
                w.commit()?;
            }
        }
        Ok(())
    }
}

/// Visits every row of `read`, table by table, a page at a time.
fn each_page(
    read: &AnyRead,
    mut f: impl FnMut(&[(Table, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut count = 0u64;
    for table in Table::ALL {
        if table == Table::Scratch {
            continue;
        }
        let mut from: Bound<Vec<u8>> = Bound::Unbounded;
        loop {
            let rows = read.range(
                table,
                from.as_ref().map(Vec::as_slice),
                Bound::Unbounded,
                false,
                PAGE,
            )?;
            let full = rows.len() == PAGE;
            if let Some((k, _)) = rows.last() {
                from = Bound::Excluded(k.clone());
            }
            let page: Vec<(Table, Vec<u8>, Vec<u8>)> =
                rows.into_iter().map(|(k, v)| (table, k, v)).collect();
            count += page.len() as u64;
            if !page.is_empty() {
                f(&page)?;
            }
            if !full {
                break;
            }
        }
    }
    Ok(count)
}

/// Copies the store at `from` into the empty `to`; returns how many rows.
pub fn migrate(from: &Place, to: &Place) -> Result<u64, StoreError> {
    let source = open_source(from)?;
    let target = open_target(to)?;
    let n = each_page(&source.read, |page| target.put_page(page))?;
    target.finish(&source.keyring)?;
    Ok(n)
}

/// Writes a consistent snapshot of the store at `from` to `file` (0600); returns how many rows.
pub fn backup(from: &Place, file: &Path) -> Result<u64, StoreError> {
    let source = open_source(from)?;
    crate::util::make_private_file(file).map_err(db)?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .map_err(|e| db(format!("{}: {e}", file.display())))?;
    let mut out = std::io::BufWriter::new(out);
    let header = Header {
        format: "latchkey-backup".into(),
        version: 1,
        keyring: STANDARD.encode(&source.keyring),
        created_at: crate::util::rfc3339(time::OffsetDateTime::now_utc()),
    };
    write_line(&mut out, &header)?;
    let n = each_page(&source.read, |page| {
        for (t, k, v) in page {
            let row = Row {
                t: t.name().to_string(),
                k: STANDARD.encode(k),
                v: STANDARD.encode(v),
            };
            write_line(&mut out, &row)?;
        }
        Ok(())
    })?;
    out.flush().map_err(db)?;
    out.get_ref().sync_all().map_err(db)?;
    Ok(n)
}

/// Loads a backup file into the empty `to`; returns how many rows.
pub fn restore(file: &Path, to: &Place) -> Result<u64, StoreError> {
    let input = std::fs::File::open(file).map_err(|e| db(format!("{}: {e}", file.display())))?;
    let mut lines = std::io::BufReader::new(input).lines();
    let bad = |why: &str| {
        StoreError::Invalid(format!(
            "{} is not a Latchkey backup: {why}",
            file.display()
        ))
    };
    let first = lines.next().ok_or_else(|| bad("empty"))?.map_err(db)?;
    let header: Header = serde_json::from_str(&first).map_err(|_| bad("no header"))?;
    if header.format != "latchkey-backup" || header.version != 1 {
        return Err(bad("unknown format or version"));
    }
    let keyring = STANDARD
        .decode(&header.keyring)
        .map_err(|_| bad("keyring"))?;
    let target = open_target(to)?;
    let mut page = Vec::with_capacity(PAGE);
    let mut n = 0u64;
    for line in lines {
        let line = line.map_err(db)?;
        if line.is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).map_err(|_| bad("a row"))?;
        let table = Table::ALL
            .into_iter()
            .find(|t| t.name() == row.t)
            .ok_or_else(|| bad("an unknown table"))?;
        let k = STANDARD.decode(&row.k).map_err(|_| bad("a key"))?;
        let v = STANDARD.decode(&row.v).map_err(|_| bad("a value"))?;
        page.push((table, k, v));
        n += 1;
        if page.len() == PAGE {
            target.put_page(&page)?;
            page.clear();
        }
    }
    if !page.is_empty() {
        target.put_page(&page)?;
    }
    target.finish(&keyring)?;
    Ok(n)
}

/// Writes one JSON line of a backup file.
fn write_line(out: &mut impl Write, v: &impl Serialize) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *out, v).map_err(db)?;
    out.write_all(b"\n").map_err(db)
}
