//! A fake Discord REST API on 127.0.0.1 that records every call and fails on demand.
//!
//! Serves the three routes the Discord channel uses, under `/api/v10/`:
//! `GET users/@me`, `POST channels/{id}/messages` and
//! `PATCH channels/{id}/messages/{mid}`. Answers 401 for a wrong token, 404 for
//! a channel or message it does not know, and 429 or 500 for the next N calls
//! when asked to.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The bot's username as the fake reports it.
pub const BOT_NAME: &str = "latchkey-test-bot";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// How the next calls should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    RateLimited,
    ServerError,
}

#[derive(Default)]
struct Inner {
    token: String,
    channels: HashSet<String>,
    calls: Vec<Call>,
    failure: Option<(Failure, usize)>,
    next_id: u64,
    /// (channel id, message id) → message.
    messages: HashMap<(String, String), Value>,
}

type Shared = Arc<Mutex<Inner>>;

/// Handle to a running fake; the server stops with the test's runtime.
pub struct FakeDiscord {
    /// Base URL to give the channel as `api_url`.
    pub url: String,
    inner: Shared,
}

impl FakeDiscord {
    /// Starts a fake that accepts `token` and knows `channels`.
    pub async fn start(token: &str, channels: &[u64]) -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            token: format!("Bot {token}"),
            channels: channels.iter().map(u64::to_string).collect(),
            next_id: 1_300_000_000_000_000_000,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/v10/users/@me", get(current_user))
            .route("/api/v10/channels/{id}/messages", post(create_message))
            .route("/api/v10/channels/{id}/messages/{mid}", patch(edit_message))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Makes the next `count` calls fail with `failure`.
    pub fn fail_next(&self, failure: Failure, count: usize) {
        self.inner.lock().unwrap().failure = Some((failure, count));
    }

    /// The stored message, as last posted or edited.
    pub fn message(&self, channel_id: &str, message_id: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        let key = (channel_id.to_owned(), message_id.to_owned());
        inner.messages.get(&key).cloned()
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

/// Records the call, then answers with an injected failure or a wrong-token
/// 401 if there is one to give.
fn record(
    inner: &mut Inner,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
) -> Option<Response> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    inner.calls.push(Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: authorization.clone(),
        body,
    });
    if let Some((failure, left)) = inner.failure.take() {
        if left > 1 {
            inner.failure = Some((failure, left - 1));
        }
        return Some(match failure {
            Failure::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": false})),
            )
                .into_response(),
            Failure::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error"),
        });
    }
    if authorization.as_deref() != Some(inner.token.as_str()) {
        return Some(error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"));
    }
    None
}

async fn current_user(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = record(&mut inner, method, &uri, &headers, Value::Null) {
        return response;
    }
    Json(json!({
        "id": "1100000000000000001",
        "username": BOT_NAME,
        "discriminator": "0000",
        "global_name": null,
        "avatar": null,
        "bot": true,
        "verified": true,
        "flags": 0,
        "mfa_enabled": false,
    }))
    .into_response()
}

async fn create_message(
    State(inner): State<Shared>,
    Path(channel_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = record(&mut inner, method, &uri, &headers, body.clone()) {
        return response;
    }
    if !inner.channels.contains(&channel_id) {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    inner.next_id += 1;
    let id = inner.next_id.to_string();
    let message = message_json(&id, &channel_id, &body);
    inner.messages.insert((channel_id, id), message.clone());
    Json(message).into_response()
}

async fn edit_message(
    State(inner): State<Shared>,
    Path((channel_id, message_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Some(response) = record(&mut inner, method, &uri, &headers, body.clone()) {
        return response;
    }
    if !inner.channels.contains(&channel_id) {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    let key = (channel_id.clone(), message_id.clone());
    if !inner.messages.contains_key(&key) {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    }
    let message = message_json(&message_id, &channel_id, &body);
    inner.messages.insert(key, message.clone());
    Json(message).into_response()
}

/// A message object shaped like Discord's, with the fields the body set.
fn message_json(id: &str, channel_id: &str, body: &Value) -> Value {
    json!({
        "id": id,
        "channel_id": channel_id,
        "type": 0,
        "author": {"id": "1100000000000000001", "username": BOT_NAME, "bot": true},
        "content": body["content"],
        "components": body["components"],
        "timestamp": "2026-05-01T12:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "flags": 0,
    })
}
