//! `latchkey-bench`: end-to-end throughput and latency of the daemon over HTTP/1.1 keep-alive.
//!
//! The daemon runs in-process on a throw-away data directory, on its own tokio runtime (2
//! worker threads); the load comes from a second runtime (2 workers), so the two share no
//! scheduler: `BENCH_CLIENTS` tasks (default 32) with one shared `reqwest::Client`, for
//! `BENCH_SECONDS` (default 5) per phase:
//! - floor:  `GET /healthz`, no auth and no store: what the HTTP stack and client can do;
//! - writes: durable `PUT /v1/secrets/bench/w{task}/{n}`, each answered after the group commit
//!   that holds the new version and its audit event (target 3,000/s);
//! - reads:  `GET /v1/secrets/bench/r/{i}` metadata over 1,000 seeded secrets (target 20,000/s).
//!
//! Each prints ops, ops/s, p50/p90/p99/max latency of the successes, errors (non-2xx or
//! transport) and the cores busy meanwhile: client, daemon, its writer thread, other processes
//! (the machine is shared) and the hypervisor. Timing is never asserted; the run fails if the
//! audit chain is broken or holds fewer events than there were successful writes.
//!
//! Run: `cargo bench --bench latchkey-bench` (e.g. with `BENCH_CLIENTS=64 BENCH_SECONDS=10`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// How many secrets the read phase picks from.
const READ_SET: u64 = 1_000;
/// Worker threads of each runtime, the daemon's and the client's.
const WORKERS: usize = 2;
/// The threads whose CPU time is counted, and the names under which CPU time is reported.
const THREADS: [&str; 3] = ["bench-client", "daemon-worker", "latchkey-writer"];
const CORES: [&str; 5] = ["client", "daemon", "writer", "others", "steal"];
const FLOOR: &str = "floor   (GET /healthz: HTTP stack and client, no auth or store):";
const WRITES: &str = "writes  (durable PUT /v1/secrets, each with its audit event):";
const READS: &str = "reads   (GET /v1/secrets/{path} metadata):";
/// The timed phases: what each sends, its label and its target (ops/s).
const PHASES: [(Op, &str, Option<f64>); 3] = [
    (Op::Floor, FLOOR, None),
    (Op::Write, WRITES, Some(3e3)),
    (Op::Read, READS, Some(2e4)),
];

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
        let url = format!("{}{path}", self.base);
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

/// CPU seconds used so far by the client's threads, the daemon's workers, its writer thread,
/// the other processes on the machine, and stolen by the hypervisor ([`CORES`]), from Linux's
/// `/proc` (100 ticks a second; zeros elsewhere).
fn cpu_now() -> [f64; 5] {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let fields = |text: String, after: &str| -> Vec<f64> {
        let line = text.lines().next().unwrap_or_default();
        let tail = line.rsplit(after).next().unwrap_or_default();
        let parse = |f: &str| f.parse().unwrap_or(0.0) / 100.0;
        tail.split_whitespace().map(parse).collect()
    };
    let mut out = [0.0; 5];
    let tasks = std::fs::read_dir("/proc/self/task");
    for task in tasks.into_iter().flatten().flatten() {
        let (stat, name) = (task.path().join("stat"), read(task.path().join("comm")));
        let slot = THREADS.iter().position(|t| name.starts_with(t));
        // After the name: state is field 0, utime 11, stime 12.
        if let (Some(i), f) = (slot, fields(read(stat), ")")) {
            out[i] += f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0);
        }
    }
    // The `cpu` line: user nice system idle iowait irq softirq steal.
    let all = fields(read("/proc/stat".into()), "cpu");
    let at = |i: usize| all.get(i).copied().unwrap_or(0.0);
    out[3] = at(0) + at(1) + at(2) + at(5) + at(6) - out[0] - out[1] - out[2];
    out[4] = at(7);
    out
}

/// One phase's results.
#[derive(Default)]
struct Stats {
    errors: u64,
    secs: f64,
    /// Cores busy on average (see [`cpu_now`]).
    cpu: [f64; 5],
    /// Latencies of the successful requests in µs, sorted.
    lat: Vec<u32>,
}

impl Stats {
    fn ok(&self) -> u64 {
        self.lat.len() as u64
    }

    fn rate(&self) -> f64 {
        self.ok() as f64 / self.secs
    }

    fn pct_ms(&self, p: f64) -> f64 {
        let i = (self.lat.len().saturating_sub(1) as f64 * p / 100.0).round() as usize;
        self.lat.get(i).map_or(0.0, |us| f64::from(*us) / 1000.0)
    }

    fn print(&self, label: &str, target: Option<f64>) {
        let (ops, rate) = (group(self.ok()), group(self.rate() as u64));
        let mut line = format!("{label:<63} {ops:>7} ops {rate:>7}/s");
        for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
            line += &format!("  {name} {:.2} ms", self.pct_ms(p));
        }
        line += &format!("  errors {}  cores:", self.errors);
        for (name, cores) in CORES.iter().zip(self.cpu) {
            line += &format!(" {name} {:.2}", cores.max(0.0));
        }
        let server_us = (self.cpu[1] + self.cpu[2]) * 1e6 / self.rate();
        line += &format!("  (daemon + writer CPU per op: {server_us:.0} µs)");
        if let Some(t) = target {
            let (goal, ratio) = (group(t as u64), self.rate() / t);
            line += &format!("  target ≥ {goal}/s → ratio {ratio:.2}×");
        }
        println!("{line}");
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        _ => format!("{},{:03}", group(n / 1000), n % 1000),
    }
}

/// Runs `op` from every client task, back to back, until the deadline (or, to seed, until
/// `bench/r/0 … bench/r/999` are written, spread over the tasks).
async fn phase(t: &Target, op: Op, clients: usize, dur: Duration) -> anyhow::Result<Stats> {
    let (start, cpu0) = (Instant::now(), cpu_now());
    let deadline = start + dur;
    let mut tasks = JoinSet::new();
    for task in 0..clients {
        let t = t.clone();
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::<u32>::with_capacity(1 << 16), 0u64);
            let keys: Box<dyn Iterator<Item = u64> + Send> = match op {
                Op::Seed => Box::new((task as u64..READ_SET).step_by(clients)),
                _ => Box::new(0..),
            };
            for n in keys.take_while(|_| Instant::now() < deadline) {
                let t0 = Instant::now();
                match t.send(op, task, n).await {
                    Ok(true) => lat.push(t0.elapsed().as_micros().try_into().unwrap_or(u32::MAX)),
                    Ok(false) | Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut stats = Stats::default();
    while let Some(done) = tasks.join_next().await {
        let (lat, errors) = done?;
        stats.errors += errors;
        stats.lat.extend(lat);
    }
    stats.secs = start.elapsed().as_secs_f64();
    let cpu1 = cpu_now();
    stats.cpu = [0, 1, 2, 3, 4].map(|i| (cpu1[i] - cpu0[i]) / stats.secs);
    stats.lat.sort_unstable();
    Ok(stats)
}

/// The phases, then the audit check: every successful write must be in the chain.
async fn bench(addr: SocketAddr, token: String, n: usize, dur: Duration) -> anyhow::Result<()> {
    let t = Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        base: format!("http://{addr}"),
        token,
    };
    let mut written = READ_SET;
    for (op, label, target) in PHASES {
        if op == Op::Read {
            let seeded = phase(&t, Op::Seed, n, Duration::from_secs(600)).await?;
            ensure!(seeded.ok() == READ_SET, "seeding: {} errors", seeded.errors);
        }
        let stats = phase(&t, op, n, dur).await?;
        stats.print(label, target);
        written += if op == Op::Write { stats.ok() } else { 0 };
    }

    let url = format!("{}/v1/audit/verify", t.base);
    let resp = t.http.get(url).bearer_auth(&t.token).send().await?;
    let verify: serde_json::Value = resp.error_for_status()?.json().await?;
    let checked = verify["checked"].as_u64().unwrap_or(0);
    let (intact, all_there) = (verify["ok"].as_bool() == Some(true), checked >= written);
    println!(
        "audit   (GET /v1/audit/verify): chain intact: {intact}; {} events checked ≥ {} \
         successful writes (incl. 1,000 seeded): {all_there}",
        group(checked),
        group(written),
    );
    ensure!(intact && all_there, "audit check failed: {verify}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let clients = env_num("BENCH_CLIENTS", 32)?;
    let seconds = env_num("BENCH_SECONDS", 5)?;
    let dir = tempfile::tempdir()?;
    let cfg = latchkey::config::Config {
        data_dir: dir.path().to_path_buf(),
        log_level: "warn".into(),
        ..Default::default()
    };

    let client_rt = runtime("bench-client")?;
    let (token, _) = client_rt.block_on(latchkey::init::init(&cfg))?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "latchkey-bench  ({}, {cores} cores shared by client and server, {clients} clients, \
         {seconds} s each; runtimes of {WORKERS} workers, the daemon's and the client's)",
        time::OffsetDateTime::now_utc().date(),
    );

    // The daemon's own runtime: the listener is bound in its context and `run` spawned on it.
    let server_rt = runtime("daemon-worker")?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    let shutdown = async move { stop_rx.await.unwrap_or_default() };
    let daemon = server_rt.spawn(latchkey::run(cfg, listener, shutdown));

    let dur = Duration::from_secs(seconds as u64);
    let result = client_rt.block_on(bench(addr, token, clients, dur));
    // Stop gracefully whatever the outcome: in-flight requests finish, the writer drains.
    let _ = stop.send(());
    let stopped = server_rt.block_on(daemon).context("the daemon panicked")?;
    result.and(stopped.context("the daemon failed"))
}
