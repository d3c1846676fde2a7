//! What every phase measures and prints: CPU time per thread group, latency percentiles, the
//! line with its targets, and the generic load driver (`clients` tasks, back to back).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// The threads whose CPU time is counted, and the names under which CPU time is reported.
const THREADS: [&str; 3] = ["bench-client", "daemon-worker", "latchkey-writer"];
const CORES: [&str; 5] = ["client", "daemon", "writer", "others", "steal"];

/// CPU seconds used so far by the client's threads, the daemon's workers, its writer thread,
/// the other processes on the machine, and stolen by the hypervisor ([`CORES`]), from Linux's
/// `/proc` (100 ticks a second; zeros elsewhere).
pub fn cpu_now() -> [f64; 5] {
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

/// Cores busy on average between `cpu0` (taken at `start`) and now.
pub fn cores_since(start: Instant, cpu0: [f64; 5]) -> [f64; 5] {
    let (secs, cpu1) = (start.elapsed().as_secs_f64(), cpu_now());
    [0, 1, 2, 3, 4].map(|i| (cpu1[i] - cpu0[i]) / secs)
}

/// A duration in whole µs, saturated to `u32`.
pub fn micros(d: Duration) -> u32 {
    d.as_micros().try_into().unwrap_or(u32::MAX)
}

/// What a phase is held to; ratios are ≥ 1 when the target is met.
#[derive(Clone, Copy, Default)]
pub struct Goal {
    /// At least this many ops/s.
    pub rate: Option<f64>,
    /// p99 latency at most this many ms.
    pub p99_ms: Option<f64>,
}

/// One phase's results.
#[derive(Default)]
pub struct Stats {
    pub errors: u64,
    pub secs: f64,
    /// Cores busy on average (see [`cpu_now`]).
    pub cpu: [f64; 5],
    /// Latencies of the successful requests in µs, sorted.
    pub lat: Vec<u32>,
}

impl Stats {
    pub fn ok(&self) -> u64 {
        self.lat.len() as u64
    }

    pub fn rate(&self) -> f64 {
        self.ok() as f64 / self.secs
    }

    pub fn pct_ms(&self, p: f64) -> f64 {
        let i = (self.lat.len().saturating_sub(1) as f64 * p / 100.0).round() as usize;
        self.lat.get(i).map_or(0.0, |us| f64::from(*us) / 1000.0)
    }

    /// The phase's line; with only a rate goal it is exactly the original format.
    pub fn print(&self, label: &str, goal: Goal) {
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
        if let Some(t) = goal.rate {
            let (goal, ratio) = (group(t as u64), self.rate() / t);
            line += &format!("  target ≥ {goal}/s → ratio {ratio:.2}×");
        }
        if let Some(t) = goal.p99_ms {
            let ratio = t / self.pct_ms(99.0).max(0.001);
            line += &format!("  target p99 ≤ {t} ms → ratio {ratio:.2}×");
        }
        println!("{line}");
    }
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        _ => format!("{},{:03}", group(n / 1000), n % 1000),
    }
}

/// The request numbers a task sends (all of them, or a share of a fixed set).
pub type Keys = Box<dyn Iterator<Item = u64> + Send>;

/// Runs `send(task, n)` from `clients` tasks, back to back, for each `n` of `keys(task)` until
/// the deadline. `Ok(true)` is a success (its latency is kept), `Ok(false)` a non-2xx answer
/// and `Err` a transport failure (both counted as errors).
pub async fn drive<F, Fut>(
    clients: usize,
    dur: Duration,
    keys: impl Fn(usize) -> Keys,
    send: F,
) -> anyhow::Result<Stats>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send + 'static,
{
    drive_paced(clients, dur, None, keys, send).await
}

/// As [`drive`]; with `rate` (ops/s over all tasks) each task sends request `n` no earlier
/// than its slot, the tasks' slots interleaved (a task that falls behind sends at once).
pub async fn drive_paced<F, Fut>(
    clients: usize,
    dur: Duration,
    rate: Option<f64>,
    keys: impl Fn(usize) -> Keys,
    send: F,
) -> anyhow::Result<Stats>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send + 'static,
{
    let (start, cpu0) = (Instant::now(), cpu_now());
    let deadline = start + dur;
    let step = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let mut tasks = JoinSet::new();
    for task in 0..clients {
        let (send, keys) = (send.clone(), keys(task));
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::<u32>::with_capacity(1 << 16), 0u64);
            for n in keys.take_while(|_| Instant::now() < deadline) {
                if let Some(step) = step {
                    let slot = step.mul_f64(n as f64 + task as f64 / clients as f64);
                    tokio::time::sleep_until((start + slot).into()).await;
                }
                let t0 = Instant::now();
                match send(task, n).await {
                    Ok(true) => lat.push(micros(t0.elapsed())),
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
    stats.cpu = cores_since(start, cpu0);
    stats.lat.sort_unstable();
    Ok(stats)
}

/// Every task sends until the deadline.
pub fn endless(_task: usize) -> Keys {
    Box::new(0..)
}
