//! The transactional table seam (docs/STORAGE.md): get / put / delete / ordered range per
//! logical table on order-preserving byte keys (`keys`), implemented here by redb and, next,
//! by PostgreSQL. The store's domain operations move onto it module by module.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::keys::Key;

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
    /// Proxy services created through the API, by name.
    Services,
    /// Grants by id.
    Grants,
    /// Approval-matrix overrides by pattern.
    Policies,
    /// Approval card references by approval id.
    Cards,
    /// Scheduled job records by name.
    JobRuns,
    /// Signed audit checkpoints.
    Checkpoints,
    /// Webhook subscriptions by id.
    Webhooks,
    /// Credentials (admin tokens, agent keys, approver tokens) by SHA-256 of the secret.
    Credentials,
    /// Agent names → agent ids (names are unique).
    AgentNames,
    /// Scoped tokens by id.
    Tokens,
    /// Revoked sessions and tasks → revocation time (unix ns).
    Revoked,
    /// (agent id, lease id) → 0: an agent's leases in creation order.
    AgentLeases,
    /// Leases not yet in a final state → agent id.
    OpenLeases,
    /// Each webhook subscription's cursor (the last audit seq delivered or skipped).
    WebhookCursors,
    /// Webhook delivery attempts by (subscription id, counter).
    WebhookDeliveries,
    /// One-time console sign-in links by SHA-256 of the link's secret.
    ConsoleLinks,
    /// Console sessions by SHA-256 of the cookie's secret.
    ConsoleSessions,
    /// Anything else a test needs.
    Scratch,
}

impl Table {
    /// Every table (a new variant goes here too: PostgreSQL makes one table per entry).
    pub const ALL: [Table; 25] = [
        Table::Secrets,
        Table::Versions,
        Table::Audit,
        Table::Agents,
        Table::Leases,
        Table::Approvals,
        Table::Deadlines,
        Table::Services,
        Table::Grants,
        Table::Policies,
        Table::Cards,
        Table::JobRuns,
        Table::Checkpoints,
        Table::Webhooks,
        Table::Credentials,
        Table::AgentNames,
        Table::Tokens,
        Table::Revoked,
        Table::AgentLeases,
        Table::OpenLeases,
        Table::WebhookCursors,
        Table::WebhookDeliveries,
        Table::ConsoleLinks,
        Table::ConsoleSessions,
        Table::Scratch,
    ];

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
            Table::Services => "kv_services",
            Table::Grants => "kv_grants",
            Table::Policies => "kv_approval_policies",
            Table::Cards => "kv_approval_cards",
            Table::JobRuns => "kv_job_runs",
            Table::Checkpoints => "kv_checkpoints",
            Table::Webhooks => "kv_webhooks",
            Table::Credentials => "kv_credentials",
            Table::AgentNames => "kv_agent_names",
            Table::Tokens => "kv_tokens",
            Table::Revoked => "kv_revoked_bindings",
            Table::AgentLeases => "kv_agent_leases",
            Table::OpenLeases => "kv_open_leases",
            Table::WebhookCursors => "kv_webhook_cursors",
            Table::WebhookDeliveries => "kv_webhook_deliveries",
            Table::ConsoleLinks => "kv_console_links",
            Table::ConsoleSessions => "kv_console_sessions",
            Table::Scratch => "kv_scratch",
        }
    }

    pub(super) fn redb(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

/// A backend failure (the domain maps it to `StoreError`).
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The backend refused or failed.
    #[error("storage: {0}")]
    Backend(String),
    /// The transaction lost a race (serialization failure, deadlock): the writer re-runs the
    /// whole batch.
    #[error("storage: transaction to be retried: {0}")]
    Retry(String),
    /// The database cannot be reached or is shutting down (the API answers 503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database's schema is newer than this build knows.
    #[error("storage schema: {0}")]
    Schema(String),
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

/// `get` on any redb table of the seam (read or write transaction).
fn get_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, KvError> {
    Ok(table.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
}

/// `range` on any redb table of the seam.
fn range_in(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    rev: bool,
    limit: usize,
) -> Result<Rows, KvError> {
    let rows = table.range::<&[u8]>((from, to)).map_err(backend)?;
    if rev {
        collect(rows.rev(), limit)
    } else {
        collect(rows, limit)
    }
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
        match self.0.open_table(t.redb()) {
            Ok(table) => get_in(&table, key),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(backend(e)),
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
        match self.0.open_table(t.redb()) {
            Ok(table) => range_in(&table, from, to, rev, limit),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(backend(e)),
        }
    }
}

/// redb's write transaction behind the seam (borrowed: the writer owns and commits it).
#[derive(Clone, Copy)]
pub struct RedbWrite<'a>(pub &'a redb::WriteTransaction);

impl ReadTxn for RedbWrite<'_> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        get_in(&self.0.open_table(t.redb()).map_err(backend)?, key)
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        range_in(
            &self.0.open_table(t.redb()).map_err(backend)?,
            from,
            to,
            rev,
            limit,
        )
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

/// A bound on an owned key as one on a borrowed key.
fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// JSON records of one table, by typed key: what the domain modules use.
pub struct Records<V> {
    table: Table,
    _v: std::marker::PhantomData<fn() -> V>,
}

impl<V> Clone for Records<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Records<V> {}

impl<V: serde::Serialize + serde::de::DeserializeOwned> Records<V> {
    /// The record under an already encoded key.
    pub fn get_encoded(
        &self,
        tx: &impl ReadTxn,
        key: &[u8],
    ) -> Result<Option<V>, super::StoreError> {
        tx.get(self.table, key)?
            .map(|v| super::decode(&v))
            .transpose()
    }

    /// The records of `table`.
    pub const fn new(table: Table) -> Records<V> {
        Records {
            table,
            _v: std::marker::PhantomData,
        }
    }

    /// The record under `key`.
    pub fn get<K: Key + ?Sized>(
        &self,
        tx: &impl ReadTxn,
        key: &K,
    ) -> Result<Option<V>, super::StoreError> {
        tx.get(self.table, &key.encode())?
            .map(|v| super::decode(&v))
            .transpose()
    }

    /// Stores `value` under `key`.
    pub fn put<K: Key + ?Sized>(
        &self,
        tx: &mut impl WriteTxn,
        key: &K,
        value: &V,
    ) -> Result<(), super::StoreError> {
        Ok(tx.put(self.table, &key.encode(), &super::encode(value)?)?)
    }

    /// Removes the record under `key`; true when there was one.
    pub fn delete<K: Key + ?Sized>(
        &self,
        tx: &mut impl WriteTxn,
        key: &K,
    ) -> Result<bool, super::StoreError> {
        Ok(tx.delete(self.table, &key.encode())?)
    }

    /// Every record with its encoded key, in key order.
    pub fn entries(&self, tx: &impl ReadTxn) -> Result<Vec<(Vec<u8>, V)>, super::StoreError> {
        tx.range(
            self.table,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            usize::MAX,
        )?
        .into_iter()
        .map(|(k, v)| Ok((k, super::decode(&v)?)))
        .collect()
    }

    /// Stores `value` under an already encoded key (one from `entries`).
    pub fn put_encoded(
        &self,
        tx: &mut impl WriteTxn,
        key: &[u8],
        value: &V,
    ) -> Result<(), super::StoreError> {
        Ok(tx.put(self.table, key, &super::encode(value)?)?)
    }

    /// Removes the record under an already encoded key (one from `entries`).
    pub fn delete_encoded(
        &self,
        tx: &mut impl WriteTxn,
        key: &[u8],
    ) -> Result<bool, super::StoreError> {
        Ok(tx.delete(self.table, key)?)
    }

    /// Up to `limit` records with `from ≤ key < to` (per the bounds), with their encoded keys,
    /// ascending or descending.
    pub fn range(
        &self,
        tx: &impl ReadTxn,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, super::StoreError> {
        tx.range(self.table, from, to, rev, limit)?
            .into_iter()
            .map(|(k, v)| Ok((k, super::decode(&v)?)))
            .collect()
    }

    /// Up to `limit` records whose encoded key starts with `prefix` (a
    /// [`tuple_prefix`](super::keys::tuple_prefix)), ascending or descending.
    pub fn prefixed(
        &self,
        tx: &impl ReadTxn,
        prefix: &[u8],
        rev: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, super::StoreError> {
        let end = super::keys::prefix_end(prefix);
        let to = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(tx, Bound::Included(prefix), to, rev, limit)
    }

    /// Visits the records with `from ≤ key < to` in key order (or reverse), a page at a time,
    /// until `f` answers false: for scans that filter and stop early.
    pub fn scan(
        &self,
        tx: &impl ReadTxn,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        rev: bool,
        mut f: impl FnMut(&[u8], V) -> Result<bool, super::StoreError>,
    ) -> Result<(), super::StoreError> {
        const PAGE: usize = 256;
        let (mut from, mut to) = (from, to);
        loop {
            let rows = tx.range(self.table, as_slice(&from), as_slice(&to), rev, PAGE)?;
            let full = rows.len() == PAGE;
            for (k, v) in rows {
                if !f(&k, super::decode(&v)?)? {
                    return Ok(());
                }
                if rev {
                    to = Bound::Excluded(k);
                } else {
                    from = Bound::Excluded(k);
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Removes every record with `from ≤ key < to`; returns how many.
    pub fn delete_range(
        &self,
        tx: &mut impl WriteTxn,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Result<usize, super::StoreError> {
        let keys = tx.range(self.table, from, to, false, usize::MAX)?;
        for (k, _) in &keys {
            tx.delete(self.table, k)?;
        }
        Ok(keys.len())
    }

    /// Every record, in key order.
    pub fn all(&self, tx: &impl ReadTxn) -> Result<Vec<V>, super::StoreError> {
        tx.range(
            self.table,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            usize::MAX,
        )?
        .into_iter()
        .map(|(_, v)| super::decode(&v))
        .collect()
    }
}

/// Moves the rows of a table of the typed layout onto the seam, once: `row` re-encodes each
/// (key, value); the old table is emptied and deleted in the same transaction (a file of the
/// previous release opens as before).
pub fn convert_table<K, V>(
    txn: &redb::WriteTransaction,
    old: TableDefinition<K, V>,
    to: Table,
    row: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> Result<(Vec<u8>, Vec<u8>), KvError>,
) -> Result<(), KvError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let rows: Rows = match txn.open_table(old) {
        Ok(t) => t
            .iter()
            .map_err(backend)?
            .map(|r| {
                let (k, v) = r.map_err(backend)?;
                row(k.value(), v.value())
            })
            .collect::<Result<_, KvError>>()?,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(backend(e)),
    };
    let mut table = txn.open_table(to.redb()).map_err(backend)?;
    for (k, v) in &rows {
        table.insert(k.as_slice(), v.as_slice()).map_err(backend)?;
    }
    drop(table);
    txn.delete_table(old).map_err(backend)?;
    Ok(())
}

/// [`convert_table`] for a table of string keys and JSON values.
pub fn convert_str_table(
    txn: &redb::WriteTransaction,
    old: TableDefinition<&str, &[u8]>,
    to: Table,
) -> Result<(), KvError> {
    convert_table(txn, old, to, |k, v| Ok((k.encode(), v.to_vec())))
}

/// A JSON value for an index table's row (the typed layout held plain values there).
pub fn json_value(v: impl serde::Serialize) -> Result<Vec<u8>, KvError> {
    serde_json::to_vec(&v).map_err(backend)
}

/// The behaviour every backend must show: each backend's tests run [`contract::run`].
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod contract {
    use std::ops::Bound;

    use super::{ReadTxn, Table, WriteTxn};
    use crate::store::keys::{Key, prefix_end, tuple_prefix};

    /// A backend under test: a committed write transaction, a read snapshot.
    pub(crate) trait Backend {
        /// Runs `f` in one write transaction and commits it.
        fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn));
        /// A read snapshot of what is committed.
        fn read(&self) -> Box<dyn ReadTxn + '_>;
    }

    fn values(rows: &[(Vec<u8>, Vec<u8>)]) -> Vec<&[u8]> {
        rows.iter().map(|(_, v)| v.as_slice()).collect()
    }

    /// Runs the contract against `b` (on `Table::Scratch`, expected empty).
    pub(crate) fn run(b: &dyn Backend) {
        let t = Table::Scratch;
        b.write(&mut |tx| {
            for (agent, lease) in [
                ("a", "03"),
                ("a", "01"),
                ("ab", "00"),
                ("a", "02"),
                ("b", "9"),
                ("a", "04"),
            ] {
                tx.put(t, &(agent, lease).encode(), lease.as_bytes())
                    .unwrap();
            }
            assert_eq!(tx.get(t, &("a", "02").encode()).unwrap().unwrap(), b"02");
            assert!(tx.delete(t, &("b", "9").encode()).unwrap());
            assert!(!tx.delete(t, &("b", "9").encode()).unwrap());
            // A put over a key replaces its value; the transaction reads its own writes.
            tx.put(t, &("a", "04").encode(), b"04*").unwrap();
            assert_eq!(tx.get(t, &("a", "04").encode()).unwrap().unwrap(), b"04*");
            tx.put(t, &("c", "").encode(), b"").unwrap();
        });
        let r = b.read();
        // Agent "a"'s leases, in order, without "ab"'s: a prefix range on the first part.
        let start = tuple_prefix("a");
        let end = prefix_end(&start).unwrap();
        let rows = r
            .range(t, Bound::Included(&start), Bound::Excluded(&end), false, 10)
            .unwrap();
        assert_eq!(values(&rows), [&b"01"[..], b"02", b"03", b"04*"]);
        let newest = r
            .range(t, Bound::Included(&start), Bound::Excluded(&end), true, 2)
            .unwrap();
        assert_eq!(values(&newest), [&b"04*"[..], b"03"]);
        // Excluded / included / unbounded ends, both directions.
        let k2 = ("a", "02").encode();
        let k3 = ("a", "03").encode();
        let after = r
            .range(t, Bound::Excluded(&k2), Bound::Included(&k3), false, 10)
            .unwrap();
        assert_eq!(values(&after), [b"03"]);
        let upto = r
            .range(t, Bound::Unbounded, Bound::Included(&k2), true, 10)
            .unwrap();
        assert_eq!(values(&upto), [b"02", b"01"]);
        let all = r
            .range(t, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .unwrap();
        assert_eq!(values(&all), [&b"01"[..], b"02", b"03", b"04*", b"00", b""]);
        assert_eq!(all[0].0, ("a", "01").encode(), "keys come back as stored");
        let from = r
            .range(t, Bound::Included(&k3), Bound::Unbounded, false, 0)
            .unwrap();
        assert!(from.is_empty(), "limit 0");
        assert_eq!(r.get(t, &("c", "").encode()).unwrap().unwrap(), b"");
        assert!(r.get(t, &("b", "9").encode()).unwrap().is_none());
        assert!(
            r.get(Table::Leases, b"x").unwrap().is_none(),
            "a table not yet written"
        );
        assert!(
            r.range(Table::Leases, Bound::Unbounded, Bound::Unbounded, false, 9)
                .unwrap()
                .is_empty()
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn a_typed_table_is_converted_once() {
        const OLD: TableDefinition<&str, &[u8]> = TableDefinition::new("old_things");
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("kv.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(OLD).unwrap();
            t.insert("b", br#"2"#.as_slice()).unwrap();
            t.insert("a", br#"1"#.as_slice()).unwrap();
        }
        w.commit().unwrap();
        for _ in 0..2 {
            let w = db.begin_write().unwrap();
            convert_str_table(&w, OLD, Table::Scratch).unwrap();
            w.commit().unwrap();
        }
        let r = RedbRead(db.begin_read().unwrap());
        let things: Records<u32> = Records::new(Table::Scratch);
        assert_eq!(things.all(&r).unwrap(), [1, 2]);
        assert_eq!(things.get(&r, "b").unwrap(), Some(2));
        assert!(r.0.open_table(OLD).is_err(), "the old table is gone");
    }

    struct Redb(redb::Database);

    impl contract::Backend for Redb {
        fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTxn)) {
            let w = self.0.begin_write().unwrap();
            f(&mut RedbWrite(&w));
            w.commit().unwrap();
        }

        fn read(&self) -> Box<dyn ReadTxn + '_> {
            Box::new(RedbRead(self.0.begin_read().unwrap()))
        }
    }

    #[test]
    fn redb_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("kv.redb")).unwrap();
        contract::run(&Redb(db));
    }
}
