//! Test support: an in-process daemon on a random port with a fresh data directory, and a
//! small JSON client.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use latchkey::config::Config;

/// A running daemon.
pub struct Daemon {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An admin token.
    pub admin: String,
    /// The data directory (kept alive while the daemon runs).
    pub dir: TempDir,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
}

/// A configuration for a data directory (and, on PostgreSQL, for the database made for it).
pub fn config(dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    if let Ok(url) = std::fs::read_to_string(dir.join(PG_URL_FILE)) {
        cfg.store.backend = latchkey::config::StoreBackend::Postgres;
        cfg.store.url = latchkey::config::Credential(url);
        // Many daemons share the suite's cluster: a small pool each.
        cfg.store.pool_size = 4;
    }
    cfg
}

/// Where a test data directory notes the PostgreSQL database of its daemon.
const PG_URL_FILE: &str = "test-store-url";

/// Does the suite run on PostgreSQL? The `it_postgres` test target (the same sources as `it`)
/// does: every daemon gets a fresh database of one throwaway cluster; in `it` each has its
/// redb file. Without PostgreSQL binaries `it_postgres` skips loudly (each test passes at
/// once) unless `LATCHKEY_REQUIRE_POSTGRES=1`.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "it_postgres" && pg_cluster().is_some()
}

/// True in the `it_postgres` run for tests whose daemon is not the in-process one (`serve
/// --dev` binaries, the SDK suites): they run once, in `it`.
pub fn redb_only() -> bool {
    env!("CARGO_CRATE_NAME") == "it_postgres"
}

/// The suite's throwaway PostgreSQL cluster (started once, stopped when the tests end).
pub fn pg_cluster() -> Option<&'static latchkey::store::pg_cluster::Cluster> {
    static CLUSTER: std::sync::OnceLock<Option<latchkey::store::pg_cluster::Cluster>> =
        std::sync::OnceLock::new();
    CLUSTER
        .get_or_init(latchkey::store::pg_cluster::for_tests)
        .as_ref()
}

/// Changes a stopped daemon's stored rows directly, through the table seam (tests that tamper
/// with the store, or pretend time has passed), on whichever backend the directory uses.
pub fn raw_write(dir: &Path, f: impl FnOnce(&mut latchkey::store::backend::AnyWrite<'_>)) {
    use latchkey::store::backend::AnyWrite;
    let cfg = config(dir);
    if cfg.store.backend == latchkey::config::StoreBackend::Postgres {
        let pg = latchkey::store::pg::PgBackend::connect(latchkey::pg_options(&cfg)).unwrap();
        let w = pg.begin_write();
        f(&mut AnyWrite::Pg(&w));
        w.commit().unwrap();
    } else {
        let db = redb::Database::open(dir.join("latchkey.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        f(&mut AnyWrite::Redb(latchkey::store::kv::RedbWrite(&txn)));
        txn.commit().unwrap();
    }
}

/// Every stored byte of a stopped daemon: the redb file, or every row of every table of its
/// PostgreSQL database (keys and values).
pub fn stored_bytes(dir: &Path) -> Vec<u8> {
    use latchkey::store::kv::{ReadTxn, Table};
    use std::ops::Bound;
    let cfg = config(dir);
    if cfg.store.backend != latchkey::config::StoreBackend::Postgres {
        return std::fs::read(dir.join("latchkey.redb")).unwrap();
    }
    let pg = latchkey::store::pg::PgBackend::connect(latchkey::pg_options(&cfg)).unwrap();
    let r = pg.begin_read();
    let mut out = Vec::new();
    for t in Table::ALL {
        for (k, v) in r
            .range(t, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .unwrap()
        {
            out.extend(k);
            out.extend(v);
        }
    }
    out.extend(
        pg.meta_get("keyring")
            .unwrap()
            .unwrap_or_default()
            .into_bytes(),
    );
    out
}

/// The keyring of a data directory (or of its PostgreSQL database), unsealed.
pub fn keyring_of(dir: &Path) -> latchkey::crypto::Keyring {
    let cfg = config(dir);
    let master = latchkey::crypto::keyring::resolve_master_key(dir).unwrap();
    if cfg.store.backend == latchkey::config::StoreBackend::Postgres {
        let pg = latchkey::store::pg::PgBackend::connect(latchkey::pg_options(&cfg)).unwrap();
        latchkey::store::pg_open::load_keyring(&pg, &master)
            .unwrap()
            .unwrap()
    } else {
        latchkey::crypto::Keyring::load(dir, &master).unwrap()
    }
}

/// Initialises the store of a fresh data directory; returns an admin token.
pub async fn init_store(dir: &Path) -> String {
    if on_postgres() {
        let cluster = pg_cluster().expect("the it_postgres suite needs PostgreSQL");
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = cluster
            .create_database(&format!("t{}_{n}", std::process::id()))
            .unwrap();
        init_store_at(dir, &url).await
    } else {
        latchkey::init::init(&config(dir)).await.unwrap().0
    }
}

/// Initialises a PostgreSQL store at `url` for a fresh data directory; returns an admin token.
pub async fn init_store_at(dir: &Path, url: &str) -> String {
    latchkey::crypto::keyring::write_private(&dir.join(PG_URL_FILE), url.as_bytes()).unwrap();
    let (admin, _) = latchkey::init_postgres(&config(dir), "test").await.unwrap();
    admin
}

impl Daemon {
    /// Initialises a fresh data directory and starts the daemon.
    pub async fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let admin = init_store(dir.path()).await;
        Daemon::start_in(dir, admin).await
    }

    /// Initialises a fresh data directory and starts the daemon with a changed config.
    pub async fn start_with(tweak: impl Fn(&mut Config)) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let admin = init_store(dir.path()).await;
        Daemon::start_in_with(dir, admin, tweak).await
    }

    /// Starts the daemon on an existing data directory.
    pub async fn start_in(dir: TempDir, admin: String) -> Daemon {
        Daemon::start_in_with(dir, admin, |_| {}).await
    }

    /// Starts the daemon on an existing data directory with a changed config.
    pub async fn start_in_with(dir: TempDir, admin: String, tweak: impl Fn(&mut Config)) -> Daemon {
        Daemon::start_serving(dir, admin, tweak, None).await
    }

    /// Starts the daemon on an existing data directory with a changed config, serving
    /// `/metrics` on `metrics` when given (with `metrics.listen` set).
    pub async fn start_serving(
        dir: TempDir,
        admin: String,
        tweak: impl Fn(&mut Config),
        metrics: Option<tokio::net::TcpListener>,
    ) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = oneshot::channel::<()>();
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        let shutdown = async move {
            let _ = rx.await;
        };
        let handle = tokio::spawn(async move {
            let mut opened = latchkey::open(cfg)?;
            if let Some(m) = metrics {
                opened = opened.with_metrics_listener(m);
            }
            opened.serve(listener, shutdown).await
        });
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        Daemon {
            base,
            admin,
            dir,
            http,
            stop,
            handle,
        }
    }

    /// A second daemon on the same PostgreSQL database (its own data directory holding the
    /// same master key and database address), with `tweak` applied to its config.
    pub async fn another(&self, tweak: impl Fn(&mut Config)) -> Daemon {
        assert!(
            on_postgres(),
            "several daemons share a PostgreSQL database only"
        );
        let dir = tempfile::tempdir().unwrap();
        for f in ["master.key", PG_URL_FILE] {
            let bytes = std::fs::read(self.dir.path().join(f)).unwrap();
            latchkey::crypto::keyring::write_private(&dir.path().join(f), &bytes).unwrap();
        }
        Daemon::start_in_with(dir, self.admin.clone(), tweak).await
    }

    /// Stops the daemon gracefully and returns its data directory.
    pub async fn stop(self) -> (TempDir, String) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap();
        (self.dir, self.admin)
    }

    /// Sends a request; returns the status and the JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET as admin.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.admin.clone()), None)
            .await
    }

    /// PUT a secret value as `token`.
    pub async fn put(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/v1/secrets/{path}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// Creates an agent; returns (id, api key).
    pub async fn agent(&self, name: &str, tier: u8) -> (String, String) {
        let (s, b) = self
            .call(
                Method::POST,
                "/v1/agents",
                Some(&self.admin.clone()),
                Some(json!({"name": name, "trust_tier": tier})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        (
            b["agent"]["id"].as_str().unwrap().to_string(),
            b["api_key"].as_str().unwrap().to_string(),
        )
    }

    /// Mints a scoped token from `parent`; returns (status, body).
    pub async fn mint(&self, parent: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/tokens", Some(parent), Some(body))
            .await
    }

    /// Audit events of a type, as admin.
    pub async fn events(&self, pattern: &str) -> Vec<Value> {
        let (s, b) = self
            .get(&format!("/v1/audit?event={pattern}&limit=1000"))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["events"].as_array().unwrap().clone()
    }

    /// Audit events of `pattern` once there are at least `at_least` of them (polled every
    /// 20 ms for at most `within`; what there is then, otherwise).
    pub async fn wait_events(
        &self,
        pattern: &str,
        at_least: usize,
        within: Duration,
    ) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let events = self.events(pattern).await;
            if events.len() >= at_least || start.elapsed() > within {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A lease's state, as its agent sees it.
    pub async fn show_lease_state(&self, key: &str, id: &str) -> String {
        self.call(Method::GET, &format!("/v1/leases/{id}"), Some(key), None)
            .await
            .1["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Sends a raw HTTP/1.1 request line as written (no client-side URL normalisation);
    /// returns the status code.
    pub async fn raw(&self, method: &str, target: &str, body: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.admin,
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await
        .unwrap()
        .unwrap();
        let text = String::from_utf8_lossy(&out);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

/// Unix seconds of an API time: every timestamp the API answers is RFC 3339 (UTC).
pub fn unix(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{v} is not an RFC 3339 string"));
    assert!(s.ends_with('Z'), "{s} is not UTC");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("{s} is not RFC 3339"))
        .unix_timestamp()
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

/// The latchkey binary, set up to talk to `base` with `token` (stdin closed, output piped).
pub fn cli_command(base: &str, token: &str, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    c.args(args)
        .env("LATCHKEY_ADDR", base)
        .env("LATCHKEY_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// Waits for a process at most `limit`; kills it and fails the test after that.
pub fn finish(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "process did not end within {limit:?}: {}",
                output_text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the CLI as `token` against `base` and waits for it (at most 30 s).
pub fn cli(base: &str, token: &str, args: &[&str]) -> std::process::Output {
    let child = cli_command(base, token, args).spawn().unwrap();
    finish(child, Duration::from_secs(30))
}

/// A finished command's stdout and stderr, together.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Config for CLI approval flows: the admin token may vote, and `alice` approves everything.
pub fn admin_approves(cfg: &mut Config) {
    cfg.approvals.admin_is_approver = true;
    cfg.approvers = vec![latchkey::config::ApproverConfig {
        name: "alice".into(),
        patterns: vec!["**".into()],
        telegram_user_id: None,
        discord_user_id: None,
    }];
}

/// Runs a suite script of the repository (`bash SCRIPT BINARY`, the binary under test) with
/// `envs` and without the caller's `LATCHKEY_ADDR`/`LATCHKEY_TOKEN`; fails with its output.
pub fn run_suite_script(script: &str, envs: &[(&str, std::path::PathBuf)]) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join(script);
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script)
        .arg(env!("CARGO_BIN_EXE_latchkey"))
        .env_remove("LATCHKEY_ADDR")
        .env_remove("LATCHKEY_TOKEN");
    for (k, v) in envs {
        cmd.env(k, root.join(v));
    }
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "{} failed:\n--- stdout\n{}\n--- stderr\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
