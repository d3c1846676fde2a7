//! The MCP server over Streamable HTTP at `/mcp`, driven with rmcp's own client: the tools a
//! credential is shown, instant and approved reads, a denial with its reason, proxy calls
//! whose credential never reaches the result, and the guard in front of it all.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::lease_world::world;

/// An MCP session.
pub(crate) type Session = RunningService<RoleClient, ClientConfig>;

/// An MCP client of the daemon's `/mcp` with `token`.
pub(crate) async fn connect(d: &Daemon, token: &str) -> Session {
    let cfg = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", d.base))
        .auth_header(token.to_string());
    let transport = StreamableHttpClientTransport::from_config(cfg);
    tokio::time::timeout(
        Duration::from_secs(20),
        ClientConfig::default().serve(transport),
    )
    .await
    .expect("MCP initialisation timed out")
    .unwrap()
}

/// The names of the tools the session is shown, sorted.
pub(crate) async fn tool_names(s: &Session) -> Vec<String> {
    let mut names: Vec<String> = s
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// Calls a tool (bounded); returns the result and its structured content.
pub(crate) async fn call(s: &Session, name: &str, args: Value) -> (CallToolResult, Value) {
    let params = CallToolRequestParams::new(name.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    let r = tokio::time::timeout(Duration::from_secs(60), s.call_tool(params))
        .await
        .expect("tool call timed out")
        .unwrap();
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    (r, v)
}

/// Every tool, sorted.
pub(crate) const ALL_TOOLS: &[&str] = &[
    "call_service",
    "delete_secret",
    "describe_secret",
    "get_env_bundle",
    "get_secret",
    "list_secrets",
    "list_services",
    "put_secret",
    "request_token",
    "revoke_lease",
    "rotate_and_store",
    "wait_for_lease",
];

/// What a read-only token (`secrets:read:…`) is shown: no write, list or proxy tools.
pub(crate) const READ_ONLY_TOOLS: &[&str] = &[
    "get_env_bundle",
    "get_secret",
    "request_token",
    "revoke_lease",
    "wait_for_lease",
];

/// Denies an approval with a reason, as `who`.
pub(crate) async fn deny(d: &Daemon, who: &str, approval: &str, reason: &str) {
    let (s, b) = d
        .call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(who),
            Some(json!({"decision": "deny", "reason": reason})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn mcp_http_shows_each_credential_its_tools_and_refuses_the_rest() {
    let w = world().await;
    let d = &w.d;
    let (_, key) = d.agent("mcp-tools", 2).await;
    let agent = connect(d, &key).await;
    assert_eq!(tool_names(&agent).await, ALL_TOOLS);
    let tools = agent.list_all_tools().await.unwrap();
    let get = tools.iter().find(|t| t.name == "get_secret").unwrap();
    let ann = get.annotations.clone().unwrap();
    assert_eq!(
        (ann.read_only_hint, ann.destructive_hint),
        (Some(true), Some(false))
    );
    assert!(
        get.description
            .as_deref()
            .unwrap()
            .contains("wait_for_lease")
    );
    let props = &get.input_schema["properties"];
    assert!(
        props["path"].is_object() && props["wait_seconds"].is_object(),
        "{props}"
    );
    let del = tools.iter().find(|t| t.name == "delete_secret").unwrap();
    assert_eq!(
        del.annotations.clone().unwrap().destructive_hint,
        Some(true)
    );

    // A read-only scoped token sees no write (or list, or proxy) tool, and a write through
    // the daemon is refused anyway.
    let (s, t) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 300}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap();
    let reader = connect(d, token).await;
    assert_eq!(tool_names(&reader).await, READ_ONLY_TOOLS);
    let (r, v) = call(&reader, "put_secret", json!({"path": "x", "value": "v"})).await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(v["error"]["status"], 403, "{v}");

    // The guard answers before rmcp: no token 401, admin and approver tokens 403.
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |token: Option<&str>| {
        let mut req = http
            .post(format!("{}/mcp", d.base))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    for token in [d.admin.as_str(), w.alice.as_str()] {
        let r = post(Some(token)).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        post(Some("lk_tok_forged")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    agent.cancel().await.unwrap();
    reader.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_http_reads_wait_for_the_approver_and_carry_the_denial_reason() {
    let w = world().await;
    let d = &w.d;
    w.secret("plain/key", "standard", "sk-plain-1").await;
    w.secret("guarded/key", "sensitive", "sk-guarded-2").await;
    w.secret("guarded/other", "sensitive", "sk-guarded-3").await;
    let (_, key) = d.agent("mcp-reader", 2).await;
    let s = connect(d, &key).await;

    // Instant.
    let (r, v) = call(&s, "get_secret", json!({"path": "/plain/key"})).await;
    assert_eq!(r.is_error, Some(false), "{v}");
    assert_eq!(
        (v["state"].as_str(), v["value"].as_str()),
        (Some("active"), Some("sk-plain-1"))
    );

    // Pending: the wait runs out and the answer says how to go on.
    let (r, v) = call(
        &s,
        "get_secret",
        json!({"path": "/guarded/key", "reason": "eval", "wait_seconds": 1}),
    )
    .await;
    assert_eq!(
        r.is_error,
        Some(false),
        "a pending lease is a result, not an error"
    );
    assert_eq!(v["state"], "pending", "{v}");
    let lease = v["lease_id"].as_str().unwrap().to_string();
    let approval = v["approval_id"].as_str().unwrap().to_string();
    assert!(v["message"].as_str().unwrap().contains("wait_for_lease"));
    assert!(v["poll_after_ms"].as_u64().is_some());
    assert!(!serde_json::to_string(&r).unwrap().contains("sk-guarded-2"));

    // Approved through the API while wait_for_lease waits: it answers the value.
    let approve = {
        let (base, alice) = (d.base.clone(), w.alice.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reqwest::Client::new()
                .post(format!("{base}/v1/approvals/{approval}/votes"))
                .bearer_auth(alice)
                .json(&json!({"decision": "approve"}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let started = std::time::Instant::now();
    let (_, v) = call(
        &s,
        "wait_for_lease",
        json!({"lease_id": lease, "wait_seconds": 20}),
    )
    .await;
    assert_eq!(approve.await.unwrap(), StatusCode::OK);
    assert_eq!(v["value"], "sk-guarded-2", "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the long poll woke at the vote"
    );

    // Denied: the result carries the approver's reason and who decided.
    let (_, v) = call(
        &s,
        "get_secret",
        json!({"path": "/guarded/other", "wait_seconds": 0}),
    )
    .await;
    assert_eq!(v["state"], "pending", "{v}");
    deny(
        d,
        &w.alice,
        v["approval_id"].as_str().unwrap(),
        "not on a Friday",
    )
    .await;
    let (r, v) = call(
        &s,
        "wait_for_lease",
        json!({"lease_id": v["lease_id"], "wait_seconds": 5}),
    )
    .await;
    assert_eq!(r.is_error, Some(false));
    assert_eq!(v["state"], "denied", "{v}");
    assert_eq!(v["reason"], "not on a Friday");
    assert_eq!(v["decided_by"], "alice");
    assert!(v.get("value").is_none());
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_http_writes_rotate_list_and_mint() {
    let d = Daemon::start().await;
    let (_, key) = d.agent("mcp-writer", 3).await;
    let s = connect(&d, &key).await;
    let (r, v) = call(
        &s,
        "put_secret",
        json!({"path": "app/db", "value": "pw-1", "sensitivity": "standard"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{v}");
    let (_, v) = call(&s, "rotate_and_store", json!({"path": "app/db"})).await;
    assert_eq!(
        (v["rotated_from_version"].as_u64(), v["generated"].as_bool()),
        (Some(1), Some(true)),
        "{v}"
    );
    let (_, v) = call(&s, "describe_secret", json!({"path": "app/db"})).await;
    assert_eq!(v["current_version"], 2, "{v}");
    let (_, v) = call(&s, "get_secret", json!({"path": "app/db"})).await;
    let generated = v["value"].as_str().unwrap();
    assert!(generated.len() >= 43 && generated != "pw-1");
    let (_, v) = call(&s, "list_secrets", json!({})).await;
    assert_eq!(v["secrets"].as_array().unwrap().len(), 1, "{v}");
    let (r, v) = call(
        &s,
        "rotate_and_store",
        json!({"path": "app/none", "value": "x"}),
    )
    .await;
    assert_eq!(
        (r.is_error, v["error"]["status"].as_u64()),
        (Some(true), Some(404))
    );
    let (_, v) = call(
        &s,
        "request_token",
        json!({"scopes": ["secrets:read:app/**"], "ttl_seconds": 60, "description": "sub"}),
    )
    .await;
    let sub = v["token"].as_str().unwrap();
    let sub = connect(&d, sub).await;
    assert_eq!(tool_names(&sub).await, READ_ONLY_TOOLS);
    let (_, v) = call(&s, "delete_secret", json!({"path": "app/db"})).await;
    assert_eq!(v["deleted"], true);
    let (r, _) = call(&sub, "get_secret", json!({"path": "app/db"})).await;
    assert_eq!(r.is_error, Some(true));
    sub.cancel().await.unwrap();
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_http_calls_services_without_the_credential_reaching_the_model() {
    use crate::proxy::{TOKEN, setup, upstream};
    let w = world().await;
    let d = &w.d;
    let (base, seen) = upstream().await;
    setup(d, &base, true).await;
    let (_, key) = d.agent("mcp-proxy", 3).await;
    let s = connect(d, &key).await;
    let (_, v) = call(&s, "list_services", json!({})).await;
    assert_eq!(v["services"][0]["name"], "up", "{v}");

    let (r, v) = call(
        &s,
        "call_service",
        json!({"service": "up", "endpoint": "get_item", "params": {"id": "42", "q": "x"}, "reason": "triage"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{v}");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["body"]["path"], "/items/42");
    assert_eq!(
        seen.0.lock().unwrap().last().unwrap().1,
        format!("Bearer {TOKEN}")
    );
    // An upstream that echoes the credential: redacted before the result is built.
    let (r, _) = call(
        &s,
        "call_service",
        json!({"service": "up", "endpoint": "echo"}),
    )
    .await;
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    // Once the credential needs an approver, the call waits; then the same lease makes it.
    let (st, b) = d
        .call(
            Method::PUT,
            "/v1/approval-policies/svc/up-token",
            Some(&d.admin.clone()),
            Some(json!({"requirement": "approval", "quorum": 1})),
        )
        .await;
    assert!(st.is_success(), "{b}");
    let (_, v) = call(
        &s,
        "call_service",
        json!({"service": "up", "endpoint": "get_item", "params": {"id": "7"}, "wait_seconds": 0}),
    )
    .await;
    assert_eq!(v["state"], "pending", "{v}");
    let (st, b) = w
        .vote(&w.alice, v["approval_id"].as_str().unwrap(), "approve")
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, a) = call(&s, "wait_for_lease", json!({"lease_id": v["lease_id"]})).await;
    assert_eq!(
        (a["state"].as_str(), a["action"].as_str()),
        (Some("active"), Some("proxy")),
        "{a}"
    );
    let (_, v) = call(
        &s,
        "call_service",
        json!({"service": "up", "endpoint": "get_item", "params": {"id": "7"}, "lease_id": v["lease_id"]}),
    )
    .await;
    assert_eq!(v["body"]["path"], "/items/7", "{v}");
    // A pending lease nobody needs any more is withdrawn.
    let (_, v) = call(
        &s,
        "call_service",
        json!({"service": "up", "endpoint": "get_item", "params": {"id": "8"}, "wait_seconds": 0}),
    )
    .await;
    let (r, v) = call(
        &s,
        "revoke_lease",
        json!({"lease_id": v["lease_id"], "reason": "not needed"}),
    )
    .await;
    assert_eq!(
        (r.is_error, v["state"].as_str()),
        (Some(false), Some("revoked")),
        "{v}"
    );
    s.cancel().await.unwrap();
}
