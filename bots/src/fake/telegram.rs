//! A fake Telegram Bot API server for tests: it listens on 127.0.0.1, records every call,
//! keeps the messages the bot sent (as last edited), serves `getUpdates` from a queue with
//! Telegram's offset semantics and long polling, and answers 429 / 500 / any error for the
//! next calls of a method when asked to.
//!
//! Serves `POST /bot{token}/{method}` (JSON bodies; multipart for setWebhook, which teloxide
//! sends as a form): getMe, sendMessage, editMessageText, answerCallbackQuery, getUpdates,
//! setWebhook, deleteWebhook. Any other token gets 401 "Unauthorized"; editing a message the
//! fake never sent gets 400 "message to edit not found".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The token the fake accepts.
pub const TOKEN: &str = "7654321:LkTgSecret-token_for-tests";
/// The bot's username as the fake reports it.
pub const BOT_NAME: &str = "latchkey_bot";
/// The date the fake puts on messages (2026-01-01T00:00:00Z).
pub const DATE: i64 = 1_767_225_600;
/// Longest a getUpdates call is held open, whatever `timeout` it asks for, so a test's
/// shutdown never waits on the fake.
const MAX_HOLD: Duration = Duration::from_secs(2);
/// The lock is only poisoned if a test already panicked while holding it.
const POISONED: &str = "fake Telegram state poisoned by an earlier panic";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Bot API method, e.g. `sendMessage`.
    pub method: String,
    /// Whether the request carried the accepted token.
    pub token_ok: bool,
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Scripted answers per method (`*` for any method), used up in order.
    failures: HashMap<String, VecDeque<(StatusCode, Value)>>,
    /// Updates not yet confirmed by an offset above their id.
    updates: VecDeque<Value>,
    next_message_id: i64,
    /// (chat id, message id) → the message as last sent or edited.
    messages: BTreeMap<(i64, i64), Value>,
}

type Shared = Arc<(Mutex<Inner>, Notify)>;

/// Handle to a running fake; the server stops with the test's runtime.
pub struct FakeTelegram {
    /// Base URL to give the channel as its API URL (the daemon's `channels.telegram.api_url`).
    pub url: String,
    inner: Shared,
}

impl FakeTelegram {
    /// Starts a fake on a free port of 127.0.0.1; it stops with the test's runtime.
    ///
    /// # Panics
    ///
    /// If no port of 127.0.0.1 can be bound (test set-up cannot go on without one).
    pub async fn start() -> Self {
        let inner: Shared = Arc::new((
            Mutex::new(Inner {
                next_message_id: 100,
                ..Inner::default()
            }),
            Notify::new(),
        ));
        let app = Router::new()
            .route("/{bot}/{method}", post(handle))
            .with_state(inner.clone());
        let url = super::serve(app, "fake Telegram").await;
        Self { url, inner }
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.0.lock().expect(POISONED).calls.clone()
    }

    /// Calls to one method, in order (failed ones included).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Bodies of the calls to one method that succeeded, in order.
    pub fn bodies(&self, method: &str) -> Vec<Value> {
        self.calls_to(method)
            .into_iter()
            .filter(|c| c.status == 200)
            .map(|c| c.body)
            .collect()
    }

    /// Answers the next `n` calls of `method` (`*`: any method) with `status` and Telegram's
    /// error body. Failures for the method itself are used before those for `*`.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100–999).
    pub fn fail_next(
        &self,
        method: &str,
        n: usize,
        status: u16,
        description: &str,
        parameters: Option<Value>,
    ) {
        let mut body = json!({"ok": false, "error_code": status, "description": description});
        if let Some(p) = parameters {
            body["parameters"] = p;
        }
        let status = StatusCode::from_u16(status).expect("fake Telegram: a valid HTTP status");
        let mut inner = self.inner.0.lock().expect(POISONED);
        inner
            .failures
            .entry(method.to_string())
            .or_default()
            .extend((0..n).map(|_| (status, body.clone())));
    }

    /// The next `n` calls of `method` get 429 "retry after 1" (`parameters.retry_after`).
    pub fn rate_limit_next(&self, method: &str, n: usize) {
        let params = json!({"retry_after": 1});
        self.fail_next(
            method,
            n,
            429,
            "Too Many Requests: retry after 1",
            Some(params),
        );
    }

    /// The next `n` calls of `method` get 500. (teloxide waits 10 s after a 5xx before it
    /// reports the error, so tests use this sparingly.)
    pub fn server_error_next(&self, method: &str, n: usize) {
        self.fail_next(method, n, 500, "Internal Server Error", None);
    }

    /// Queues an update for getUpdates; a waiting long poll returns at once.
    pub fn push_update(&self, update: Value) {
        self.inner
            .0
            .lock()
            .expect(POISONED)
            .updates
            .push_back(update);
        self.inner.1.notify_waiters();
    }

    /// Updates queued and not yet confirmed (an update is confirmed when a getUpdates call
    /// asks for an offset above its id, as Telegram does).
    pub fn unconfirmed(&self) -> usize {
        self.inner.0.lock().expect(POISONED).updates.len()
    }

    /// Every message the bot sent, as last sent or edited, with its chat and id.
    pub fn messages(&self) -> Vec<Value> {
        self.inner
            .0
            .lock()
            .expect(POISONED)
            .messages
            .values()
            .cloned()
            .collect()
    }

    /// One message, as last sent or edited.
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        let inner = self.inner.0.lock().expect(POISONED);
        inner.messages.get(&(chat_id, message_id)).cloned()
    }
}

async fn handle(
    State(inner): State<Shared>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = match content_type.split_once("boundary=") {
        Some((_, boundary)) => parse_multipart(&body, boundary),
        None => serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    // Method names are case-insensitive; teloxide sends `SendMessage`.
    let method = canonical(&method);
    let token_ok = bot == format!("bot{TOKEN}");
    if method == "getUpdates" && token_ok {
        return get_updates(&inner, body).await;
    }
    let mut g = inner.0.lock().expect(POISONED);
    let (status, answer) = answer(&mut g, &method, token_ok, &body);
    g.calls.push(Call {
        method,
        token_ok,
        body,
        at: Instant::now(),
        status: status.as_u16(),
    });
    (status, Json(answer)).into_response()
}

/// A scripted failure for `method`, if one is queued.
fn scripted(inner: &mut Inner, method: &str) -> Option<(StatusCode, Value)> {
    for key in [method, "*"] {
        if let Some(f) = inner.failures.get_mut(key).and_then(VecDeque::pop_front) {
            return Some(f);
        }
    }
    None
}

fn answer(inner: &mut Inner, method: &str, token_ok: bool, body: &Value) -> (StatusCode, Value) {
    if !token_ok {
        let err = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, err);
    }
    if let Some(f) = scripted(inner, method) {
        return f;
    }
    let result = match method {
        "getMe" => json!({
            "id": 42, "is_bot": true, "first_name": "Latchkey", "username": BOT_NAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        }),
        "sendMessage" => {
            inner.next_message_id += 1;
            let m = message(inner.next_message_id, body);
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            inner
                .messages
                .insert((chat, inner.next_message_id), m.clone());
            m
        }
        "editMessageText" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let id = body["message_id"].as_i64().unwrap_or(0);
            if !inner.messages.contains_key(&(chat, id)) {
                let err = json!({"ok": false, "error_code": 400,
                    "description": "Bad Request: message to edit not found"});
                return (StatusCode::BAD_REQUEST, err);
            }
            let mut m = message(id, body);
            m["edit_date"] = json!(DATE + 60);
            inner.messages.insert((chat, id), m.clone());
            m
        }
        "answerCallbackQuery" | "setWebhook" | "deleteWebhook" => json!(true),
        _ => {
            let err = json!({"ok": false, "error_code": 404, "description": "Not Found"});
            return (StatusCode::NOT_FOUND, err);
        }
    };
    (StatusCode::OK, json!({"ok": true, "result": result}))
}

/// getUpdates as Telegram does it: updates below `offset` are confirmed and dropped; the
/// rest are returned at once, or the call waits up to `timeout` seconds for one to arrive.
async fn get_updates(inner: &Shared, body: Value) -> Response {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0)).min(MAX_HOLD);
    let until = tokio::time::Instant::now() + wait;
    let mut recorded = false;
    loop {
        let notified = inner.1.notified();
        {
            let mut g = inner.0.lock().expect(POISONED);
            if !recorded {
                recorded = true;
                let failure = scripted(&mut g, "getUpdates");
                g.calls.push(Call {
                    method: "getUpdates".into(),
                    token_ok: true,
                    body: body.clone(),
                    at: Instant::now(),
                    status: failure.as_ref().map_or(200, |f| f.0.as_u16()),
                });
                if let Some((status, err)) = failure {
                    return (status, Json(err)).into_response();
                }
            }
            g.updates
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            if !g.updates.is_empty() || tokio::time::Instant::now() >= until {
                let result: Vec<Value> = g.updates.iter().cloned().collect();
                return Json(json!({"ok": true, "result": result})).into_response();
            }
        }
        let _ = tokio::time::timeout_at(until, notified).await;
    }
}

/// A multipart form of text fields as a JSON object; values that are JSON (teloxide sends
/// arrays that way) are parsed, others kept as strings.
fn parse_multipart(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        fields.insert(name.to_owned(), parsed);
    }
    Value::Object(fields)
}

/// `SendMessage` → `sendMessage`, as the Bot API documents the names.
fn canonical(method: &str) -> String {
    let mut chars = method.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

/// The message Telegram would return for a send or an edit.
pub fn message(message_id: i64, body: &Value) -> Value {
    let chat_id = body["chat_id"].as_i64().unwrap_or(0);
    let chat = if chat_id < 0 {
        json!({"id": chat_id, "title": "Approvers", "type": "supergroup"})
    } else {
        json!({"id": chat_id, "first_name": "Alice", "type": "private"})
    };
    let mut m = json!({
        "message_id": message_id,
        "from": {"id": 42, "is_bot": true, "first_name": "Latchkey", "username": BOT_NAME},
        "chat": chat,
        "date": DATE,
        "text": body["text"],
    });
    // Telegram omits an empty keyboard in what it returns.
    let has_buttons = body["reply_markup"]["inline_keyboard"]
        .as_array()
        .is_some_and(|rows| !rows.is_empty());
    if has_buttons {
        m["reply_markup"] = body["reply_markup"].clone();
    }
    m
}

/// A tap on an inline button of `msg` (a message as the fake returned it) by a user,
/// exactly as Telegram delivers a `callback_query` update.
pub fn tap_update(
    update_id: i64,
    query_id: &str,
    user_id: i64,
    username: &str,
    msg: &Value,
    data: &str,
) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": {"id": user_id, "is_bot": false, "first_name": username,
                     "username": username, "language_code": "en"},
            "message": msg,
            "chat_instance": "-8923743982734",
            "data": data
        }
    })
}
