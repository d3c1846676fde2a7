//! Stopping the real binary while an agent waits: the waiting long-poll is answered at once
//! (503 `shutting_down`, `Retry-After`), the daemon exits promptly, and the waiting CLI says
//! its lease is still pending, then resumes by itself on the restarted daemon.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{finish, output_text};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// `serve --dev --listen LISTEN` in `cwd` (logs discarded); the child, its address (without
/// the scheme) and its admin token.
fn serve_dev_on(cwd: &std::path::Path, listen: &str) -> (Child, String, String) {
    let (child, addr, token) = crate::binary::serve_dev_on(cwd, listen, Stdio::null());
    let addr = addr.trim_start_matches("http://").to_string();
    (child, addr, token)
}

/// `signals` SIGTERMs 100 ms apart, then a wait (bounded by `limit`, else the test fails) for
/// the exit; the exit status.
fn terminate(mut child: Child, signals: usize, limit: Duration) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    for i in 0..signals {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon did not stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then wait (bounded) for the exit; true when it exited cleanly.
fn stop(child: Child, limit: Duration) -> bool {
    terminate(child, 1, limit).success()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Value {
    let mut r = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}

#[tokio::test]
async fn a_stop_answers_waiting_long_polls_and_the_cli_resumes_after_a_restart() {
    if crate::common::redb_only() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    // The same address before and after the restart (the waiting CLI knows only that one).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let addr = format!("http://{listen}");
    let (daemon, _, admin) = serve_dev_on(cwd.path(), &listen);
    let http = reqwest::Client::new();
    use reqwest::Method;
    call(
        &http,
        Method::PUT,
        format!("{addr}/v1/secrets/production/db"),
        &admin,
        Some(json!({"value": "STOP-CANARY-value", "sensitivity": "critical"})),
    )
    .await;
    call(&http, Method::POST, format!("{addr}/v1/grants"), &admin,
        Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "production/**", "actions": ["read"]}))).await;
    let agent = call(
        &http,
        Method::POST,
        format!("{addr}/v1/agents"),
        &admin,
        Some(json!({"name": "night-shift", "trust_tier": 2})),
    )
    .await;
    let key = agent["api_key"].as_str().unwrap().to_string();
    let lease = call(
        &http,
        Method::POST,
        format!("{addr}/v1/leases"),
        &key,
        Some(json!({"path": "/production/db", "action": "read", "reason": "nightly report"})),
    )
    .await;
    assert_eq!(lease["state"], "pending", "{lease}");
    let id = lease["id"].as_str().unwrap().to_string();

    // An agent long-polls its lease, and the CLI waits on another lease.
    let poll = {
        let (http, url, key) = (
            http.clone(),
            format!("{addr}/v1/leases/{id}?wait=50"),
            key.clone(),
        );
        tokio::spawn(async move { http.get(url).bearer_auth(key).send().await })
    };
    let cli = Command::new(BIN)
        .args([
            "lease",
            "request",
            "/production/db",
            "--wait",
            "--timeout",
            "60",
            "--reason",
            "resume me",
        ])
        .env("LATCHKEY_ADDR", &addr)
        .env("LATCHKEY_TOKEN", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both are waiting once the CLI's lease exists (it is listed) and a moment has passed.
    let mut cli_lease = String::new();
    for _ in 0..100 {
        let list = call(
            &http,
            Method::GET,
            format!("{addr}/v1/leases?state=pending"),
            &admin,
            None,
        )
        .await;
        if let Some(l) = list
            .as_array()
            .and_then(|a| a.iter().find(|l| l["id"] != id.as_str()))
        {
            cli_lease = l["id"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!cli_lease.is_empty(), "the CLI's lease was not created");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The stop: the long-poll is answered at once and the daemon exits well before the
    // 50 s the long-poll asked for.
    let stopped = tokio::task::spawn_blocking(move || stop(daemon, Duration::from_secs(15)));
    let answer = tokio::time::timeout(Duration::from_secs(15), poll)
        .await
        .expect("the long-poll was answered")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().get("retry-after").is_some());
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");
    assert!(stopped.await.unwrap(), "a clean exit");

    // Restarted on the same address, an approver approves; the waiting CLI resumes alone.
    let (daemon, _, admin) = serve_dev_on(cwd.path(), &listen);
    let approval = call(
        &http,
        Method::GET,
        format!("{addr}/v1/leases/{cli_lease}"),
        &admin,
        None,
    )
    .await;
    let approval_id = approval["approval"]["id"].as_str().unwrap().to_string();
    call(
        &http,
        Method::POST,
        format!("{addr}/v1/approvals/{approval_id}/votes"),
        &admin,
        Some(json!({"decision": "approve"})),
    )
    .await;
    let out = tokio::task::spawn_blocking(move || finish(cli, Duration::from_secs(30)))
        .await
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("still pending") && text.contains(&format!("lease show {cli_lease}")),
        "{text}"
    );
    assert!(text.contains("is active"), "{text}");
    assert!(stop(daemon, Duration::from_secs(15)));
}

/// A daemon holding a request whose body never finishes, sent `signals` SIGTERMs 100 ms
/// apart; returns its exit code (within 10 s, else the test fails).
fn stop_with_a_stuck_request(signals: usize) -> Option<i32> {
    use std::io::Write;
    let cwd = tempfile::tempdir().unwrap();
    let (daemon, addr, admin) = serve_dev_on(cwd.path(), "127.0.0.1:0");
    let mut stuck = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "PUT /v1/secrets/a/b HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {admin}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"value\""
    );
    stuck.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let status = terminate(daemon, signals, Duration::from_secs(10));
    drop(stuck);
    status.code()
}

#[test]
fn a_stuck_request_does_not_hold_the_stop() {
    if crate::common::redb_only() {
        return;
    }
    // The request in flight gets the stop's grace (2 s), then is cut; the exit is clean.
    assert_eq!(stop_with_a_stuck_request(1), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    if crate::common::redb_only() {
        return;
    }
    assert_eq!(stop_with_a_stuck_request(2), Some(130));
}
