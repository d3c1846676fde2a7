//! A fake Discord REST API server for tests: it listens on 127.0.0.1, records every call
//! (with its `Authorization` header), keeps the messages the bot posted (as last edited), and
//! answers 429 (with `retry_after`) or 500 for the next calls of one HTTP method when asked to.
//!
//! Serves, under `/api/v10/`: `GET users/@me`, `POST channels/{id}/messages` and
//! `PATCH channels/{id}/messages/{mid}`. Answers 401 for a token other than [`TOKEN`] and
//! 404 for a channel or message it does not know.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The bot token the fake accepts.
pub const TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.LkDcSecret.discord-token-for-tests";
/// The bot's username as the fake reports it.
pub const BOT_NAME: &str = "latchkey-test-bot";
/// The lock is only poisoned if a test already panicked while holding it.
const POISONED: &str = "fake Discord state poisoned by an earlier panic";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET`, `POST` or `PATCH`.
    pub method: String,
    /// The request path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// The `Authorization` header as sent, e.g. `Bot <token>`.
    pub authorization: Option<String>,
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status the fake answered.
    pub status: u16,
}

/// How the next calls should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `retry_after: 1.0`.
    RateLimited,
    /// 500.
    ServerError,
}

#[derive(Default)]
struct Inner {
    token: String,
    channels: HashSet<String>,
    calls: Vec<Call>,
    /// Scripted failures per HTTP method (`*` for any), used up in order.
    failures: HashMap<String, VecDeque<Failure>>,
    next_id: u64,
    /// (channel id, message id) → message.
    messages: BTreeMap<(String, String), Value>,
}

type Shared = Arc<Mutex<Inner>>;

/// Handle to a running fake; the server stops with the test's runtime.
pub struct FakeDiscord {
    /// Base URL to give the channel as its API URL (the daemon's `channels.discord.api_url`).
    pub url: String,
    inner: Shared,
}

impl FakeDiscord {
    /// Starts a fake on a free port of 127.0.0.1 that accepts [`TOKEN`] and knows `channels`;
    /// it stops with the test's runtime.
    ///
    /// # Panics
    ///
    /// If no port of 127.0.0.1 can be bound (test set-up cannot go on without one).
    pub async fn start(channels: &[u64]) -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            token: format!("Bot {TOKEN}"),
            channels: channels.iter().map(u64::to_string).collect(),
            next_id: 1_300_000_000_000_000_000,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/v10/users/@me", get(current_user))
            .route("/api/v10/channels/{id}/messages", post(create_message))
            .route("/api/v10/channels/{id}/messages/{mid}", patch(edit_message))
            .with_state(inner.clone());
        let url = super::serve(app, "fake Discord").await;
        Self { url, inner }
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect(POISONED).calls.clone()
    }

    /// Calls with one HTTP method, in order (failed ones included).
    pub fn calls_with(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Makes the next `count` calls with HTTP `method` (`*`: any) fail with `failure`, after
    /// the failures already queued. Failures for the method itself are used before those for
    /// `*`; a call with a wrong token still uses one up but is answered 401.
    pub fn fail_next(&self, method: &str, failure: Failure, count: usize) {
        let mut inner = self.inner.lock().expect(POISONED);
        inner
            .failures
            .entry(method.to_string())
            .or_default()
            .extend((0..count).map(|_| failure));
    }

    /// Every message posted, as last posted or edited.
    pub fn messages(&self) -> Vec<Value> {
        self.inner
            .lock()
            .expect(POISONED)
            .messages
            .values()
            .cloned()
            .collect()
    }

    /// The stored message, as last posted or edited.
    pub fn message(&self, channel_id: &str, message_id: &str) -> Option<Value> {
        let inner = self.inner.lock().expect(POISONED);
        let key = (channel_id.to_owned(), message_id.to_owned());
        inner.messages.get(&key).cloned()
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

/// Records the call and answers it: `f` makes the answer unless the token is wrong or a
/// failure is scripted.
fn serve(
    inner: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
    f: impl FnOnce(&mut Inner) -> Response,
) -> Response {
    let mut inner = inner.lock().expect(POISONED);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = method.to_string();
    let failure = [method.as_str(), "*"]
        .into_iter()
        .find_map(|k| inner.failures.get_mut(k).and_then(VecDeque::pop_front));
    let response = if authorization.as_deref() != Some(inner.token.as_str()) {
        error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    } else {
        match failure {
            Some(Failure::RateLimited) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("x-ratelimit-scope", "user")],
                Json(json!({"message": "You are being rate limited.", "retry_after": 1.0, "global": false})),
            )
                .into_response(),
            Some(Failure::ServerError) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                0,
                "500: Internal Server Error",
            ),
            None => f(&mut inner),
        }
    };
    inner.calls.push(Call {
        method,
        path: uri.path().to_owned(),
        authorization,
        body,
        at: Instant::now(),
        status: response.status().as_u16(),
    });
    response
}

async fn current_user(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve(&inner, method, &uri, &headers, Value::Null, |_| {
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
    })
}

async fn create_message(
    State(inner): State<Shared>,
    Path(channel_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    serve(&inner, method, &uri, &headers, body.clone(), |inner| {
        if !inner.channels.contains(&channel_id) {
            return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
        }
        inner.next_id += 1;
        let id = inner.next_id.to_string();
        let message = message_json(&id, &channel_id, &body);
        inner.messages.insert((channel_id, id), message.clone());
        Json(message).into_response()
    })
}

async fn edit_message(
    State(inner): State<Shared>,
    Path((channel_id, message_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    serve(&inner, method, &uri, &headers, body.clone(), |inner| {
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
    })
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
        "allowed_mentions": body["allowed_mentions"],
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
