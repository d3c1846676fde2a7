//! `latchkey mcp`: the real binary as an MCP server on stdio, driven with rmcp's client over a
//! child process, against a daemon on 127.0.0.1:0.

use std::time::Duration;

use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::ClientConfig;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

use crate::common::{Daemon, cli_command, finish};
use crate::lease_world::world;
use crate::mcp::{ALL_TOOLS, READ_ONLY_TOOLS, Session, call, tool_names};

/// `latchkey mcp` as `token` against `d`, as an MCP session.
async fn spawn(d: &Daemon, token: &str) -> Session {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.arg("mcp")
        .env("LATCHKEY_ADDR", &d.base)
        .env("LATCHKEY_TOKEN", token)
        .kill_on_drop(true);
    let transport = TokioChildProcess::new(cmd).unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        ClientConfig::default().serve(transport),
    )
    .await
    .expect("MCP initialisation timed out")
    .unwrap()
}

#[tokio::test]
async fn mcp_stdio_serves_an_agents_tools_and_waits_for_approvals() {
    let w = world().await;
    let d = &w.d;
    w.secret("plain/key", "standard", "sk-stdio-1").await;
    w.secret("guarded/key", "sensitive", "sk-stdio-2").await;
    let (_, key) = d.agent("mcp-stdio", 2).await;
    let s = spawn(d, &key).await;
    assert_eq!(tool_names(&s).await, ALL_TOOLS);

    let (_, v) = call(&s, "get_secret", json!({"path": "/plain/key"})).await;
    assert_eq!(v["value"], "sk-stdio-1", "{v}");

    let (_, v) = call(
        &s,
        "get_secret",
        json!({"path": "/guarded/key", "wait_seconds": 0}),
    )
    .await;
    assert_eq!(v["state"], "pending", "{v}");
    let (st, b) = w
        .vote(&w.alice, v["approval_id"].as_str().unwrap(), "approve")
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, v) = call(
        &s,
        "wait_for_lease",
        json!({"lease_id": v["lease_id"], "wait_seconds": 5}),
    )
    .await;
    assert_eq!(v["value"], "sk-stdio-2", "{v}");
    s.cancel().await.unwrap();

    // A read-only scoped token: no write tools.
    let (st, t) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 120}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let s = spawn(d, t["token"].as_str().unwrap()).await;
    assert_eq!(tool_names(&s).await, READ_ONLY_TOOLS);
    s.cancel().await.unwrap();
}

#[tokio::test]
async fn mcp_stdio_refuses_admin_tokens_and_missing_ones() {
    let d = Daemon::start().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let (out, missing) = tokio::task::spawn_blocking(move || {
        let run = |token: &str| {
            finish(
                cli_command(&base, token, &["mcp"]).spawn().unwrap(),
                Duration::from_secs(20),
            )
        };
        (run(&admin), run(" "))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty(), "stdout is the protocol only");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is for agents"), "{err}");
    let out = missing;
    assert_eq!(out.status.code(), Some(4));
}
