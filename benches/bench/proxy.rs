//! Proxy overhead: a local upstream that answers only with the injected credential, called
//! directly (with the credential), through a bare forwarder (the floor any HTTP proxy meets on
//! this machine: one more HTTP exchange per call, no auth and no store), and through
//! `POST /v1/proxy/up/get` (with a proxy lease).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, serve};
use crate::stats::{Goal, Stats, drive, endless};

const DIRECT: &str = "direct  (GET upstream /items/1 + credential, no daemon";
const FLOOR: &str = "forward (bare axum → reqwest forwarder, no auth, no store";
const PROXY: &str = "proxy   (POST /v1/proxy/up/get: lease use, upstream, audit";
const TOKEN: &str = "bench-upstream-token-7f3a";
/// What the upstream answers.
const OK: &[u8] = br#"{"ok":true}"#;

async fn item(State(want): State<Arc<String>>, headers: HeaderMap) -> Response {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if auth != Some(want.as_bytes()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], OK).into_response()
}

/// The bare forwarder's state: where to forward and the credential to add.
#[derive(Clone)]
struct Forwarder {
    http: reqwest::Client,
    url: Arc<String>,
    bearer: Arc<String>,
}

/// Parses the agent's JSON call, calls the upstream with the credential, wraps its answer as
/// the proxy does (status and JSON body); nothing else.
async fn forward(State(f): State<Forwarder>, body: Bytes) -> Response {
    let Ok(_call) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let sent = f
        .http
        .get(f.url.as_str())
        .header(header::AUTHORIZATION, f.bearer.as_str());
    let Ok(resp) = sent.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = resp.status().as_u16();
    let Ok(bytes) = resp.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    axum::Json(json!({"status": status, "body": body})).into_response()
}

/// Serves the bare forwarder on `rt` (the daemon's runtime, so it gets what the daemon gets).
async fn start_forwarder(
    rt: &tokio::runtime::Handle,
    f: Forwarder,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new()
        .route("/forward", axum::routing::post(forward))
        .with_state(f);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = rt.spawn(async move {
        match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => {
                let _ = tx.send(listener.local_addr().map_err(anyhow::Error::from));
                let _ = axum::serve(listener, app).await;
            }
            Err(e) => {
                let _ = tx.send(Err(e.into()));
            }
        }
    });
    let addr = rx.await.context("the forwarder did not start")??;
    Ok((format!("http://{addr}/forward"), server))
}

/// Direct, through the bare forwarder, then proxied, each from every client for `dur`; fails
/// the run if an answer lacks the upstream's `{"ok":true}`. Returns the audited proxy calls
/// (two events each).
pub async fn overhead(
    api: &Api,
    agent: &str,
    clients: usize,
    dur: Duration,
    daemon_rt: &tokio::runtime::Handle,
) -> anyhow::Result<u64> {
    let bearer = Arc::new(format!("Bearer {TOKEN}"));
    let app = axum::Router::new()
        .route("/items/{id}", axum::routing::get(item))
        .with_state(bearer.clone());
    let (upstream, server) = serve(app).await?;
    api.put_secret("bench/up-token", TOKEN).await?;
    let service = json!({"service": {"name": "up", "base_url": upstream, "secret": "bench/up-token",
        "allow_private": true,
        "inject": {"kind": "header", "name": "authorization", "template": "Bearer {secret}"},
        "endpoints": {"get": {"method": "GET", "path": "/items/{id}"}}}});
    api.admin(Method::POST, "/v1/services", service).await?;
    let body = json!({"path": "/bench/up-token", "action": "proxy", "uses": 1_000_000, "ttl_seconds": 3600});
    let lease = api.lease(agent, body, "active").await?;
    let lease_id = lease["id"].as_str().context("lease without id")?;

    let call = json!({"lease_id": lease_id, "params": {"id": "1"}});
    let forwarder = Forwarder {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
        url: Arc::new(format!("{upstream}/items/1")),
        bearer: bearer.clone(),
    };
    let (floor_url, floor_server) = start_forwarder(daemon_rt, forwarder).await?;
    let runs = Runs {
        floor: Arc::new(floor_url),
        http: api.http.clone(),
        direct: Arc::new(format!("{upstream}/items/1")),
        bearer,
        proxy: Arc::new(format!("{}/v1/proxy/up/get", api.base)),
        key: Arc::new(agent.to_string()),
        call: Bytes::from(serde_json::to_vec(&call)?),
        wrong: Arc::new(AtomicU64::new(0)),
    };
    let mut calls = 0;
    // As asked (all clients), then one client: the overhead without queueing.
    // As asked (all clients), then one client: the overhead without queueing (its throughput
    // is latency-bound, so no throughput target there).
    let one = dur.min(Duration::from_secs(2));
    for (n, dur, tag, all) in [(clients, dur, "):", true), (1, one, ", 1 client):", false)] {
        let direct = runs.direct(n, dur).await?;
        direct.print(&format!("{DIRECT}{tag}"), Goal::default());
        let floor = runs.posted(runs.floor.as_str(), n, dur).await?;
        floor.print(&format!("{FLOOR}{tag}"), Goal::default());
        let proxied = runs.posted(runs.proxy.as_str(), n, dur).await?;
        let goal = Goal {
            rate: all.then(|| direct.rate() / 2.0),
            p99_ms: None,
        };
        proxied.print(&format!("{PROXY}{tag}"), goal);
        let extra = proxied.pct_ms(50.0) - direct.pct_ms(50.0);
        let floor_extra = floor.pct_ms(50.0) - direct.pct_ms(50.0);
        let mut line = format!(
            "{:<63} p50 {extra:+.2} ms  target ≤ 1 ms → ratio {:.2}×  (bare forwarder {floor_extra:+.2} ms)",
            format!("proxy overhead (proxy − direct{tag}"),
            1.0 / extra.max(0.001),
        );
        if all {
            let share = proxied.rate() / direct.rate();
            line += &format!(
                "; throughput {:.0} % of direct  target ≥ 50 % → ratio {:.2}×  \
                 (bare forwarder {:.0} % of direct; proxy {:.0} % of the forwarder)",
                100.0 * share,
                share / 0.5,
                100.0 * floor.rate() / direct.rate(),
                100.0 * proxied.rate() / floor.rate(),
            );
        }
        println!("{line}");
        calls += proxied.ok();
    }
    server.abort();
    floor_server.abort();
    let wrong = runs.wrong.load(Ordering::Relaxed);
    ensure!(
        wrong == 0,
        "{wrong} answers lacked the upstream's {{\"ok\":true}}"
    );
    Ok(calls)
}

/// What the two kinds of calls need.
#[derive(Clone)]
struct Runs {
    http: reqwest::Client,
    direct: Arc<String>,
    bearer: Arc<String>,
    proxy: Arc<String>,
    /// The bare forwarder.
    floor: Arc<String>,
    key: Arc<String>,
    /// The proxy call's JSON body.
    call: Bytes,
    /// Answers without the upstream's `{"ok":true}`.
    wrong: Arc<AtomicU64>,
}

impl Runs {
    /// `GET upstream/items/1` with the credential.
    async fn direct(&self, clients: usize, dur: Duration) -> anyhow::Result<Stats> {
        let r = self.clone();
        drive(clients, dur, endless, move |_, _| {
            let r = r.clone();
            async move {
                let req = r.http.get(r.direct.as_str());
                let resp = req
                    .header(header::AUTHORIZATION, r.bearer.as_str())
                    .send()
                    .await?;
                let ok = resp.status().is_success();
                Ok(r.check(ok, ok && resp.bytes().await?.as_ref() == OK))
            }
        })
        .await
    }

    /// The proxy call (agent key, JSON body with the lease) sent to `url`: the daemon's
    /// `POST /v1/proxy/up/get` or the bare forwarder.
    async fn posted(&self, url: &str, clients: usize, dur: Duration) -> anyhow::Result<Stats> {
        let r = self.clone();
        let url = Arc::new(url.to_string());
        drive(clients, dur, endless, move |_, _| {
            let (r, url) = (r.clone(), url.clone());
            async move {
                let req = r.http.post(url.as_str()).bearer_auth(r.key.as_str());
                let req = req.header(header::CONTENT_TYPE, "application/json");
                let resp = req.body(r.call.clone()).send().await?;
                let ok = resp.status().is_success();
                let answer: Value =
                    serde_json::from_slice(&resp.bytes().await?).unwrap_or_default();
                Ok(r.check(ok, answer["status"] == 200 && answer["body"]["ok"] == true))
            }
        })
        .await
    }

    /// A 2xx answer must be right: counted as wrong (and as an error) otherwise.
    fn check(&self, ok: bool, right: bool) -> bool {
        if ok && !right {
            self.wrong.fetch_add(1, Ordering::Relaxed);
        }
        ok && right
    }
}
