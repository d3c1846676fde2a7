//! Lease phases: durable audited reads through leases, and the wake-up of a long-poll by a
//! vote.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::stats::{Goal, Stats, cores_since, cpu_now, drive, endless, group, micros};

const READS: &str = "leases  (POST /v1/leases/{id}/secret: durable audited read):";
const WAKE: &str = "wake    (vote sent → long-poll answered, incl. vote commit):";
const VOTE: &str = "vote    (POST /v1/approvals/{id}/votes answered):";
/// Votes cast in the wake phase, one pending lease each.
const WAKE_ROUNDS: usize = 200;

/// What a lease read must hand back (the value stored below).
const VALUE: &[u8] = br#""value":"v""#;

/// One lease of many uses per client task, each task reading through its own lease until
/// the deadline. Every read is a write: uses left, access count and `secret.read` event.
/// Fails the run if a read answers 2xx without the value. Returns the successful reads.
pub async fn reads(api: &Api, agent: &str, clients: usize, dur: Duration) -> anyhow::Result<u64> {
    api.put_secret("bench/lease-secret", "v").await?;
    let body = json!({"path": "/bench/lease-secret", "uses": 1_000_000, "ttl_seconds": 3600});
    let mut urls = Vec::with_capacity(clients);
    for _ in 0..clients {
        let lease = api.lease(agent, body.clone(), "active").await?;
        let id = lease["id"].as_str().context("lease without id")?;
        urls.push(format!("{}/v1/leases/{id}/secret", api.base));
    }
    let (http, agent, wrong) = (
        api.http.clone(),
        agent.to_string(),
        Arc::new(AtomicU64::new(0)),
    );
    let (urls, bad) = (Arc::new(urls), wrong.clone());
    let stats = drive(clients, dur, endless, move |task, _| {
        let (http, agent, urls, bad) = (http.clone(), agent.clone(), urls.clone(), bad.clone());
        async move {
            let resp = http.post(&urls[task]).bearer_auth(&agent).send().await?;
            let ok = resp.status().is_success();
            let body = resp.bytes().await?;
            if ok && !body.windows(VALUE.len()).any(|w| w == VALUE) {
                bad.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
            Ok(ok)
        }
    })
    .await?;
    let goal = Goal {
        rate: Some(5e3),
        p99_ms: Some(20.0),
    };
    stats.print(READS, goal);
    let wrong = wrong.load(Ordering::Relaxed);
    ensure!(
        wrong == 0,
        "{wrong} lease reads answered 2xx without the value"
    );
    Ok(stats.ok())
}

/// Signed µs percentiles, for a difference of two clocks that may be negative.
fn signed_pct_ms(sorted: &[i64], p: f64) -> f64 {
    let i = (sorted.len().saturating_sub(1) as f64 * p / 100.0).round() as usize;
    sorted.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
}

/// [`WAKE_ROUNDS`] times: a lease that needs approval, a long-poll on it, and — once the poll
/// is surely waiting — an approving vote (admin). Prints vote sent → poll answered, the vote's
/// own answer time, and the wake-up part: poll answered − vote answered. Fails the run if a
/// poll answers in another state than `active`. Returns the votes cast (audited events).
pub async fn wake(api: &Api, agent: &str) -> anyhow::Result<u64> {
    let policy = json!({"requirement": "approval"});
    api.admin(
        Method::PUT,
        "/v1/approval-policies/bench/approve/**",
        policy,
    )
    .await?;
    api.put_secret("bench/approve/s", "v").await?;
    let (mut total, mut vote) = (Stats::default(), Stats::default());
    let mut wake_us: Vec<i64> = Vec::with_capacity(WAKE_ROUNDS);
    let (start, cpu0) = (Instant::now(), cpu_now());
    for _ in 0..WAKE_ROUNDS {
        let body = json!({"path": "/bench/approve/s", "ttl_seconds": 3600});
        let lease = api.lease(agent, body, "pending").await?;
        let id = lease["id"].as_str().context("lease without id")?;
        let aid = lease["approval"]["id"].as_str().context("no approval")?;
        let url = format!("{}/v1/leases/{id}?wait=30", api.base);
        let (http, key) = (api.http.clone(), agent.to_string());
        let poll = tokio::spawn(async move {
            let resp = http.get(url).bearer_auth(key).send().await?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            let at = Instant::now();
            ensure!(status.is_success(), "long-poll: {status}");
            anyhow::Ok((at, serde_json::from_slice::<Value>(&bytes)?))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        let path = format!("/v1/approvals/{aid}/votes");
        let voted = api
            .admin(Method::POST, &path, json!({"decision": "approve"}))
            .await?;
        let t_vote = Instant::now();
        ensure!(voted["result"] == "decided", "vote: {voted}");
        let (t1, seen) = poll.await??;
        ensure!(seen["state"] == "active", "the long-poll answered {seen}");
        total.lat.push(micros(t1 - t0));
        vote.lat.push(micros(t_vote - t0));
        let signed = |a: Instant, b: Instant| match a.checked_duration_since(b) {
            Some(d) => d.as_micros() as i64,
            None => -((b - a).as_micros() as i64),
        };
        wake_us.push(signed(t1, t_vote));
    }
    let cpu = cores_since(start, cpu0);
    let secs = start.elapsed().as_secs_f64();
    for (s, label, goal) in [(&mut total, WAKE, None), (&mut vote, VOTE, None)] {
        (s.secs, s.cpu) = (secs, cpu);
        s.lat.sort_unstable();
        s.print(
            label,
            Goal {
                rate: None,
                p99_ms: goal,
            },
        );
    }
    wake_us.sort_unstable();
    let early = wake_us.iter().filter(|us| **us < 0).count();
    let p99 = signed_pct_ms(&wake_us, 99.0);
    let mut line = format!(
        "{:<63} {:>7} ops",
        "wake-up (long-poll answered − vote answered):",
        group(wake_us.len() as u64)
    );
    for (name, p) in [
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("max", 100.0),
        ("min", 0.0),
    ] {
        line += &format!("  {name} {:.2} ms", signed_pct_ms(&wake_us, p));
    }
    line += &format!("  ({early} polls answered before the vote itself)");
    line += &format!("  target p99 ≤ 10 ms → ratio {:.2}×", 10.0 / p99.max(0.001));
    println!("{line}");
    Ok(WAKE_ROUNDS as u64)
}
