//! A fake Telegram Bot API on 127.0.0.1 that records every call and fails on demand.
//!
//! Serves `POST /bot{token}/{method}` (JSON bodies; multipart for setWebhook,
//! which teloxide always sends as a form) for the methods the channel uses: getMe, sendMessage, editMessageText, answerCallbackQuery, getUpdates
//! (queued updates are returned once, never waited for), setWebhook and
//! deleteWebhook. Answers 401 "Unauthorized" for any other token, and a
//! scripted error (429, 500, any 400) for the next N calls when asked to.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The token the fake accepts.
pub const TOKEN: &str = "123456:TEST-token_abcdef";
/// The bot's username as the fake reports it.
pub const BOT_NAME: &str = "latchkey_bot";
/// The date the fake puts on messages (2026-01-01T00:00:00Z).
const DATE: i64 = 1_767_225_600;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Bot API method, e.g. `sendMessage`.
    pub method: String,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Scripted answers for the next calls, used up in order.
    failures: VecDeque<(StatusCode, Value)>,
    updates: Vec<Value>,
    next_message_id: i64,
}

type Shared = Arc<Mutex<Inner>>;

/// Handle to a running fake; the server stops with the test's runtime.
pub struct FakeTelegram {
    /// Base URL to give the channel as `api_url`.
    pub url: String,
    inner: Shared,
}

impl FakeTelegram {
    /// Starts a fake on a free port.
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            next_message_id: 100,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/{bot}/{method}", post(handle))
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

    /// Bodies of the calls to one method, in order.
    pub fn bodies(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .map(|c| c.body)
            .collect()
    }

    /// Answers the next `n` calls with `status` and Telegram's error body.
    pub fn fail_next(&self, n: usize, status: u16, description: &str, parameters: Option<Value>) {
        let mut body = json!({"ok": false, "error_code": status, "description": description});
        if let Some(p) = parameters {
            body["parameters"] = p;
        }
        let status = StatusCode::from_u16(status).unwrap();
        let mut inner = self.inner.lock().unwrap();
        inner
            .failures
            .extend((0..n).map(|_| (status, body.clone())));
    }

    /// The next `n` calls get 429 "retry after 1".
    pub fn rate_limit_next(&self, n: usize) {
        let params = json!({"retry_after": 1});
        self.fail_next(n, 429, "Too Many Requests: retry after 1", Some(params));
    }

    /// The next `n` calls get 500.
    pub fn server_error_next(&self, n: usize) {
        self.fail_next(n, 500, "Internal Server Error", None);
    }

    /// Queues an update for the next getUpdates call.
    pub fn push_update(&self, update: Value) {
        self.inner.lock().unwrap().updates.push(update);
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
    let mut inner = inner.lock().unwrap();
    inner.calls.push(Call {
        method: method.clone(),
        body: body.clone(),
    });
    if bot != format!("bot{TOKEN}") {
        let err = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, Json(err)).into_response();
    }
    if let Some((status, err)) = inner.failures.pop_front() {
        return (status, Json(err)).into_response();
    }
    let result = match method.as_str() {
        "getMe" => json!({
            "id": 42, "is_bot": true, "first_name": "Latchkey", "username": BOT_NAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        }),
        "sendMessage" => {
            inner.next_message_id += 1;
            message(inner.next_message_id, &body)
        }
        "editMessageText" => {
            let mut m = message(body["message_id"].as_i64().unwrap_or(0), &body);
            m["edit_date"] = json!(DATE + 60);
            m
        }
        "getUpdates" => Value::Array(std::mem::take(&mut inner.updates)),
        "answerCallbackQuery" | "setWebhook" | "deleteWebhook" => json!(true),
        _ => {
            let err = json!({"ok": false, "error_code": 404, "description": "Not Found"});
            return (StatusCode::NOT_FOUND, Json(err)).into_response();
        }
    };
    Json(json!({"ok": true, "result": result})).into_response()
}

/// A multipart form of text fields as a JSON object; values that are JSON
/// (teloxide sends arrays that way) are parsed, others kept as strings.
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
fn message(message_id: i64, body: &Value) -> Value {
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
