//! The proxy never hands the credential back, whatever form an upstream echoes it in:
//! JSON-escaped, inside a non-UTF-8 body, cut by `max_response_bytes`, as the entries of an
//! env_bundle; and a redirect to the same host on another port is not followed.

use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode as Http};
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;

/// The credential: a `/` and a `+` so that JSON and percent escapes change it.
const KEY: &str = "AKIA/wJal+rXUtnFEMI-leak-77";
const ENTRY_A: &str = "sk_live_bundle_entry_A1";
const ENTRY_B: &str = "whsec_bundle_entry_B2";

/// Hits of the upstream's `/landing` (where a cross-origin redirect would lead).
#[derive(Default, Clone)]
struct Landed(Arc<Mutex<u32>>);

/// Echoes the injected credential (from `authorization` or `x-bundle`) in the form the path
/// names.
async fn echo(
    State((landed, other)): State<(Landed, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> axum::response::Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let secret = header("authorization")
        .map(|a| a.trim_start_matches("Bearer ").to_string())
        .or_else(|| header("x-bundle").map(str::to_string))
        .unwrap_or_default();
    let json_escaped = secret.replace('/', "\\/").replace('+', "\\u002b");
    match uri.path() {
        "/escaped" => (
            [("content-type", "application/json")],
            format!("{{\"echo\":\"{json_escaped}\"}}"),
        )
            .into_response(),
        "/escaped-header" => ([("x-echo", json_escaped)], "ok").into_response(),
        "/binary" => {
            let mut body = vec![0xff, 0xfe, 0x00];
            body.extend_from_slice(secret.as_bytes());
            body.push(0x80);
            ([("content-type", "application/octet-stream")], body).into_response()
        }
        "/padded" => {
            let pad: usize = uri
                .query()
                .and_then(|q| q.strip_prefix("pad="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            format!("{}{secret}", "x".repeat(pad)).into_response()
        }
        "/entries" => {
            // The entries one by one, and the whole injected JSON as a JSON string.
            let entries: Value = serde_json::from_str(&secret).unwrap_or(Value::Null);
            axum::Json(json!({"a": entries["A"], "b": entries["B"], "whole": secret}))
                .into_response()
        }
        "/other-port" => (Http::FOUND, [("location", format!("{other}/landing"))]).into_response(),
        "/landing" => {
            *landed.0.lock().unwrap() += 1;
            format!("landed with {secret}").into_response()
        }
        _ => Http::NOT_FOUND.into_response(),
    }
}

/// Two listeners on 127.0.0.1 (two ports, one host) serving `echo`; returns both base URLs.
async fn upstream() -> (String, String, Landed) {
    let landed = Landed::default();
    let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ua, ub) = (
        format!("http://{}", a.local_addr().unwrap()),
        format!("http://{}", b.local_addr().unwrap()),
    );
    for (l, other) in [(a, ub.clone()), (b, ua.clone())] {
        let app = axum::Router::new()
            .fallback(echo)
            .with_state((landed.clone(), other));
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    }
    (ua, ub, landed)
}

const ENDPOINTS: &str = r#"{"escaped": {"method": "GET", "path": "/escaped"},
    "escaped_header": {"method": "GET", "path": "/escaped-header"},
    "binary": {"method": "GET", "path": "/binary"}, "padded": {"method": "GET", "path": "/padded"},
    "entries": {"method": "GET", "path": "/entries"}, "other_port": {"method": "GET", "path": "/other-port"}}"#;

/// A daemon with the `leaky` service (a token, header-injected, answers cut at 64 bytes) and
/// the `bundle` service (an env_bundle), an agent key and a proxy lease on each.
async fn setup() -> (Daemon, String, String, String, Landed) {
    let d = Daemon::start().await;
    let (base, _, landed) = upstream().await;
    let admin = d.admin.clone();
    let (s, b) = d
        .put(&admin, "svc/leaky", json!({"value": KEY, "type": "token"}))
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = d
        .put(
            &admin,
            "svc/bundle",
            json!({"type": "env_bundle", "entries": {"A": ENTRY_A, "B": ENTRY_B}}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let endpoints: Value = serde_json::from_str(ENDPOINTS).unwrap();
    for (name, secret, inject) in [
        (
            "leaky",
            "svc/leaky",
            json!({"kind": "header", "name": "authorization", "template": "Bearer {secret}"}),
        ),
        (
            "bundle",
            "svc/bundle",
            json!({"kind": "header", "name": "x-bundle", "template": "{secret}"}),
        ),
    ] {
        let service = json!({"service": {"name": name, "base_url": base, "secret": secret,
            "allow_private": true, "inject": inject, "endpoints": endpoints, "max_response_bytes": 64}});
        let (s, b) = d
            .call(Method::POST, "/v1/services", Some(&admin), Some(service))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "svc/**", "actions": ["proxy"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, key) = d.agent("leaker", 3).await;
    let mut ids = Vec::new();
    for path in ["/svc/leaky", "/svc/bundle"] {
        let (s, l) = d
            .call(
                Method::POST,
                "/v1/leases",
                Some(&key),
                Some(json!({"path": path, "action": "proxy", "uses": 100})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        ids.push(l["id"].as_str().unwrap().to_string());
    }
    let bundle = ids.pop().unwrap();
    let leaky = ids.pop().unwrap();
    (d, key, leaky, bundle, landed)
}

async fn call(d: &Daemon, key: &str, service: &str, lease: &str, ep: &str, params: Value) -> Value {
    let (s, a) = d
        .call(
            Method::POST,
            &format!("/v1/proxy/{service}/{ep}"),
            Some(key),
            Some(json!({"lease_id": lease, "params": params})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    a
}

/// Everything the agent received, as text, in every decoding it could try: the JSON text,
/// its strings unescaped, and any base64 body decoded.
fn received(a: &Value) -> String {
    use base64::Engine;
    let mut all = a.to_string();
    all.push_str(&a["body"].as_str().map(str::to_string).unwrap_or_default());
    if let Some(b) = a["body"]["base64"].as_str() {
        let raw = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        all.push_str(&String::from_utf8_lossy(&raw));
    }
    all.push_str(
        &a["body"]["echo"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_default(),
    );
    all.replace("\\/", "/").replace("\\u002b", "+")
}

#[tokio::test]
async fn a_json_escaped_echo_is_redacted_in_body_and_headers() {
    let (d, key, leaky, _, _) = setup().await;
    let a = call(&d, &key, "leaky", &leaky, "escaped", json!({})).await;
    assert_eq!(a["body"]["echo"], "[redacted]", "{a}");
    assert!(!received(&a).contains("wJal"), "{a}");
    let a = call(&d, &key, "leaky", &leaky, "escaped_header", json!({})).await;
    assert_eq!(a["headers"]["x-echo"], "[redacted]", "{a}");
    d.stop().await;
}

#[tokio::test]
async fn a_non_utf8_echo_is_redacted_before_base64() {
    let (d, key, leaky, _, _) = setup().await;
    let a = call(&d, &key, "leaky", &leaky, "binary", json!({})).await;
    let b64 = a["body"]["base64"].as_str().expect("a base64 body");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut want = vec![0xff, 0xfe, 0x00];
    want.extend_from_slice(b"[redacted]");
    want.push(0x80);
    assert_eq!(raw, want);
    assert!(!received(&a).contains("wJal"));
    d.stop().await;
}

#[tokio::test]
async fn an_echo_cut_at_any_point_gives_no_prefix_of_eight_bytes() {
    let (d, key, leaky, _, _) = setup().await;
    // max_response_bytes is 64: each padding puts the cut at another byte of the credential.
    for pad in 65 - KEY.len()..64 {
        let a = call(&d, &key, "leaky", &leaky, "padded", json!({"pad": pad})).await;
        assert_eq!(a["truncated"], true, "{a}");
        let body = a["body"].as_str().unwrap();
        assert!(!body.contains(&KEY[..8]), "pad {pad}: {body}");
        let shown = 64 - pad;
        if shown >= 8 {
            assert!(body.ends_with("[redacted]"), "pad {pad}: {body}");
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn an_env_bundle_echo_is_redacted_entry_by_entry() {
    let (d, key, _, bundle, _) = setup().await;
    let a = call(&d, &key, "bundle", &bundle, "entries", json!({})).await;
    // The answer is longer than 64 bytes: the body is cut, so look at all of it as text.
    let all = received(&a);
    assert!(!all.contains(ENTRY_A) && !all.contains(ENTRY_B), "{a}");
    assert!(
        !all.contains(&ENTRY_A[..8]) && !all.contains(&ENTRY_B[..8]),
        "{a}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_redirect_to_another_port_is_not_followed() {
    let (d, key, leaky, _, landed) = setup().await;
    let a = call(&d, &key, "leaky", &leaky, "other_port", json!({})).await;
    assert_eq!(a["status"], 302, "{a}");
    assert_eq!(
        *landed.0.lock().unwrap(),
        0,
        "the other port saw no request"
    );
    d.stop().await;
}
