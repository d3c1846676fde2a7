//! A local webhook receiver for tests: verifies every signature with the Standard Webhooks
//! verifier, records what arrived, and misbehaves on demand (5xx, 410, redirects, hangs).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use webhooks::{Secret, WebhookHeaders, verify};

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// Parsed body.
    pub body: Value,
    /// Raw body.
    pub raw: String,
    /// Did it verify with the receiver's secrets?
    pub verified: bool,
    /// The signature header.
    pub signature: String,
    /// The timestamp header.
    pub timestamp: String,
    /// `user-agent`.
    pub user_agent: String,
    /// The status answered.
    pub answered: u16,
}

/// How to answer the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200.
    Ok,
    /// This status for the next n requests, then 200.
    FailNext(u16, u32),
    /// Always this status.
    Always(u16),
    /// Never answer (until the client gives up).
    Hang,
}

#[derive(Default)]
struct Inner {
    secrets: Vec<Secret>,
    received: Vec<Received>,
    mode: Option<Mode>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mode = inner.lock().unwrap().mode.unwrap_or(Mode::Ok);
    if mode == Mode::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let (status, next) = match mode {
        Mode::Ok | Mode::Hang => (200, mode),
        Mode::FailNext(s, n) if n > 1 => (s, Mode::FailNext(s, n - 1)),
        Mode::FailNext(s, _) => (s, Mode::Ok),
        Mode::Always(s) => (s, mode),
    };
    let mut g = inner.lock().unwrap();
    g.mode = Some(next);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = WebhookHeaders::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .is_ok_and(|h| verify(&g.secrets, &h, &body, Duration::from_secs(300), now).is_ok());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    g.received.push(Received {
        id: get("webhook-id"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).to_string(),
        verified,
        signature: get("webhook-signature"),
        timestamp: get("webhook-timestamp"),
        user_agent: get("user-agent"),
        answered: status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    if (300..400).contains(&status) {
        return (code, [("location", "http://127.0.0.1:1/elsewhere")]).into_response();
    }
    code.into_response()
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1:0.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, inner }
    }

    /// Sets the secrets signatures are verified with.
    pub fn set_secrets(&self, secrets: &[&str]) {
        self.inner.lock().unwrap().secrets =
            secrets.iter().map(|s| Secret::parse(s).unwrap()).collect();
    }

    /// Sets how the next requests are answered.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The distinct seqs delivered with a 2xx answer, in arrival order (first arrival).
    pub fn delivered_seqs(&self) -> Vec<u64> {
        let mut seen = std::collections::HashSet::new();
        self.received()
            .iter()
            .filter(|r| r.answered < 300)
            .filter_map(|r| r.body["data"]["seq"].as_u64())
            .filter(|s| seen.insert(*s))
            .collect()
    }

    /// Waits (bounded) until `pred` holds for what arrived.
    pub async fn wait_for(
        &self,
        within: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if pred(&got) || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
