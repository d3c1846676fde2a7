//! The PostgreSQL backend of the table seam (docs/STORAGE.md, step 3): several daemons share
//! one database, active-active.
//!
//! Decisions (taken 2026-12, before this code):
//!
//! 1. **Driver**: tokio-postgres 0.7 with deadpool-postgres 0.14 as the pool (its per-connection
//!    `prepare_cached` statement cache); no compile-time query macros. No TLS yet (`NoTls`).
//! 2. **Sync seam over an async driver**: `ReadTxn`/`WriteTxn` are synchronous (the domain
//!    code is sync; it runs in the writer thread and in async handlers). The backend owns a
//!    small multi-thread tokio runtime (2 workers, `latchkey-pg`); every sync call spawns its
//!    future there and blocks the calling thread on a std channel for the answer. It never
//!    calls `block_on` or `block_in_place` on the caller's thread, so it works from inside any
//!    other runtime (current_thread or multi_thread). It must not be called from the
//!    backend's own runtime threads.
//! 3. **Schema** ([`pg_schema`](super::pg_schema)): one table per [`Table`](super::kv::Table), named
//!    `Table::name()`, `(k bytea primary key, v bytea not null)`; `latchkey_meta` (the
//!    `schema_version`), `chain_head` (one row: the next audit seq and the last event's hash,
//!    initialised to seq 1 and the caller's genesis hash) and `duties` (for the coordination
//!    seam). [`PgBackend::migrate`] runs under a session `pg_advisory_lock`, creates what is
//!    missing (so a new `Table` variant gets its table without a version bump) and refuses
//!    a database whose schema is newer than this build ([`KvError::Schema`]).
//! 4. **Reads** ([`PgRead`]): a `REPEATABLE READ READ ONLY` transaction on a pooled
//!    connection, begun lazily and pipelined with its first statement, rolled back and given
//!    back to the pool on drop (in a task: the dropper does not wait). A range is
//!    `SELECT k, v FROM t WHERE k >= $1 AND k < $2 ORDER BY k [DESC] LIMIT $3` with the bounds
//!    mapped (`>`/`>=`, `<`/`<=`, absent). Statements are prepared once per connection.
//! 5. **Writes** ([`PgWrite`]): a `READ COMMITTED` transaction. Every `get`, `put` and
//!    `delete` first takes `pg_advisory_xact_lock(h)`, h = the first 8 bytes of
//!    SHA-256(table name, 0, key), pipelined with the statement (no extra round trip); the
//!    statement then runs in a fresh snapshot taken after the lock is held, so it sees what
//!    the previous holder committed: each key has redb's single-writer semantics across
//!    daemons. `range` in a write transaction takes no lock. Dropping an uncommitted
//!    `PgWrite` rolls it back.
//! 6. **The audit chain** is serialised by [`PgWrite::lock_chain_head`] (`SELECT … FOR
//!    UPDATE` of `chain_head`'s single row: under READ COMMITTED it waits for a concurrent
//!    holder and then returns the newest head) and [`PgWrite::set_chain_head`]; the writer
//!    calls them just before commit, so commit order equals seq order.
//! 7. **Errors**: SQLSTATE 40001/40P01 → [`KvError::Retry`] (the writer re-runs the batch);
//!    a refused/closed/reset connection, a pool or client timeout, 57P01/57P02/57P03, 57014
//!    (statement timeout), 53xxx and 08xxx → [`KvError::Unavailable`] (the API answers 503);
//!    the rest → [`KvError::Backend`]. The URL carries a password: it is kept in a [`PgUrl`]
//!    whose `Debug` redacts it, and no error built here contains it.
//! 8. **Knobs** ([`PgOptions`]): url, pool size (16), statement timeout (5 s, `SET
//!    statement_timeout` on each new connection), connect timeout (5 s).
//! 9. **Wake-ups** across daemons: [`PgBackend::notify`] (`pg_notify`) and
//!    [`PgBackend::listen`] (a dedicated `LISTEN` connection that reconnects by itself; a
//!    notification sent while it is disconnected is lost, so callers keep a polling fallback).

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod,
};
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio_postgres::NoTls;

use super::kv::KvError;
use super::pg_listen::Listener;

pub use super::pg_txn::{PgRead, PgWrite};

/// A PostgreSQL URL (`postgres://user:password@host:port/db` or `key=value` form). Its
/// `Debug` and [`PgUrl::redacted`] never show the password.
#[derive(Clone)]
pub struct PgUrl(String);

impl PgUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> PgUrl {
        PgUrl(url.into())
    }

    /// The URL with its password replaced by `***` (for logs and messages).
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            // The `key=value` form: say nothing of it.
            return "<PostgreSQL connection string>".to_string();
        };
        let rest = &url[scheme_end + 3..];
        // Everything up to the last `@` is user information (a password may hold `/`, `?`
        // or `@` unencoded: over-redacting is the safe side).
        let (authority, tail) = match rest.rfind('@') {
            Some(at) => {
                let user = rest[..at].split(':').next().unwrap_or("");
                let secret = if rest[..at].contains(':') { ":***" } else { "" };
                (format!("{user}{secret}@"), &rest[at + 1..])
            }
            None => (String::new(), rest),
        };
        // A password can also come as a query parameter: hide the whole query then.
        let tail = match tail.split_once('?') {
            Some((path, query)) if query.contains("password") => format!("{path}?***"),
            _ => tail.to_string(),
        };
        format!("{}{authority}{tail}", &url[..scheme_end + 3])
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

/// What the backend needs from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Where the database is.
    pub url: PgUrl,
    /// Connections in the pool (readers and the writer share it).
    pub pool_size: usize,
    /// `statement_timeout` of every connection (a lock wait counts).
    pub statement_timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
}

impl PgOptions {
    /// The defaults for `url`: 16 connections, 5 s statements, 5 s connects.
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: PgUrl::new(url),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The longest one call may wait for its answer before the backend gives up on the
    /// connection (the server's own timeouts should have answered long before).
    pub(super) fn call_bound(&self) -> Duration {
        self.statement_timeout + self.connect_timeout * 2 + Duration::from_secs(1)
    }
}

/// The PostgreSQL backend: a pool, its runtime, the LISTEN connection. Cheap to clone.
#[derive(Clone)]
pub struct PgBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    opts: PgOptions,
    listener: OnceLock<Listener>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Allowed from inside another runtime, unlike dropping the runtime itself.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A handle that does not keep the backend alive (for threads that must not outlive it).
#[derive(Clone)]
pub struct WeakPg(std::sync::Weak<Inner>);

impl WeakPg {
    /// The backend, while it lives.
    pub fn upgrade(&self) -> Option<PgBackend> {
        self.0.upgrade().map(|inner| PgBackend { inner })
    }
}

impl fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PgBackend")
            .field("opts", &self.inner.opts)
            .field("pool_size", &status.size)
            .field("pool_available", &status.available)
            .finish()
    }
}

/// Runs `fut` on `handle` and blocks this thread (not a runtime) until it answers.
pub(super) fn run_on<T: Send + 'static>(
    handle: &Handle,
    fut: impl Future<Output = Result<T, KvError>> + Send + 'static,
) -> Result<T, KvError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = || {
        rx.recv().unwrap_or_else(|_| {
            Err(KvError::Unavailable(
                "the PostgreSQL backend has shut down".into(),
            ))
        })
    };
    // Called from a request handler on a worker of a multi-threaded runtime, the wait hands
    // the worker's other tasks to another thread first: otherwise a round trip to the
    // database would stall every request on that worker (the daemon runs two).
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// The driver's configuration for `opts` (the URL parsed; nothing of it echoed on error).
fn driver_config(opts: &PgOptions, application: &str) -> Result<tokio_postgres::Config, KvError> {
    let mut config = tokio_postgres::Config::from_str(&opts.url.0).map_err(|_| {
        KvError::Backend(format!(
            "the PostgreSQL URL {} is not valid",
            opts.url.redacted()
        ))
    })?;
    config
        .connect_timeout(opts.connect_timeout)
        .application_name(application)
        .keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// What every new connection runs first.
pub(super) fn session_setup(opts: &PgOptions) -> String {
    format!(
        "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
        opts.statement_timeout.as_millis(),
        // A daemon stuck inside a transaction must not hold its locks forever.
        (opts.statement_timeout * 12).as_millis()
    )
}

impl PgBackend {
    /// Starts the runtime and the pool and checks that the database answers.
    pub fn connect(opts: PgOptions) -> Result<PgBackend, KvError> {
        let config = driver_config(&opts, "latchkey")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("latchkey-pg")
            .enable_all()
            .build()
            .map_err(|e| KvError::Backend(format!("the PostgreSQL runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A transaction ends with COMMIT/ROLLBACK before its connection goes back;
                // `Fast` keeps the prepared statements (`Clean` would discard them).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let setup = session_setup(&opts);
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .wait_timeout(Some(opts.statement_timeout + opts.connect_timeout))
            .post_create(Hook::async_fn(move |client, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&setup)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| KvError::Backend(format!("the PostgreSQL pool: {e}")))?;
        let backend = PgBackend {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                pool,
                config,
                opts,
                listener: OnceLock::new(),
            }),
        };
        let pool = backend.inner.pool.clone();
        backend.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            client.simple_query("").await.map_err(classify)?;
            Ok(())
        })?;
        Ok(backend)
    }

    /// A handle that does not keep the backend alive.
    pub fn downgrade(&self) -> WeakPg {
        WeakPg(Arc::downgrade(&self.inner))
    }

    /// The options it runs with.
    pub fn options(&self) -> &PgOptions {
        &self.inner.opts
    }

    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, KvError>> + Send + 'static,
    ) -> Result<T, KvError> {
        let bound = self.inner.opts.call_bound();
        run_on(&self.inner.handle, async move {
            tokio::time::timeout(bound, fut)
                .await
                .unwrap_or_else(|_| Err(no_answer(bound)))
        })
    }

    /// Creates or upgrades the schema (see [`pg_schema`](super::pg_schema)); `genesis` is the
    /// audit chain's first `prev` hash, used when `chain_head` is made.
    pub fn migrate(&self, genesis: &str) -> Result<(), KvError> {
        let config = self.inner.config.clone();
        let opts = self.inner.opts.clone();
        let genesis = genesis.to_string();
        run_on(&self.inner.handle, async move {
            super::pg_schema::migrate(&config, &opts, &genesis).await
        })
    }

    /// Claims (or renews) the duty `name` for `holder` until `ttl` from now: answers its
    /// fencing token when `holder` has it — it was free, expired, or already `holder`'s — and
    /// `None` while another daemon holds it. The token grows each time the duty changes hands.
    pub fn claim_duty(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, KvError> {
        let pool = self.inner.pool.clone();
        let (name, holder) = (name.to_string(), holder.to_string());
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let st = client
                .prepare_cached(
                    "INSERT INTO duties (name, holder, fence, expires_at) \
                     VALUES ($1, $2, 1, now() + make_interval(secs => $3::bigint / 1000.0)) \
                     ON CONFLICT (name) DO UPDATE SET \
                       fence = CASE WHEN duties.holder = excluded.holder THEN duties.fence \
                               ELSE duties.fence + 1 END, \
                       holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE duties.holder = excluded.holder OR duties.expires_at < now() \
                     RETURNING fence",
                )
                .await
                .map_err(classify)?;
            let rows = client
                .query(&st, &[&name, &holder, &ttl_ms])
                .await
                .map_err(classify)?;
            rows.first()
                .map(|r| r.try_get::<_, i64>(0).map_err(classify))
                .transpose()
        })
    }

    /// Hands back every duty `holder` holds (at a graceful stop).
    pub fn release_duties(&self, holder: &str) -> Result<u64, KvError> {
        let pool = self.inner.pool.clone();
        let holder = holder.to_string();
        self.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            client
                .execute("DELETE FROM duties WHERE holder = $1", &[&holder])
                .await
                .map_err(classify)
        })
    }

    /// A value of the `latchkey_meta` table (the sealed keyring, the schema version).
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, KvError> {
        let pool = self.inner.pool.clone();
        let key = key.to_string();
        self.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let rows = client
                .query("SELECT value FROM latchkey_meta WHERE key = $1", &[&key])
                .await
                .map_err(classify)?;
            rows.first()
                .map(|r| r.try_get::<_, String>(0).map_err(classify))
                .transpose()
        })
    }

    /// Sets a value of `latchkey_meta`; with `only_if_absent` an existing value stays.
    /// Answers whether it wrote.
    pub fn meta_put(&self, key: &str, value: &str, only_if_absent: bool) -> Result<bool, KvError> {
        let pool = self.inner.pool.clone();
        let (key, value) = (key.to_string(), value.to_string());
        let sql = if only_if_absent {
            "INSERT INTO latchkey_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
        } else {
            "INSERT INTO latchkey_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        };
        self.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let n = client
                .execute(sql, &[&key, &value])
                .await
                .map_err(classify)?;
            Ok(n == 1)
        })
    }

    /// A read snapshot (its transaction begins with its first statement).
    pub fn begin_read(&self) -> PgRead {
        PgRead::new(
            self.inner.handle.clone(),
            self.inner.pool.clone(),
            self.inner.opts.call_bound(),
        )
    }

    /// Reads without a snapshot (see [`PgRead::latest`]).
    pub fn begin_read_latest(&self) -> PgRead {
        PgRead::latest(
            self.inner.handle.clone(),
            self.inner.pool.clone(),
            self.inner.opts.call_bound(),
        )
    }

    /// A write transaction (begins with its first statement; rolled back unless committed).
    pub fn begin_write(&self) -> PgWrite {
        PgWrite::new(
            self.inner.handle.clone(),
            self.inner.pool.clone(),
            self.inner.opts.call_bound(),
        )
    }

    /// `pg_notify(channel, payload)`, on its own (committed at once).
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), KvError> {
        let pool = self.inner.pool.clone();
        let (channel, payload) = (channel.to_string(), payload.to_string());
        self.run(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let st = client
                .prepare_cached("SELECT pg_notify($1, $2)")
                .await
                .map_err(classify)?;
            client
                .execute(&st, &[&channel, &payload])
                .await
                .map_err(classify)?;
            Ok(())
        })
    }

    /// The payloads notified on `channel` from now on (by any daemon), through this
    /// backend's LISTEN connection. Waits, bounded, until the LISTEN is in place; after a
    /// lost connection it reconnects and listens again by itself (what was notified in
    /// between is lost: keep a polling fallback).
    pub fn listen(&self, channel: &str) -> broadcast::Receiver<String> {
        let listener = self.inner.listener.get_or_init(|| {
            let config = driver_config(&self.inner.opts, "latchkey-listen")
                .unwrap_or_else(|_| self.inner.config.clone());
            Listener::start(&self.inner.handle, config, self.inner.opts.clone())
        });
        listener.listen(channel, self.inner.opts.call_bound())
    }
}

/// The error of a call that got no answer within `bound`.
pub(super) fn no_answer(bound: Duration) -> KvError {
    KvError::Unavailable(format!(
        "no answer from PostgreSQL within {} ms",
        bound.as_millis()
    ))
}

/// Maps a driver error onto the seam's error kinds (see the module doc, item 7).
pub(super) fn classify(e: tokio_postgres::Error) -> KvError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let msg = format!("{} (SQLSTATE {code})", db.message());
        return match code {
            "40001" | "40P01" => KvError::Retry(msg),
            "57P01" | "57P02" | "57P03" | "57014" => KvError::Unavailable(msg),
            c if c.starts_with("08") || c.starts_with("53") => KvError::Unavailable(msg),
            _ => KvError::Backend(msg),
        };
    }
    let mut msg = e.to_string();
    let mut io = false;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        io |= s.is::<std::io::Error>();
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    let unavailable = e.is_closed()
        || io
        || msg.starts_with("error connecting")
        || msg.starts_with("error communicating")
        || msg.starts_with("timeout waiting");
    if unavailable {
        KvError::Unavailable(msg)
    } else {
        KvError::Backend(msg)
    }
}

/// Maps a pool error (a connection could not be had).
pub(super) fn pool_error(e: PoolError) -> KvError {
    match e {
        PoolError::Backend(e) => classify(e),
        PoolError::PostCreateHook(HookError::Backend(e)) => classify(e),
        PoolError::Timeout(t) => KvError::Unavailable(format!(
            "no PostgreSQL connection could be had in time ({t:?})"
        )),
        PoolError::Closed => KvError::Unavailable("the PostgreSQL pool is closed".into()),
        e => KvError::Backend(e.to_string()),
    }
}
