//! The transactional table seam (docs/STORAGE.md): get / put / delete / ordered range per
//! logical table on order-preserving byte keys (`keys`), implemented here by redb and, next,
//! by PostgreSQL. The store's domain operations move onto it module by module.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

/// The logical tables (one per table of `tables.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Secret records by path.
    Secrets,
    /// Secret versions by (path, version).
    Versions,
    /// The audit log by seq.
    Audit,
    /// Agents by id.
    Agents,
    /// Leases by id.
    Leases,
    /// Approvals by id.
    Approvals,
    /// The deadline queue by (unix seconds, key).
    Deadlines,
    /// Anything else a test needs.
    Scratch,
}

impl Table {
    /// Its name in a backend.
    pub fn name(self) -> &'static str {
        match self {
            Table::Secrets => "kv_secrets",
            Table::Versions => "kv_secret_versions",
            Table::Audit => "kv_audit",
            Table::Agents => "kv_agents",
            Table::Leases => "kv_leases",
            Table::Approvals => "kv_approvals",
            Table::Deadlines => "kv_deadlines",
            Table::Scratch => "kv_scratch",
        }
    }

    fn redb(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

/// A backend failure (the domain maps it to `StoreError`).
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The backend refused or failed.
    #[error("storage: {0}")]
    Backend(String),
}

fn backend(e: impl std::fmt::Display) -> KvError {
    KvError::Backend(e.to_string())
}

/// An ordered page of a range.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads in one consistent snapshot.
pub trait ReadTxn {
    /// The value under `key`.
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Up to `limit` rows with `from ≤ key < to` (per the bounds), ascending or descending.
    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError>;
}

/// Reads and writes that commit together or not at all.
pub trait WriteTxn: ReadTxn {
    /// Sets `key` to `value`.
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; true when it was there.
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool, KvError>;
}

fn collect<'a, I>(rows: I, limit: usize) -> Result<Rows, KvError>
where
    I: Iterator<
        Item = Result<
            (
                redb::AccessGuard<'a, &'static [u8]>,
                redb::AccessGuard<'a, &'static [u8]>,
            ),
            redb::StorageError,
        >,
    >,
{
    rows.take(limit)
        .map(|r| {
            let (k, v) = r.map_err(backend)?;
            Ok((k.value().to_vec(), v.value().to_vec()))
        })
        .collect()
}

/// redb's read transaction behind the seam.
pub struct RedbRead(pub redb::ReadTransaction);

impl ReadTxn for RedbRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let table = match self.0.open_table(t.redb()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        Ok(table.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        let table = match self.0.open_table(t.redb()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let rows = table.range::<&[u8]>((from, to)).map_err(backend)?;
        if rev {
            collect(rows.rev(), limit)
        } else {
            collect(rows, limit)
        }
    }
}

/// redb's write transaction behind the seam (borrowed: the writer owns and commits it).
pub struct RedbWrite<'a>(pub &'a redb::WriteTransaction);

impl ReadTxn for RedbWrite<'_> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let table = self.0.open_table(t.redb()).map_err(backend)?;
        Ok(table.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        let table = self.0.open_table(t.redb()).map_err(backend)?;
        let rows = table.range::<&[u8]>((from, to)).map_err(backend)?;
        if rev {
            collect(rows.rev(), limit)
        } else {
            collect(rows, limit)
        }
    }
}

impl WriteTxn for RedbWrite<'_> {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let mut table = self.0.open_table(t.redb()).map_err(backend)?;
        table.insert(key, value).map_err(backend)?;
        Ok(())
    }

    fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool, KvError> {
        let mut table = self.0.open_table(t.redb()).map_err(backend)?;
        Ok(table.remove(key).map_err(backend)?.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::keys::{Key, prefix_end, tuple_prefix};
    use redb::ReadableDatabase;

    /// The behaviour every backend must show (run against each one).
    fn contract(db: &redb::Database) {
        let t = Table::Scratch;
        let w = db.begin_write().unwrap();
        {
            let mut tx = RedbWrite(&w);
            for (agent, lease) in [
                ("a", "03"),
                ("a", "01"),
                ("ab", "00"),
                ("a", "02"),
                ("b", "9"),
            ] {
                tx.put(t, &(agent, lease).encode(), lease.as_bytes())
                    .unwrap();
            }
            assert_eq!(tx.get(t, &("a", "02").encode()).unwrap().unwrap(), b"02");
            assert!(tx.delete(t, &("b", "9").encode()).unwrap());
            assert!(!tx.delete(t, &("b", "9").encode()).unwrap());
        }
        w.commit().unwrap();
        let r = RedbRead(db.begin_read().unwrap());
        // Agent "a"'s leases, in order, without "ab"'s: a prefix range on the first part.
        let start = tuple_prefix("a");
        let end = prefix_end(&start).unwrap();
        let rows = r
            .range(t, Bound::Included(&start), Bound::Excluded(&end), false, 10)
            .unwrap();
        let values: Vec<&[u8]> = rows.iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, [b"01", b"02", b"03"]);
        let newest = r
            .range(t, Bound::Included(&start), Bound::Excluded(&end), true, 2)
            .unwrap();
        assert_eq!(newest[0].1, b"03");
        assert_eq!(newest.len(), 2);
        assert!(r.get(t, &("b", "9").encode()).unwrap().is_none());
        assert!(
            r.get(Table::Leases, b"x").unwrap().is_none(),
            "a table not yet made"
        );
    }

    #[test]
    fn redb_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("kv.redb")).unwrap();
        contract(&db);
    }
}
