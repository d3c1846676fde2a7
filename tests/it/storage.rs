//! Persistence and encryption at rest: restart, wrong master key, AAD binding, key rotation
//! and re-wrap, no plaintext in the redb file.

use latchkey::store::keys::Key;
use latchkey::store::kv::{ReadTxn, Table, WriteTxn};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::common::{Daemon, config};

fn read_value(dir: &std::path::Path, path: &str, version: Option<u64>) -> Result<String, String> {
    let (store, writer, _) = latchkey::open_store(&config(dir)).map_err(|e| e.to_string())?;
    let v = store
        .read_value(path, version)
        .map(|v| String::from_utf8(v.expose_secret().to_vec()).unwrap())
        .map_err(|e| e.to_string());
    drop(store);
    writer.join();
    v
}

#[tokio::test]
async fn restart_keeps_everything() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (_, key) = d.agent("persist", 2).await;
    d.put(&admin, "app/one", json!({"value": "first"})).await;
    d.put(&admin, "app/one", json!({"value": "second"})).await;
    let (before_dir, admin) = d.stop().await;
    let d = Daemon::start_in(before_dir, admin).await;
    let (s, b) = d.get("/v1/secrets/app/one").await;
    assert_eq!(
        (s, b["current_version"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    let (s, _) = d.call(Method::GET, "/v1/secrets", Some(&key), None).await;
    assert_eq!(s, StatusCode::OK, "agent keys survive a restart");
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    // The chain continues across restarts.
    let admin2 = d.admin.clone();
    d.put(&admin2, "app/two", json!({"value": "x"})).await;
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let (dir, _) = d.stop().await;
    assert_eq!(read_value(dir.path(), "app/one", Some(1)).unwrap(), "first");
    assert_eq!(read_value(dir.path(), "app/one", None).unwrap(), "second");
}

#[tokio::test]
async fn wrong_master_key_refuses_and_changes_nothing() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "app/k", json!({"value": "v"})).await;
    let (dir, _) = d.stop().await;
    let master = dir.path().join("master.key");
    let good = std::fs::read(&master).unwrap();
    let db_before = crate::common::stored_bytes(dir.path());
    let ring_before = std::fs::read(dir.path().join("keyring.json")).ok();
    std::fs::write(&master, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = latchkey::run(config(dir.path()), listener, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("master key does not match"), "{err}");
    assert_eq!(crate::common::stored_bytes(dir.path()), db_before);
    assert_eq!(
        std::fs::read(dir.path().join("keyring.json")).ok(),
        ring_before
    );
    std::fs::write(&master, good).unwrap();
    assert_eq!(read_value(dir.path(), "app/k", None).unwrap(), "v");
}

#[tokio::test]
async fn ciphertext_moved_to_another_record_fails_to_decrypt() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "app/a", json!({"value": "value-of-a"})).await;
    d.put(&admin, "app/b", json!({"value": "value-of-b"})).await;
    let (dir, _) = d.stop().await;
    crate::common::raw_write(dir.path(), |t| {
        let a = t
            .get(Table::Versions, &("app/a", 1u64).encode())
            .unwrap()
            .unwrap();
        // Copy a's version record (ciphertext and wrapped key) onto b's.
        t.put(Table::Versions, &("app/b", 1u64).encode(), &a)
            .unwrap();
    });
    assert_eq!(read_value(dir.path(), "app/a", None).unwrap(), "value-of-a");
    let err = read_value(dir.path(), "app/b", None).unwrap_err();
    assert!(err.contains("decryption failed"), "{err}");
}

#[tokio::test]
async fn rotation_and_rewrap_keep_old_versions_readable() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "app/r", json!({"value": "under-key-1"}))
        .await;
    let (s, b) = d
        .call(Method::POST, "/v1/keys/rotate", Some(&admin), None)
        .await;
    assert_eq!((s, b["newest"].as_u64()), (StatusCode::OK, Some(2)), "{b}");
    d.put(&admin, "app/r", json!({"value": "under-key-2"}))
        .await;
    let (_, v) = d.get("/v1/secrets/app/r/versions").await;
    let keks: Vec<u64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kek_id"].as_u64().unwrap())
        .collect();
    assert_eq!(keks, [1, 2]);
    let (s, b) = d
        .call(Method::POST, "/v1/keys/rewrap", Some(&admin), None)
        .await;
    assert_eq!(
        (s, b["rewrapped"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );
    let (_, v) = d.get("/v1/secrets/app/r/versions").await;
    assert!(
        v["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["kek_id"] == 2)
    );
    let (s, b) = d
        .call(Method::POST, "/v1/keys/rewrap", Some(&admin), None)
        .await;
    assert_eq!((s, b["rewrapped"].as_u64()), (StatusCode::OK, Some(0)));
    assert_eq!(d.events("keys.*").await.len(), 3);
    let (dir, _) = d.stop().await;
    assert_eq!(
        read_value(dir.path(), "app/r", Some(1)).unwrap(),
        "under-key-1"
    );
    assert_eq!(
        read_value(dir.path(), "app/r", Some(2)).unwrap(),
        "under-key-2"
    );
}

#[tokio::test]
async fn no_value_in_the_database_file_or_audit_output() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let values = [
        "PLAINTEXT-CANARY-1f9e2a",
        "sk-live-CANARY-77aa0b",
        "bundle-CANARY-5c5c5c",
    ];
    d.put(
        &admin,
        "scan/a",
        json!({"value": values[0], "type": "password"}),
    )
    .await;
    d.put(&admin, "scan/a", json!({"value": values[1]})).await;
    d.put(
        &admin,
        "scan/bundle",
        json!({"type": "env_bundle", "entries": {"K": values[2]}}),
    )
    .await;
    d.call(
        Method::POST,
        "/v1/secrets/scan/a/rollback",
        Some(&admin),
        Some(json!({"version": 1})),
    )
    .await;
    let (_, audit) = d.get("/v1/audit?limit=1000").await;
    let audit = audit.to_string();
    let (dir, _) = d.stop().await;
    let db = crate::common::stored_bytes(dir.path());
    for v in values {
        assert!(!audit.contains(v), "audit output holds {v}");
        assert!(
            !db.windows(v.len()).any(|w| w == v.as_bytes()),
            "the redb file holds {v} in plaintext"
        );
    }
    assert!(
        audit.contains("scan/a"),
        "the audit log does record the paths"
    );
}
