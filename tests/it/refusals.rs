//! Refusals the HTTP layer makes itself (body limit, unknown route, wrong method, media type,
//! timeout) have the JSON error shape like every other; and every file Latchkey creates is
//! private (0600).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Daemon, code};

/// Sends `head` (and no more) on a raw connection and reads the whole answer.
async fn raw_answer(d: &Daemon, head: &str) -> String {
    let addr = d.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("the daemon answered")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn json_body(answer: &str) -> serde_json::Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn every_refusal_has_the_json_error_shape() {
    let d = Daemon::start_with(|c| c.http.request_timeout_seconds = 1).await;
    let admin = d.admin.clone();
    d.put(&admin, "big/x", json!({"value": "v"})).await;
    let client = reqwest::Client::new();
    // 413 from the `Bytes` extractor of the POST routes that take raw bodies.
    let big = vec![b'a'; 2 * 1024 * 1024];
    for path in ["big/x/rollback", "big/x/restore", "big/x/read"] {
        let resp = client
            .post(format!("{}/v1/secrets/{path}", d.base))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "payload_too_large", "{path}: {body}");
    }
    // 404 and 405 fallbacks.
    let (s, b) = d.call(Method::GET, "/v1/nowhere", Some(&admin), None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = d
        .call(Method::PATCH, "/v1/secrets", Some(&admin), None)
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // 415: a JSON endpoint given another media type.
    let resp = client
        .post(format!("{}/v1/agents", d.base))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "unsupported_media_type", "{body}");
    // 408: a body that never finishes arriving, past the 1 s request timeout.
    let addr = d.base.trim_start_matches("http://");
    let answer = raw_answer(
        &d,
        &format!(
            "PUT /v1/secrets/slow/x HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {admin}\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"value\":"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(code(&json_body(&answer)), "request_timeout", "{answer}");
    // 400 from the path extractor, 401 without a token: JSON too.
    let (s, b) = d.call(Method::GET, "/v1/secrets", None, None).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "unauthorized"));
}

/// Every file in `dir` (recursively) with its mode.
fn modes(dir: &std::path::Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(modes(&entry.path()));
        } else {
            out.push((
                entry.path().display().to_string(),
                meta.permissions().mode() & 0o777,
            ));
        }
    }
    out
}

#[tokio::test]
async fn every_file_latchkey_creates_is_private() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "files/x", json!({"value": "v"})).await;
    let dir = d.dir.path().to_path_buf();
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let files = modes(&dir);
    // On PostgreSQL the directory holds the master key only (the rows are in the database).
    let db_file = if crate::common::on_postgres() {
        "master.key"
    } else {
        "latchkey.redb"
    };
    assert!(files.iter().any(|(f, _)| f.ends_with(db_file)), "{files:?}");
    for (f, mode) in &files {
        assert_eq!(*mode, 0o600, "{f} is {mode:o}");
    }
    if crate::common::on_postgres() {
        d.stop().await;
        return;
    }
    // A database an older version left readable by others is made private again at start.
    let (dir, admin) = d.stop().await;
    let db = dir.path().join("latchkey.redb");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Daemon::start_in(dir, admin).await;
    assert_eq!(d.get("/v1/secrets").await.0, StatusCode::OK);
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    d.stop().await;
}
