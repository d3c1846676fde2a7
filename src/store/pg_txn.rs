//! The PostgreSQL backend's transactions (see `pg.rs`, items 4–6): [`PgRead`] and
//! [`PgWrite`]. Each owns its connection state behind an async mutex; a call runs on the
//! backend's runtime and the caller's thread waits for the answer.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;

use super::kv::{KvError, ReadTxn, Rows, Table, WriteTxn};
use super::pg::{classify, no_answer, pool_error, run_on};
use super::pg_overlay::Overlay;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
/// No transaction: each statement runs on its own and sees the latest commits.
const AUTOCOMMIT: &str = "";
const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
/// The locks of a commit's buffered writes, in the order given (sorted: the same order on every
/// daemon).
const LOCK_MANY: &str = "SELECT count(pg_advisory_xact_lock(x)) FROM unnest($1::int8[]) AS x";

/// The advisory lock of one key: the first 8 bytes of SHA-256(table name, 0, key).
pub fn lock_key(t: Table, key: &[u8]) -> i64 {
    let mut h = Sha256::new();
    h.update(t.name().as_bytes());
    h.update([0u8]);
    h.update(key);
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The SQL of a range with these bounds (parameters numbered in order: from, to, limit).
fn range_sql(t: Table, from: Bound<&[u8]>, to: Bound<&[u8]>, rev: bool) -> String {
    let mut sql = format!("SELECT k, v FROM {}", t.name());
    let mut n = 0;
    for (bound, incl, excl) in [(from, ">=", ">"), (to, "<=", "<")] {
        let op = match bound {
            Bound::Included(_) => incl,
            Bound::Excluded(_) => excl,
            Bound::Unbounded => continue,
        };
        n += 1;
        let join = if n == 1 { "WHERE" } else { "AND" };
        sql.push_str(&format!(" {join} k {op} ${n}"));
    }
    let order = if rev { " DESC" } else { "" };
    sql.push_str(&format!(" ORDER BY k{order} LIMIT ${}", n + 1));
    sql
}

fn bound_value(b: &Bound<Vec<u8>>) -> Option<&Vec<u8>> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// One transaction's connection, taken from the pool with its first statement.
struct Conn {
    pool: Pool,
    client: Option<Object>,
    begin: &'static str,
    begun: bool,
    /// A statement failed: the transaction can only roll back.
    failed: bool,
    /// The connection is in doubt (lost, or a call timed out): never given back to the pool.
    broken: bool,
    /// Committed or rolled back.
    done: bool,
    /// Key locks already held (`pg_advisory_xact_lock` again would only count up).
    locked: HashSet<i64>,
    /// A write transaction's puts and deletes, sent at commit (None for a read snapshot).
    overlay: Option<Overlay>,
    /// Records read ahead, their keys locked (`PgWrite::prefetch`): what the database held.
    fetched: HashMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A connection whose transaction did not end cleanly leaves the pool for good
        // (closing it makes the server roll back).
        if let Some(client) = self.client.take()
            && (self.broken || (self.begun && !self.done))
        {
            drop(Object::take(client));
        }
    }
}

impl Conn {
    fn new(pool: Pool, begin: &'static str) -> Conn {
        Conn {
            pool,
            client: None,
            begin,
            begun: false,
            failed: false,
            broken: false,
            done: false,
            locked: HashSet::new(),
            overlay: (begin == BEGIN_WRITE).then(Overlay::default),
            fetched: HashMap::new(),
        }
    }

    /// Runs one statement; a failure leaves the transaction able only to roll back.
    async fn pipelined(
        &mut self,
        lock: Option<i64>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, KvError> {
        let out = self.pipelined_inner(lock, sql, params).await;
        if let Err(e) = &out {
            self.failed = true;
            if matches!(e, KvError::Unavailable(_)) {
                self.broken = true;
            }
        }
        out
    }

    /// Sends the BEGIN (if the transaction has not begun), the key lock (if asked for and
    /// not yet held) and the statement in one pipelined round trip; the server runs them in
    /// that order, so the statement's READ COMMITTED snapshot is taken with the lock held.
    async fn pipelined_inner(
        &mut self,
        lock: Option<i64>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, KvError> {
        if self.done {
            return Err(KvError::Backend("the transaction has ended".into()));
        }
        if self.failed {
            return Err(KvError::Backend(
                "an earlier statement of this transaction failed; it can only roll back".into(),
            ));
        }
        if self.client.is_none() {
            self.client = Some(self.pool.get().await.map_err(pool_error)?);
        }
        let Some(client) = &self.client else {
            return Err(KvError::Backend("no connection".into()));
        };
        // Prepared once per connection (a round trip the first time only).
        let st = client.prepare_cached(sql).await.map_err(classify)?;
        let lock = lock.filter(|h| !self.locked.contains(h));
        let lock_st = match lock {
            Some(h) => Some((client.prepare_cached(LOCK).await.map_err(classify)?, h)),
            None => None,
        };
        let begin = (!self.begun && !self.begin.is_empty()).then_some(self.begin);
        self.begun |= begin.is_some();
        let begin_fut = async {
            match begin {
                Some(b) => client.batch_execute(b).await,
                None => Ok(()),
            }
        };
        let lock_fut = async {
            match &lock_st {
                Some((st, h)) => client.execute(st, &[h]).await.map(drop),
                None => Ok(()),
            }
        };
        // `biased`: polled in this order, so the requests are sent in this order.
        let (b, l, q) = tokio::join!(biased; begin_fut, lock_fut, client.query(&st, params));
        b.map_err(classify)?;
        l.map_err(classify)?;
        let rows = q.map_err(classify)?;
        if let Some(h) = lock {
            self.locked.insert(h);
        }
        Ok(rows)
    }

    async fn get(&mut self, t: Table, key: &[u8], lock: bool) -> Result<Option<Vec<u8>>, KvError> {
        // This transaction's own pending write answers first.
        if let Some(pending) = self.overlay.as_ref().and_then(|o| o.get(t, key)) {
            return Ok(pending.cloned());
        }
        // Read ahead under its lock: still what the database holds for this transaction.
        if let Some(v) = self.fetched.get(&(t, key.to_vec())) {
            return Ok(v.clone());
        }
        let sql = format!("SELECT v FROM {} WHERE k = $1", t.name());
        let rows = self
            .pipelined(lock.then(|| lock_key(t, key)), &sql, &[&key])
            .await?;
        rows.first()
            .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(classify))
            .transpose()
    }

    async fn range(
        &mut self,
        t: Table,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        let sql = range_sql(
            t,
            from.as_ref().map(Vec::as_slice),
            to.as_ref().map(Vec::as_slice),
            rev,
        );
        // Deleted rows of the range are asked for too, so that `limit` remain.
        let extra = self
            .overlay
            .as_ref()
            .map_or(0, |o| o.deletes_in(t, &from, &to));
        let wanted = limit;
        let limit = i64::try_from(limit.saturating_add(extra)).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(3);
        for b in [&from, &to] {
            if let Some(v) = bound_value(b) {
                params.push(v);
            }
        }
        params.push(&limit);
        let rows: Rows = self
            .pipelined(None, &sql, &params)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(classify)?,
                    r.try_get(1).map_err(classify)?,
                ))
            })
            .collect::<Result<_, KvError>>()?;
        Ok(match &self.overlay {
            Some(o) => o.merge(t, &from, &to, rev, wanted, rows),
            None => rows,
        })
    }

    /// Refuses work on a transaction that ended or failed.
    fn usable(&self) -> Result<(), KvError> {
        if self.done {
            return Err(KvError::Backend("the transaction has ended".into()));
        }
        if self.failed {
            return Err(KvError::Backend(
                "an earlier statement of this transaction failed; it can only roll back".into(),
            ));
        }
        Ok(())
    }

    async fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        if let Some(o) = self.overlay.as_mut() {
            // Sent at commit, with its lock.
            if self.done || self.failed {
                return self.usable();
            }
            o.put(t, key, value);
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            t.name()
        );
        self.pipelined(Some(lock_key(t, key)), &sql, &[&key, &value])
            .await
            .map(drop)
    }

    async fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool, KvError> {
        if self.overlay.is_some() {
            self.usable()?;
            // Whether there was a row: this transaction's pending write, else the database
            // (the key locked from here on, as a `get` would).
            let pending = self
                .overlay
                .as_ref()
                .and_then(|o| o.get(t, key).map(|v| v.is_some()));
            let existed = match pending {
                Some(e) => e,
                None => self.get(t, key, true).await?.is_some(),
            };
            if let Some(o) = self.overlay.as_mut() {
                o.delete(t, key);
            }
            return Ok(existed);
        }
        let sql = format!("DELETE FROM {} WHERE k = $1 RETURNING 1", t.name());
        let rows = self
            .pipelined(Some(lock_key(t, key)), &sql, &[&key])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Reads records ahead: their keys' locks in one statement (sorted), then one `SELECT`
    /// per table, pipelined; later `get`s of them answer from memory.
    async fn prefetch(&mut self, keys: Vec<(Table, Vec<u8>)>) -> Result<(), KvError> {
        let mut locks: Vec<i64> = keys
            .iter()
            .map(|(t, k)| lock_key(*t, k))
            .filter(|h| !self.locked.contains(h))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        self.pipelined(None, LOCK_MANY, &[&locks]).await?;
        self.locked.extend(locks);
        let mut by_table: HashMap<Table, Vec<Vec<u8>>> = HashMap::new();
        for (t, k) in keys {
            by_table.entry(t).or_default().push(k);
        }
        let Some(client) = &self.client else {
            return Err(KvError::Backend("no connection".into()));
        };
        let mut statements = Vec::new();
        for (t, keys) in &by_table {
            let sql = format!("SELECT k, v FROM {} WHERE k = ANY($1::bytea[])", t.name());
            let st = client.prepare_cached(&sql).await.map_err(classify)?;
            statements.push((*t, st, keys));
        }
        let queries = statements
            .iter()
            .map(|(_, st, keys)| async move { client.query(st, &[*keys]).await });
        let answers = futures_util::future::try_join_all(queries).await;
        let answers = match answers {
            Ok(a) => a,
            Err(e) => {
                let e = classify(e);
                self.failed = true;
                if matches!(e, KvError::Unavailable(_)) {
                    self.broken = true;
                }
                return Err(e);
            }
        };
        for ((t, _, keys), rows) in statements.iter().zip(answers) {
            for k in keys.iter() {
                self.fetched.insert((*t, k.clone()), None);
            }
            for r in rows {
                let k: Vec<u8> = r.try_get(0).map_err(classify)?;
                let v: Vec<u8> = r.try_get(1).map_err(classify)?;
                self.fetched.insert((*t, k), Some(v));
            }
        }
        Ok(())
    }

    /// Sends the buffered writes: their key locks (sorted), then one upsert and one delete
    /// statement per table, pipelined in one round trip.
    async fn flush(&mut self) -> Result<(), KvError> {
        let Some(overlay) = self.overlay.as_mut() else {
            return Ok(());
        };
        if overlay.is_empty() {
            return Ok(());
        }
        let mut locks: Vec<i64> = overlay
            .keys()
            .map(|(t, k)| lock_key(t, k))
            .filter(|h| !self.locked.contains(h))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        let batches = overlay.drain();
        self.pipelined(None, LOCK_MANY, &[&locks]).await?;
        self.locked.extend(locks);
        let out = self.send_writes(&batches).await;
        if let Err(e) = &out {
            self.failed = true;
            if matches!(e, KvError::Unavailable(_)) {
                self.broken = true;
            }
        }
        out
    }

    async fn send_writes(&self, batches: &[super::pg_overlay::Flush]) -> Result<(), KvError> {
        let Some(client) = &self.client else {
            return Err(KvError::Backend("no connection".into()));
        };
        let mut statements = Vec::new();
        for f in batches {
            let name = f.table.name();
            if !f.put_keys.is_empty() {
                let sql = format!(
                    "INSERT INTO {name} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v"
                );
                let st = client.prepare_cached(&sql).await.map_err(classify)?;
                statements.push((st, &f.put_keys, Some(&f.put_values)));
            }
            if !f.deletes.is_empty() {
                let sql = format!("DELETE FROM {name} WHERE k = ANY($1::bytea[])");
                let st = client.prepare_cached(&sql).await.map_err(classify)?;
                statements.push((st, &f.deletes, None));
            }
        }
        // Polled in order: sent in order, answered in one round trip.
        let sends = statements.iter().map(|(st, keys, values)| async move {
            match values {
                Some(v) => client.execute(st, &[*keys, *v]).await,
                None => client.execute(st, &[*keys]).await,
            }
        });
        futures_util::future::try_join_all(sends)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Sends the buffered writes and COMMITs (or ROLLBACKs), and gives the connection back to
    /// the pool.
    async fn finish(&mut self, commit: bool) -> Result<(), KvError> {
        if commit
            && !self.done
            && !self.failed
            && let Err(e) = self.flush().await
        {
            let _ = self.end(false).await;
            return Err(e);
        }
        self.end(commit).await
    }

    /// COMMIT (or ROLLBACK) and give the connection back to the pool.
    async fn end(&mut self, commit: bool) -> Result<(), KvError> {
        if self.done {
            return Ok(());
        }
        let out = match &self.client {
            _ if !self.begun => Ok(()),
            _ if self.broken => Err(KvError::Unavailable(
                "the connection was lost; the transaction did not commit".into(),
            )),
            Some(client) => {
                let sql = if commit && !self.failed {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                client.batch_execute(sql).await.map_err(classify)
            }
            None => Ok(()),
        };
        self.done = true;
        match out {
            Err(e) => {
                self.broken = true;
                Err(e)
            }
            Ok(()) if commit && self.failed => Err(KvError::Backend(
                "a statement of this transaction failed; it was rolled back".into(),
            )),
            Ok(()) => {
                // Back to the pool, in a clean state (a connection in doubt is dropped by
                // `Drop`).
                if !self.broken {
                    self.client = None;
                }
                Ok(())
            }
        }
    }
}

/// What both transaction kinds share: their connection and the way to call into it.
struct Txn {
    handle: Handle,
    conn: Arc<Mutex<Conn>>,
    bound: Duration,
}

impl Txn {
    fn new(handle: Handle, pool: Pool, bound: Duration, begin: &'static str) -> Txn {
        Txn {
            handle,
            conn: Arc::new(Mutex::new(Conn::new(pool, begin))),
            bound,
        }
    }

    /// Runs `f` on the connection, on the backend's runtime; waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'a> FnOnce(&'a mut Conn) -> BoxFuture<'a, Result<T, KvError>> + Send + 'static,
    ) -> Result<T, KvError> {
        let conn = self.conn.clone();
        let bound = self.bound;
        run_on(&self.handle, async move {
            let mut conn = conn.lock_owned().await;
            match tokio::time::timeout(bound, f(&mut conn)).await {
                Ok(out) => out,
                Err(_) => {
                    conn.failed = true;
                    conn.broken = true;
                    Err(no_answer(bound))
                }
            }
        })
    }

    /// Rolls back in a task of the runtime: the caller does not wait.
    fn rollback_in_background(&self) {
        let conn = self.conn.clone();
        self.handle.spawn(async move {
            let _ = conn.lock_owned().await.finish(false).await;
        });
    }

    fn get(&self, t: Table, key: &[u8], lock: bool) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_vec();
        self.call(move |c| Box::pin(async move { c.get(t, &key, lock).await }))
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = from.map(<[u8]>::to_vec);
        let to = to.map(<[u8]>::to_vec);
        self.call(move |c| Box::pin(async move { c.range(t, from, to, rev, limit).await }))
    }
}

/// A read snapshot: `REPEATABLE READ READ ONLY`, begun with its first statement, rolled back
/// (in the background) when dropped.
pub struct PgRead {
    txn: Txn,
}

impl PgRead {
    pub(super) fn new(handle: Handle, pool: Pool, bound: Duration) -> PgRead {
        PgRead {
            txn: Txn::new(handle, pool, bound, BEGIN_READ),
        }
    }

    /// Reads without a snapshot: each statement on its own, seeing the latest commits (no
    /// BEGIN or ROLLBACK: for lookups whose statements need no common snapshot).
    pub(super) fn latest(handle: Handle, pool: Pool, bound: Duration) -> PgRead {
        PgRead {
            txn: Txn::new(handle, pool, bound, AUTOCOMMIT),
        }
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        self.txn.rollback_in_background();
    }
}

impl ReadTxn for PgRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.txn.get(t, key, false)
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        self.txn.range(t, from, to, rev, limit)
    }
}

/// A write transaction: `READ COMMITTED`, each key locked (advisory, until the end of the
/// transaction) by the first `get` or `delete` that reads it, or at commit for keys only
/// written. Puts and deletes are buffered (`pg_overlay`) and sent together at commit; reads in
/// the transaction see them. Rolled back unless committed.
pub struct PgWrite {
    txn: Txn,
    ended: bool,
}

impl PgWrite {
    pub(super) fn new(handle: Handle, pool: Pool, bound: Duration) -> PgWrite {
        PgWrite {
            txn: Txn::new(handle, pool, bound, BEGIN_WRITE),
            ended: false,
        }
    }

    /// Commits. An error after the COMMIT was sent (`Unavailable`) leaves the outcome
    /// unknown.
    pub fn commit(mut self) -> Result<(), KvError> {
        self.ended = true;
        self.txn
            .call(|c| Box::pin(async move { c.finish(true).await }))
    }

    /// Rolls back now (dropping does the same without waiting).
    pub fn rollback(mut self) -> Result<(), KvError> {
        self.ended = true;
        self.txn
            .call(|c| Box::pin(async move { c.finish(false).await }))
    }

    /// Reads the records `keys` names ahead, each key locked until the transaction ends (the
    /// writer does this for a batch's jobs: one round trip instead of one a job).
    pub fn prefetch(&self, keys: Vec<(Table, Vec<u8>)>) -> Result<(), KvError> {
        self.txn
            .call(move |c| Box::pin(async move { c.prefetch(keys).await }))
    }

    /// Locks the audit chain's head until this transaction ends (waiting for a concurrent
    /// holder) and answers it: the next seq and the last event's hash.
    pub fn lock_chain_head(&self) -> Result<(u64, String), KvError> {
        let (seq, hash) = self.txn.call(|c| {
            Box::pin(async move {
                let rows = c
                    .pipelined(
                        None,
                        "SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await?;
                let row = rows.first().ok_or_else(|| {
                    KvError::Backend("chain_head has no row: run the migration".into())
                })?;
                Ok((
                    row.try_get::<_, i64>(0).map_err(classify)?,
                    row.try_get::<_, String>(1).map_err(classify)?,
                ))
            })
        })?;
        let seq = u64::try_from(seq)
            .map_err(|_| KvError::Backend(format!("chain_head seq {seq} is negative")))?;
        Ok((seq, hash))
    }

    /// Moves the audit chain's head (after [`PgWrite::lock_chain_head`]).
    pub fn set_chain_head(&self, seq: u64, hash: &str) -> Result<(), KvError> {
        let seq = i64::try_from(seq)
            .map_err(|_| KvError::Backend(format!("audit seq {seq} out of range")))?;
        let hash = hash.to_string();
        let rows = self.txn.call(move |c| {
            Box::pin(async move {
                c.pipelined(
                    None,
                    "UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1 RETURNING id",
                    &[&seq, &hash],
                )
                .await
            })
        })?;
        if rows.is_empty() {
            return Err(KvError::Backend(
                "chain_head has no row: run the migration".into(),
            ));
        }
        Ok(())
    }

    /// Does `holder` still hold the duty `name` with fencing token `fence`? Checked inside
    /// this transaction, the row locked (shared) until it ends, so a daemon that lost the duty
    /// cannot commit work done under it.
    pub fn fence_holds(&self, name: &str, holder: &str, fence: i64) -> Result<bool, KvError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let rows = self.txn.call(move |c| {
            Box::pin(async move {
                c.pipelined(
                    None,
                    "SELECT 1 FROM duties WHERE name = $1 AND holder = $2 AND fence = $3 \
                     AND expires_at > now() FOR SHARE",
                    &[&name, &holder, &fence],
                )
                .await
            })
        })?;
        Ok(!rows.is_empty())
    }

    /// Runs any SQL inside this transaction (tests force errors with it).
    #[cfg(test)]
    pub(super) fn execute_raw(&mut self, sql: &str) -> Result<(), KvError> {
        let sql = sql.to_string();
        self.txn
            .call(move |c| Box::pin(async move { c.pipelined(None, &sql, &[]).await.map(drop) }))
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        if !self.ended {
            self.txn.rollback_in_background();
        }
    }
}

impl ReadTxn for PgWrite {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.txn.get(t, key, true)
    }

    fn range(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Rows, KvError> {
        self.txn.range(t, from, to, rev, limit)
    }
}

impl PgWrite {
    /// [`WriteTxn::put`] through a shared reference (the writer's context hands out copies of
    /// its transaction handle).
    pub fn put_shared(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.txn
            .call(move |c| Box::pin(async move { c.put(t, &key, &value).await }))
    }

    /// [`WriteTxn::delete`] through a shared reference.
    pub fn delete_shared(&self, t: Table, key: &[u8]) -> Result<bool, KvError> {
        let key = key.to_vec();
        self.txn
            .call(move |c| Box::pin(async move { c.delete(t, &key).await }))
    }
}

impl WriteTxn for PgWrite {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.put_shared(t, key, value)
    }

    fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool, KvError> {
        self.delete_shared(t, key)
    }
}
