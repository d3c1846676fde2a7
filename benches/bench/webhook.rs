//! Webhook delivery: a local receiver verifies every signature (Standard Webhooks) and notes
//! when each event arrived; writers append `secret.created` events as fast as they can; then
//! each event's append (its PUT answered) is matched with its receipt by resource path.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use webhooks::{Secret, WebhookHeaders};

use crate::api::{Api, serve};
use crate::stats::{Goal, Stats, cores_since, cpu_now, drive_paced, endless, group, micros};

const MAX: &str = "webhooks (PUTs back to back; delivered/s first→last receipt):";
const PACED: &str = "webhooks (PUTs paced; PUT answered → verified receipt):";
/// Give up waiting for the rest when nothing arrived for this long.
const STALL: Duration = Duration::from_secs(30);

/// Per task: the request numbers whose PUT was answered 2xx, and when.
type Appended = Arc<Vec<Mutex<Vec<(u64, Instant)>>>>;

/// What the receiver saw.
#[derive(Default)]
struct Receiver {
    secret: OnceLock<Secret>,
    /// resource path → first verified receipt.
    got: Mutex<HashMap<String, Instant>>,
    verified: AtomicU64,
    failed: AtomicU64,
    duplicates: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let verified = match (rx.secret.get(), WebhookHeaders::from_pairs(pairs)) {
        (Some(s), Ok(h)) => {
            let tolerance = Duration::from_secs(300);
            webhooks::verify(std::slice::from_ref(s), &h, &body, tolerance, unix_now()).is_ok()
        }
        _ => false,
    };
    let event: Option<Value> = serde_json::from_slice(&body).ok();
    let path = event
        .as_ref()
        .and_then(|e| e["data"]["resource_path"].as_str());
    let (true, Some(path)) = (verified, path) else {
        rx.failed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    };
    rx.verified.fetch_add(1, Ordering::Relaxed);
    match lock(&rx.got).entry(path.to_string()) {
        Entry::Vacant(v) => {
            v.insert(at);
        }
        Entry::Occupied(_) => {
            rx.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::NO_CONTENT
}

/// Twice: appends as fast as the clients can (the delivery rate is the figure), then paced at
/// `rate` events/s (latency without a growing backlog, if delivery keeps up). Returns the
/// successful writes.
pub async fn deliver(api: &Api, clients: usize, dur: Duration, rate: f64) -> anyhow::Result<u64> {
    let most = Goal {
        rate: Some(5e3),
        p99_ms: None,
    };
    let paced = Goal {
        rate: None,
        p99_ms: Some(500.0),
    };
    let max = round(api, clients, dur, None, (MAX, most)).await?;
    Ok(max + round(api, clients, dur, Some(rate), (PACED, paced)).await?)
}

/// Subscribes a fresh receiver to `audit.secret.*`, writes `bench/wh/{tag}/{task}/{n}` from
/// every client for `dur`, waits for the deliveries, prints, unsubscribes. Fails the run
/// unless every appended event arrived, verified. Returns the successful writes.
async fn round(
    api: &Api,
    clients: usize,
    dur: Duration,
    rate: Option<f64>,
    (label, goal): (&str, Goal),
) -> anyhow::Result<u64> {
    let tag = if rate.is_some() { "paced" } else { "max" };
    let rx = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx.clone());
    let (base, server) = serve(app).await?;
    let sub = json!({"url": format!("{base}/hook"), "events": ["audit.secret.*"]});
    let sub = api.admin(Method::POST, "/v1/webhooks", sub).await?;
    let whsec = sub["secret"].as_str().context("no webhook secret")?;
    let _ = rx.secret.set(Secret::parse(whsec)?);
    let sub_id = sub["id"].as_str().context("no webhook id")?.to_string();

    // Append: each task notes when each of its PUTs was answered.
    let (start, cpu0) = (Instant::now(), cpu_now());
    let appended: Appended = Arc::new((0..clients).map(|_| Mutex::default()).collect());
    let (http, t, log) = (api.http.clone(), api.clone(), appended.clone());
    let writes = drive_paced(clients, dur, rate, endless, move |task, n| {
        let (http, t, log) = (http.clone(), t.clone(), log.clone());
        async move {
            let url = format!("{}/v1/secrets/bench/wh/{tag}/{task}/{n}", t.base);
            let req = http.put(url).json(&json!({"value": format!("v-{n}")}));
            let resp = req.bearer_auth(&t.admin).send().await?;
            let ok = resp.status().is_success();
            resp.bytes().await?;
            if ok {
                lock(&log[task]).push((n, Instant::now()));
            }
            Ok(ok)
        }
    })
    .await?;
    let (sent, stopped) = (writes.ok() as usize, Instant::now());

    // Drain: until every event arrived, or nothing arrives for a while.
    let (mut seen, mut moved) = (0, Instant::now());
    loop {
        let now = lock(&rx.got).len();
        if now >= sent {
            break;
        }
        if now > seen {
            (seen, moved) = (now, Instant::now());
        } else if moved.elapsed() > STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cores_since(start, cpu0);
    let wall = start.elapsed().as_secs_f64();
    api.ok(
        Method::DELETE,
        &format!("/v1/webhooks/{sub_id}"),
        &api.admin,
        None,
    )
    .await?;
    server.abort();

    let got = std::mem::take(&mut *lock(&rx.got));
    let mut stats = Stats {
        cpu,
        ..Stats::default()
    };
    let mut missing = 0u64;
    for (task, log) in appended.iter().enumerate() {
        for (n, appended_at) in lock(log).iter() {
            match got.get(&format!("bench/wh/{tag}/{task}/{n}")) {
                Some(at) => stats
                    .lat
                    .push(micros(at.saturating_duration_since(*appended_at))),
                None => missing += 1,
            }
        }
    }
    stats.lat.sort_unstable();
    let (first, last) = (got.values().min(), got.values().max());
    stats.secs = match (first, last) {
        (Some(a), Some(b)) if b > a => (*b - *a).as_secs_f64(),
        _ => 1.0,
    };
    let (failed, dups) = (
        rx.failed.load(Ordering::Relaxed),
        rx.duplicates.load(Ordering::Relaxed),
    );
    stats.errors = missing + failed;
    stats.print(label, goal);
    // The backlog delivered after the PUTs stopped: delivery without the writers' load.
    let alone: Vec<&Instant> = got.values().filter(|at| **at > stopped).collect();
    let alone_rate = match (alone.len(), last) {
        (n, Some(l)) if n > 1 && *l > stopped => n as f64 / (*l - stopped).as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "         appended {} events in {:.1} s ({}/s, PUT p50 {:.2} ms, {} errors); whole phase \
         {wall:.1} s; {} delivered after the PUTs stopped ({}/s); verified {} of {} sent ({} \
         signatures verified, {dups} duplicates, {failed} refused, {missing} missing)",
        group(sent as u64),
        writes.secs,
        group(writes.rate() as u64),
        writes.pct_ms(50.0),
        writes.errors,
        group(alone.len() as u64),
        group(alone_rate as u64),
        group(got.len() as u64),
        group(sent as u64),
        group(rx.verified.load(Ordering::Relaxed)),
    );
    ensure!(
        got.len() == sent && missing == 0 && failed == 0,
        "webhooks: {} of {sent} events verified ({missing} missing, {failed} refused)",
        got.len()
    );
    Ok(sent as u64)
}
