//! Which backend a store runs on, and the read and write transactions that dispatch to it:
//! the domain modules see only the table seam (`kv::ReadTxn` / `kv::WriteTxn`).

use std::ops::Bound;
use std::sync::Arc;

use redb::ReadableDatabase;

use super::kv::{KvError, ReadTxn, RedbRead, RedbWrite, Rows, Table, WriteTxn};
use super::pg::PgBackend;
use super::pg_txn::{PgRead, PgWrite};

/// The database under a store.
#[derive(Clone)]
pub enum Backend {
    /// One redb file, one daemon.
    Redb(Arc<redb::Database>),
    /// One PostgreSQL database, any number of daemons.
    Pg(PgBackend),
}

impl Backend {
    /// A read snapshot.
    pub fn begin_read(&self) -> Result<AnyRead, KvError> {
        Ok(match self {
            Backend::Redb(db) => AnyRead::Redb(RedbRead(
                db.begin_read()
                    .map_err(|e| KvError::Backend(e.to_string()))?,
            )),
            Backend::Pg(pg) => AnyRead::Pg(pg.begin_read()),
        })
    }
}

impl Backend {
    /// Reads for a lookup whose statements need no common snapshot: on redb a snapshot (it
    /// costs nothing), on PostgreSQL each statement on its own, seeing the latest commits.
    pub fn begin_read_latest(&self) -> Result<AnyRead, KvError> {
        match self {
            Backend::Redb(_) => self.begin_read(),
            Backend::Pg(pg) => Ok(AnyRead::Pg(pg.begin_read_latest())),
        }
    }
}

/// A read snapshot of either backend.
pub enum AnyRead {
    /// redb.
    Redb(RedbRead),
    /// PostgreSQL.
    Pg(PgRead),
}

impl ReadTxn for AnyRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            AnyRead::Redb(r) => r.get(t, key),
            AnyRead::Pg(r) => r.get(t, key),
        }
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        match self {
            AnyRead::Redb(r) => r.range(t, from, to, rev, limit),
            AnyRead::Pg(r) => r.range(t, from, to, rev, limit),
        }
    }
}

/// The writer's open transaction on either backend: a cheap copy the jobs use.
#[derive(Clone, Copy)]
pub enum AnyWrite<'a> {
    /// redb.
    Redb(RedbWrite<'a>),
    /// PostgreSQL.
    Pg(&'a PgWrite),
}

impl ReadTxn for AnyWrite<'_> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            AnyWrite::Redb(w) => w.get(t, key),
            AnyWrite::Pg(w) => w.get(t, key),
        }
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        match self {
            AnyWrite::Redb(w) => w.range(t, from, to, rev, limit),
            AnyWrite::Pg(w) => w.range(t, from, to, rev, limit),
        }
    }
}

impl WriteTxn for AnyWrite<'_> {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        match self {
            AnyWrite::Redb(w) => w.put(t, key, value),
            AnyWrite::Pg(w) => w.put_shared(t, key, value),
        }
    }

    fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool, KvError> {
        match self {
            AnyWrite::Redb(w) => w.delete(t, key),
            AnyWrite::Pg(w) => w.delete_shared(t, key),
        }
    }
}
