//! The credential-injection proxy against a local upstream that checks the injected header:
//! GET/POST mapping, hostile path parameters, no cross-host redirect, private addresses,
//! echo redaction, lease uses, approval for critical secrets, audit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode as Http};
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, code};

pub(crate) const TOKEN: &str = "tok-PROXY-CANARY-55";

#[derive(Default, Clone)]
pub(crate) struct Seen(pub(crate) Arc<Mutex<Vec<(String, String, String)>>>);

async fn upstream_handler(
    State(seen): State<Seen>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.0
        .lock()
        .unwrap()
        .push((uri.to_string(), auth.clone(), body.clone()));
    if auth != format!("Bearer {TOKEN}") {
        return (Http::UNAUTHORIZED, "no credential").into_response();
    }
    match uri.path() {
        "/echo" => (
            [
                ("x-echo", format!("you sent {TOKEN}")),
                ("www-authenticate", "Bearer".to_string()),
            ],
            format!("{{\"leak\": \"{TOKEN}\"}}"),
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            axum::Json(json!({"late": true})).into_response()
        }
        "/redirect" => {
            (Http::FOUND, [("location", "http://127.0.0.2:9/elsewhere")]).into_response()
        }
        _ => axum::Json(json!({"path": uri.path(), "query": uri.query(), "body": body}))
            .into_response(),
    }
}

pub(crate) async fn upstream() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(upstream_handler)
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, seen)
}

pub(crate) async fn setup(d: &Daemon, base_url: &str, allow_private: bool) {
    let admin = d.admin.clone();
    d.put(
        &admin,
        "svc/up-token",
        json!({"value": TOKEN, "type": "token"}),
    )
    .await;
    d.put(
        &admin,
        "svc/critical-token",
        json!({"value": TOKEN, "type": "token", "sensitivity": "critical"}),
    )
    .await;
    let service = json!({"service": {
        "name": "up", "base_url": base_url, "secret": "svc/up-token", "allow_private": allow_private,
        "inject": {"kind": "header", "name": "authorization", "template": "Bearer {secret}"},
        "endpoints": {"get_item": {"method": "GET", "path": "/items/{id}"}, "create": {"method": "POST", "path": "/items"},
                      "echo": {"method": "GET", "path": "/echo"}, "redirect": {"method": "GET", "path": "/redirect"},
                      "slow": {"method": "GET", "path": "/slow"}}
    }});
    let (s, b) = d
        .call(Method::POST, "/v1/services", Some(&admin), Some(service))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "svc/**", "actions": ["proxy", "read"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

pub(crate) async fn lease(d: &Daemon, key: &str, path: &str, uses: u32) -> Value {
    let (s, l) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(key),
            Some(json!({"path": path, "action": "proxy", "uses": uses})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    l
}

#[tokio::test]
async fn proxied_calls_inject_map_and_redact() {
    let d = Daemon::start().await;
    let (base, seen) = upstream().await;
    setup(&d, &base, true).await;
    let (_, key) = d.agent("proxied", 3).await;
    let l = lease(&d, &key, "/svc/up-token", 20).await;
    let id = l["id"].as_str().unwrap().to_string();
    let call = |endpoint: &str, params: Value| {
        let path = format!("/v1/proxy/up/{endpoint}");
        let body = json!({"lease_id": id, "params": params});
        let key = key.clone();
        let d = &d;
        async move { d.call(Method::POST, &path, Some(&key), Some(body)).await }
    };

    let (s, a) = call("get_item", json!({"id": "42", "verbose": 1})).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["status"], 200);
    assert_eq!(a["body"]["path"], "/items/42");
    assert_eq!(a["body"]["query"], "verbose=1");
    let (_, a) = call("create", json!({"title": "hello"})).await;
    assert_eq!(a["body"]["body"], r#"{"title":"hello"}"#);

    for (hostile, want) in [
        ("../admin", "/items/..%2Fadmin"),
        ("a%2Fb", "/items/a%252Fb"),
        ("@evil.com", "/items/%40evil.com"),
        ("http://evil.com/x", "/items/http%3A%2F%2Fevil.com%2Fx"),
        ("x\r\nHost: evil", "/items/x%0D%0AHost%3A%20evil"),
    ] {
        let (s, a) = call("get_item", json!({"id": hostile})).await;
        assert_eq!(s, StatusCode::OK, "{hostile:?}: {a}");
        assert_eq!(a["body"]["path"], want, "{hostile:?}");
    }
    let (s, b) = call("get_item", json!({"id": ".."})).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));

    // The credential echoed back is redacted, and auth headers are not passed back.
    let (_, a) = call("echo", json!({})).await;
    assert_eq!(a["body"]["leak"], "[redacted]");
    assert_eq!(a["headers"]["x-echo"], "you sent [redacted]");
    assert!(a["headers"].get("www-authenticate").is_none());
    assert!(!a.to_string().contains(TOKEN));

    // A redirect to another host is not followed.
    let before = seen.0.lock().unwrap().len();
    let (_, a) = call("redirect", json!({})).await;
    assert_eq!(a["status"], 302);
    assert_eq!(
        seen.0.lock().unwrap().len(),
        before + 1,
        "nothing followed the redirect"
    );

    // Every upstream request carried the injected credential; the agent never saw it.
    assert!(
        seen.0
            .lock()
            .unwrap()
            .iter()
            .all(|(_, auth, _)| auth == &format!("Bearer {TOKEN}"))
    );
    // secret.used is written just after each answer: wait (bounded) for the last one.
    let used = d
        .wait_events("secret.used", 9, Duration::from_secs(1))
        .await;
    assert_eq!(used.len(), 9, "one per call that reached the upstream");
    assert!(
        used.iter().all(
            |e| e["details"]["upstream_status"].is_u64() && e["details"]["latency_ms"].is_u64()
        )
    );
    assert!(
        !d.get("/v1/audit?limit=1000")
            .await
            .1
            .to_string()
            .contains(TOKEN)
    );
    d.stop().await;
}

#[tokio::test]
async fn a_call_the_agent_abandons_is_still_audited() {
    let d = Daemon::start().await;
    let (base, seen) = upstream().await;
    setup(&d, &base, true).await;
    let (_, key) = d.agent("impatient", 3).await;
    let l = lease(&d, &key, "/svc/up-token", 5).await;
    // The agent gives up while the upstream is still thinking: the daemon drops the call.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = impatient
        .post(format!("{}/v1/proxy/up/slow", d.base))
        .bearer_auth(&key)
        .json(&json!({"lease_id": l["id"], "params": {}}))
        .send()
        .await;
    assert!(sent.is_err(), "the client should have timed out");
    assert_eq!(seen.0.lock().unwrap().len(), 1, "the upstream was called");
    // The use was recorded before the credential left, and the abandoned call is recorded too.
    let used = d
        .wait_events("secret.used", 1, Duration::from_secs(2))
        .await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["outcome"], "failure");
    assert_eq!(used[0]["details"]["endpoint"], "slow");
    assert!(
        used[0]["details"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("went away")),
        "{used:?}"
    );
    assert_eq!(d.events("lease.used").await.len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn uses_approval_and_refusals() {
    let d = Daemon::start().await;
    let (base, _) = upstream().await;
    setup(&d, &base, true).await;
    let (_, key) = d.agent("counted", 3).await;
    let l = lease(&d, &key, "/svc/up-token", 2).await;
    let id = l["id"].as_str().unwrap();
    for _ in 0..2 {
        let (s, _) = d
            .call(
                Method::POST,
                "/v1/proxy/up/get_item",
                Some(&key),
                Some(json!({"lease_id": id, "params": {"id": "1"}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/proxy/up/get_item",
            Some(&key),
            Some(json!({"lease_id": id, "params": {"id": "1"}})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "lease_not_active"),
        "two uses, then exhausted"
    );
    // A critical secret needs approval before a proxy lease is active.
    let l = lease(&d, &key, "/svc/critical-token", 1).await;
    assert_eq!(l["state"], "pending");
    // A read lease cannot drive the proxy, and a proxy lease cannot read the value.
    let (_, read) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "/svc/up-token", "action": "read"})),
        )
        .await;
    assert_eq!(read["state"], "active");
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/proxy/up/get_item",
            Some(&key),
            Some(json!({"lease_id": read["id"], "params": {"id": "1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let p = lease(&d, &key, "/svc/up-token", 1).await;
    let (s, _) = d
        .call(
            Method::POST,
            &format!("/v1/leases/{}/secret", p["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/proxy/nope/x",
            Some(&key),
            Some(json!({"lease_id": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.stop().await;
}

#[tokio::test]
async fn private_upstreams_are_refused_unless_allowed() {
    let d = Daemon::start().await;
    let (base, seen) = upstream().await;
    let https_local = base.replace("http://", "https://");
    setup(&d, &https_local, false).await;
    let (_, key) = d.agent("private", 3).await;
    let l = lease(&d, &key, "/svc/up-token", 1).await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/proxy/up/get_item",
            Some(&key),
            Some(json!({"lease_id": l["id"], "params": {"id": "1"}})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "access_denied"),
        "{b}"
    );
    assert!(seen.0.lock().unwrap().is_empty());
    assert_eq!(
        d.show_lease_state(&key, l["id"].as_str().unwrap()).await,
        "active",
        "a refused call uses nothing"
    );
    // Templates ship for the usual services.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/services",
            Some(&d.admin.clone()),
            Some(json!({"template": "github", "name": "gh", "secret": "svc/up-token"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["base_url"], "https://api.github.com");
    d.stop().await;
}
