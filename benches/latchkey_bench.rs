//! `latchkey-bench`: end-to-end throughput and latency of the daemon over HTTP/1.1 keep-alive.
//!
//! The daemon runs in-process on a throw-away data directory, on its own tokio runtime (2
//! worker threads); the load comes from a second runtime (2 workers), so the two share no
//! scheduler: `BENCH_CLIENTS` tasks (default 32) with one shared `reqwest::Client`, for
//! `BENCH_SECONDS` (default 5) per phase:
//! - floor:  `GET /healthz`, no auth and no store: what the HTTP stack and client can do;
//! - writes: durable `PUT /v1/secrets/bench/w{task}/{n}`, each answered after the group commit
//!   that holds the new version and its audit event (target 3,000/s);
//! - reads:  `GET /v1/secrets/bench/r/{i}` metadata over 1,000 seeded secrets (target 20,000/s);
//! - leases: an agent (tier 5) takes one lease of 1,000,000 uses per task and reads through it,
//!   `POST /v1/leases/{id}/secret`, each a durable audited read (5,000/s, p99 ≤ 20 ms);
//! - wake:   200 times, a lease pending approval is long-polled (`?wait=30`) and the admin votes
//!   to approve: vote sent → poll answered, the vote's own time, and the wake-up part (poll
//!   answered − vote answered, p99 ≤ 10 ms);
//! - webhooks: a local receiver (on the load runtime) verifies every signature and notes each
//!   receipt; `PUT /v1/secrets/bench/wh/…` from every task for `BENCH_SECONDS`, then the
//!   deliveries are awaited. Twice: PUTs back to back, for delivered/s first to last receipt
//!   (5,000/s); then paced at `BENCH_WEBHOOK_RATE` (default 5,000) PUTs/s, for PUT answered →
//!   receipt latency without a growing backlog (p99 ≤ 500 ms);
//! - proxy:  a local upstream (load runtime) called directly, through a bare forwarder on the
//!   daemon's runtime (axum → reqwest, no auth or store: the floor of any HTTP proxy here), and
//!   through `POST /v1/proxy/up/get` (p50 overhead ≤ 1 ms, throughput ≥ 50 % of direct); with
//!   32 clients, then with one;
//! - mcp: `POST /v1/secrets/{path}/read` on an instant lease, then the same read as the MCP
//!   tool `get_secret` through Streamable HTTP at `/mcp` (one session per client).
//!
//! `BENCH_PHASES` (comma list of the names above; default all) picks phases. Each prints ops,
//! ops/s, p50/p90/p99/max latency of the successes, errors (non-2xx or transport), the cores
//! busy meanwhile: client (incl. the local receiver and upstream), daemon, its writer thread,
//! other processes (the machine is shared) and the hypervisor; and its targets, with ratios
//! that are ≥ 1 when met. Timing is never asserted; the run fails if the audit chain is broken
//! or holds fewer events than there were successful audited requests, or if a lease read,
//! long-poll, webhook (signature, count) or proxied answer is wrong.
//!
//! `BENCH_STORE=postgres` runs the daemon on a throwaway PostgreSQL cluster started by the
//! harness (fsync on; the server shares the machine's cores with client and daemon) instead
//! of redb; there the reads target is 10,000/s. `BENCH_DAEMONS=2` (PostgreSQL only) starts a
//! second daemon on the same database, on a runtime of its own, and the floor, writes and
//! reads phases spread their clients over both.
//!
//! Run: `cargo bench --bench latchkey-bench` (e.g. with `BENCH_CLIENTS=64 BENCH_SECONDS=10` or
//! `BENCH_PHASES=leases,wake`, or `BENCH_STORE=postgres BENCH_DAEMONS=2 BENCH_PHASES=floor,writes,reads`).

/// mimalloc: the request path allocates a lot of small short-lived buffers, which glibc's
/// allocator serves markedly slower under threads (about a fifth of the proxy path's CPU).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bench/api.rs"]
mod api;
#[path = "bench/leases.rs"]
mod leases;
#[path = "bench/mcp.rs"]
mod mcp;
#[path = "bench/proxy.rs"]
mod proxy;
#[path = "bench/stats.rs"]
mod stats;
#[path = "bench/tap.rs"]
mod tap;
#[path = "bench/webhook.rs"]
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::json;
use tokio::sync::oneshot;

use stats::{Goal, Keys, Stats, drive, group};

/// How many secrets the read phase picks from.
const READ_SET: u64 = 1_000;
/// Worker threads of each runtime, the daemon's and the client's.
const WORKERS: usize = 2;
const FLOOR: &str = "floor   (GET /healthz: HTTP stack and client, no auth or store):";
const WRITES: &str = "writes  (durable PUT /v1/secrets, each with its audit event):";
const READS: &str = "reads   (GET /v1/secrets/{path} metadata):";
/// The timed phases: what each sends, its label and its target (ops/s).
const PHASES: [(Op, &str, Option<f64>); 3] = [
    (Op::Floor, FLOOR, None),
    (Op::Write, WRITES, Some(3e3)),
    (Op::Read, READS, Some(2e4)),
];
/// Every phase's name, in running order.
const NAMES: [&str; 9] = [
    "floor", "writes", "reads", "leases", "wake", "webhooks", "proxy", "tap", "mcp",
];

/// The phases `BENCH_PHASES` names (all by default).
fn selected() -> anyhow::Result<Vec<&'static str>> {
    let Ok(list) = std::env::var("BENCH_PHASES") else {
        return Ok(NAMES.to_vec());
    };
    let want: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = want.iter().find(|w| !NAMES.contains(w)) {
        anyhow::bail!("BENCH_PHASES: unknown phase {bad:?}; the phases are {NAMES:?}");
    }
    Ok(NAMES.into_iter().filter(|n| want.contains(n)).collect())
}

/// A positive integer from the environment, or the default.
fn env_num(name: &str, default: usize) -> anyhow::Result<usize> {
    let Ok(v) = std::env::var(name) else {
        return Ok(default);
    };
    let n = v.trim().parse().ok().filter(|n| *n > 0);
    n.with_context(|| format!("{name} must be a positive integer, not {v:?}"))
}

/// A multi-thread runtime of [`WORKERS`] threads.
fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(name)
        .enable_all()
        .build()
}

/// What a request does (see [`Target::send`]).
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Floor,
    Write,
    Seed,
    Read,
}

/// Everything a request needs, shared by the tasks.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    base: String,
    /// Every daemon's base URL (task `i` talks to `bases[i % len]` in the timed phases).
    bases: Vec<String>,
    token: String,
}

impl Target {
    /// Sends request `n` of a task and drains the body; `Ok(false)` is a non-2xx answer.
    async fn send(&self, op: Op, task: usize, n: u64) -> anyhow::Result<bool> {
        let r = pick(task, n);
        let (method, path) = match op {
            Op::Floor => (Method::GET, "/healthz".to_string()),
            Op::Write => (Method::PUT, format!("/v1/secrets/bench/w{task}/{n}")),
            Op::Seed => (Method::PUT, format!("/v1/secrets/bench/r/{n}")),
            Op::Read => (Method::GET, format!("/v1/secrets/bench/r/{r}")),
        };
        let url = format!("{}{path}", self.bases[task % self.bases.len()]);
        let mut req = self.http.request(method.clone(), url);
        if method == Method::PUT {
            req = req.json(&json!({ "value": format!("v-{n}") }));
        }
        let resp = req.bearer_auth(&self.token).send().await?;
        let ok = resp.status().is_success();
        resp.bytes().await?;
        Ok(ok)
    }
}

/// A scattered index into the read set for request `n` of `task` (Fibonacci hashing).
fn pick(task: usize, n: u64) -> u64 {
    ((n + ((task as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % READ_SET
}

/// Runs `op` from every client task, back to back, until the deadline (or, to seed, until
/// `bench/r/0 … bench/r/999` are written, spread over the tasks).
async fn phase(t: &Target, op: Op, clients: usize, dur: Duration) -> anyhow::Result<Stats> {
    let keys = move |task: usize| -> Keys {
        match op {
            Op::Seed => Box::new((task as u64..READ_SET).step_by(clients)),
            _ => Box::new(0..),
        }
    };
    let t = Arc::new(t.clone());
    drive(clients, dur, keys, move |task, n| {
        let t = t.clone();
        async move { t.send(op, task, n).await }
    })
    .await
}

/// The selected phases, then the audit check: every successful audited request must be in
/// the chain.
async fn bench(
    addrs: Vec<SocketAddr>,
    token: String,
    n: usize,
    dur: Duration,
    tg: Option<tap::FakeTelegram>,
    daemon_rt: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let t = Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        base: format!("http://{}", addrs[0]),
        bases: addrs.iter().map(|a| format!("http://{a}")).collect(),
        token,
    };
    let on_postgres = std::env::var("BENCH_STORE").as_deref() == Ok("postgres");
    let run = selected()?;
    let (mut written, mut seeded, mut more) = (0, false, 0);
    for ((op, label, target), name) in PHASES.into_iter().zip(NAMES) {
        if !run.contains(&name) {
            continue;
        }
        if op == Op::Read {
            let seeding = phase(&t, Op::Seed, n, Duration::from_secs(600)).await?;
            ensure!(
                seeding.ok() == READ_SET,
                "seeding: {} errors",
                seeding.errors
            );
            (written, seeded) = (written + READ_SET, true);
        }
        let stats = phase(&t, op, n, dur).await?;
        // On PostgreSQL the metadata reads target is 10,000/s (issue 13).
        let target = match (op, on_postgres) {
            (Op::Read, true) => Some(1e4),
            _ => target,
        };
        stats.print(
            label,
            Goal {
                rate: target,
                p99_ms: None,
            },
        );
        written += if op == Op::Write { stats.ok() } else { 0 };
    }

    let api = api::Api {
        http: t.http.clone(),
        base: t.base.clone(),
        admin: t.token.clone(),
    };
    let needs_agent = ["leases", "wake", "proxy", "tap", "mcp"]
        .iter()
        .any(|p| run.contains(p));
    let rate = env_num("BENCH_WEBHOOK_RATE", 5000)? as f64;
    let agent = if needs_agent {
        api::agent(&api).await?
    } else {
        String::new()
    };
    for name in &run {
        more += match *name {
            "leases" => leases::reads(&api, &agent, n, dur).await?,
            "wake" => leases::wake(&api, &agent).await?,
            "mcp" => mcp::get_secret(&api, &agent, n, dur).await?,
            "webhooks" => webhook::deliver(&api, n, dur, rate).await?,
            // Two events a call: `lease.used` before, `secret.used` after.
            "proxy" => 2 * proxy::overhead(&api, &agent, n, dur, &daemon_rt).await?,
            "tap" => match &tg {
                Some(tg) => tap::run(&api, &agent, tg).await?,
                None => 0,
            },
            _ => 0,
        };
    }

    let url = format!("{}/v1/audit/verify", t.base);
    let resp = t.http.get(url).bearer_auth(&t.token).send().await?;
    let verify: serde_json::Value = resp.error_for_status()?.json().await?;
    let checked = verify["checked"].as_u64().unwrap_or(0);
    let total = written + more;
    let (intact, all_there) = (verify["ok"].as_bool() == Some(true), checked >= total);
    let seeded = if seeded { " (incl. 1,000 seeded)" } else { "" };
    let what = match more {
        0 => format!("successful writes{seeded}"),
        m => format!(
            "successful audited requests ({} writes{seeded}, {} lease reads, votes, \
             webhook-phase writes and proxy uses)",
            group(written),
            group(m)
        ),
    };
    println!(
        "audit   (GET /v1/audit/verify): chain intact: {intact}; {} events checked ≥ {} \
         {what}: {all_there}",
        group(checked),
        group(total),
    );
    ensure!(intact && all_there, "audit check failed: {verify}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let clients = env_num("BENCH_CLIENTS", 32)?;
    let seconds = env_num("BENCH_SECONDS", 5)?;
    let dir = tempfile::tempdir()?;
    let mut cfg = latchkey::config::Config {
        data_dir: dir.path().to_path_buf(),
        log_level: "warn".into(),
        ..Default::default()
    };
    // Long many-use leases, votes by the admin token, a receiver on loopback.
    cfg.approvals.max_lease_uses = 1_000_000;
    cfg.approvals.max_lease_ttl_seconds = 3600;
    cfg.approvals.admin_is_approver = true;
    cfg.webhooks.allow_loopback = true;

    let client_rt = runtime("bench-client")?;
    // The tap phase needs a fake Telegram before the daemon starts (its URL is config).
    let tg = if selected()?.contains(&"tap") {
        let tg = client_rt.block_on(tap::FakeTelegram::start());
        tap::configure(&mut cfg, &tg.url);
        Some(tg)
    } else {
        None
    };
    // BENCH_STORE=postgres: a throwaway cluster with fsync on (the server shares the cores).
    let store = std::env::var("BENCH_STORE").unwrap_or_else(|_| "redb".into());
    let daemons = env_num("BENCH_DAEMONS", 1)?;
    ensure!(
        daemons == 1 || store == "postgres",
        "BENCH_DAEMONS > 1 needs BENCH_STORE=postgres (a redb file has one daemon)"
    );
    let _cluster = match store.as_str() {
        "redb" => None,
        "postgres" => {
            let cluster = latchkey::store::pg_cluster::Cluster::start_new(
                latchkey::store::pg_cluster::ClusterOptions {
                    fsync: true,
                    ..Default::default()
                },
            )?;
            cfg.store.backend = latchkey::config::StoreBackend::Postgres;
            cfg.store.url = latchkey::config::Credential(cluster.url());
            cfg.store.pool_size = 32;
            Some(cluster)
        }
        other => anyhow::bail!("BENCH_STORE: {other:?} is neither redb nor postgres"),
    };
    let token = if store == "postgres" {
        client_rt
            .block_on(latchkey::init_postgres(&cfg, "bench"))?
            .0
    } else {
        client_rt.block_on(latchkey::init::init(&cfg))?.0
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "latchkey-bench  ({}, {cores} cores shared by client and server, {clients} clients, \
         {seconds} s each; runtimes of {WORKERS} workers, the daemon's and the client's; \
         store {store}, {daemons} daemon(s))",
        time::OffsetDateTime::now_utc().date(),
    );

    // The daemon's own runtime: the listener is bound in its context and `run` spawned on it.
    let server_rt = runtime("daemon-worker")?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    let shutdown = async move { stop_rx.await.unwrap_or_default() };
    let mut addrs = vec![addr];
    // A second daemon on the same database, on a runtime of its own.
    let mut others = Vec::new();
    for i in 1..daemons {
        let rt = runtime(&format!("daemon{i}-worker"))?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        addrs.push(listener.local_addr()?);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move { stop_rx.await.unwrap_or_default() };
        let handle = rt.spawn(latchkey::run(cfg.clone(), listener, shutdown));
        others.push((rt, stop, handle));
    }
    let daemon = server_rt.spawn(latchkey::run(cfg, listener, shutdown));

    let dur = Duration::from_secs(seconds as u64);
    let result = client_rt.block_on(bench(
        addrs,
        token,
        clients,
        dur,
        tg,
        server_rt.handle().clone(),
    ));
    // Stop gracefully whatever the outcome: in-flight requests finish, the writer drains.
    for (rt, stop, handle) in others {
        let _ = stop.send(());
        let _ = rt.block_on(handle);
    }
    let _ = stop.send(());
    let stopped = server_rt.block_on(daemon).context("the daemon panicked")?;
    result.and(stopped.context("the daemon failed"))
}
