//! `GET /metrics` (on the API listener or on `metrics.listen`) and the middleware that counts
//! and times every API request by its route template.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Counts and times a request under its route template (`/v1/leases/{id}`; `unmatched` for
/// the fallback), never its path.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    metrics.http_request(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}

/// `/metrics` for the API router: present when metrics are on and no separate listener is
/// configured (there it answers the fallback's 404).
pub fn api_routes(state: &AppState) -> Router<AppState> {
    let m = &state.config.metrics;
    if m.enabled && m.listen.is_empty() {
        Router::new().route("/metrics", get(scrape))
    } else {
        Router::new()
    }
}

/// The Prometheus text: the daemon's families, then the gauges read from the store.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let expected = &state.config.metrics.bearer_token.0;
    if !expected.is_empty() && !bearer_matches(&headers, expected) {
        return ApiError::Unauthorized.into_response();
    }
    let store = state.store.clone();
    let snapshot = match tokio::task::spawn_blocking(move || store.metrics_snapshot()).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the store");
            None
        }
        Err(_) => None,
    };
    let body = state.metrics.render(snapshot.as_ref());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// Whether the request carries `Authorization: Bearer <expected>` (compared in constant time).
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts the separate metrics listener when metrics are on and `metrics.listen` is set:
/// `listener` when given (tests), else one bound to `metrics.listen`. The task ends once
/// `stop` turns true; await it before the store is closed (it holds a store handle).
pub async fn start_separately(
    state: &AppState,
    listener: Option<tokio::net::TcpListener>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let m = &state.config.metrics;
    if !m.enabled || m.listen.is_empty() {
        return Ok(None);
    }
    let listener = match listener {
        Some(l) => l,
        None => tokio::net::TcpListener::bind(&m.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (metrics.listen): {e}", m.listen))?,
    };
    tracing::info!(addr = %listener.local_addr()?, "metrics are served at /metrics");
    Ok(Some(tokio::spawn(serve_separately(
        state.clone(),
        listener,
        stop.clone(),
    ))))
}

/// Serves `/metrics` alone on its own listener until `stop` turns true; everything else
/// there is a 404.
pub async fn serve_separately(
    state: AppState,
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .with_state(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the metrics listener failed");
    }
}
