//! `latchkey migrate` (redb → PostgreSQL → redb) and `backup` / `restore`, through the real
//! binary: the copy holds everything, `audit verify` passes on it, the same agent key and
//! admin token work, values decrypt with the same master key, and a non-empty target is
//! refused. Needs PostgreSQL: runs in the `it_postgres` target.

use std::path::Path;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, config, on_postgres, pg_cluster};

fn latchkey(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_remove("LATCHKEY_CONFIG")
        .env_remove("LATCHKEY_STORE_URL")
        .env_remove("LATCHKEY_STORE_BACKEND")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A data directory for a copy: the source's master key, and the database address when the
/// copy is on PostgreSQL.
fn copy_dir(master_from: &Path, url: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(master_from.join("master.key")).unwrap();
    latchkey::crypto::keyring::write_private(&dir.path().join("master.key"), &bytes).unwrap();
    if let Some(url) = url {
        latchkey::crypto::keyring::write_private(
            &dir.path().join("test-store-url"),
            url.as_bytes(),
        )
        .unwrap();
    }
    dir
}

/// What the copy must show: the chain, the secret's versions and value, the agent's key.
async fn check_copy(d: &Daemon, agent_key: &str, events: u64) {
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checked"].as_u64().unwrap() >= events, "{v}");
    let (_, versions) = d.get("/v1/secrets/app/db/versions").await;
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(2),
        "{versions}"
    );
    let (s, who) = d
        .call(Method::GET, "/v1/whoami", Some(agent_key), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the agent key works on the copy: {who}");
    let admin = d.admin.clone();
    let (s, out) = d
        .call(
            Method::POST,
            "/v1/export",
            Some(&admin),
            Some(json!({"paths": ["app/db"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["secrets"]["app/db"], "db-password-2");
    let (_, hooks) = d.get("/v1/webhooks").await;
    assert_eq!(hooks.as_array().map(Vec::len), Some(1), "{hooks}");
}

#[tokio::test]
async fn migrate_redb_to_postgres_and_back_and_backup_restore() {
    if !on_postgres() {
        return;
    }
    // The source: a redb daemon with a little of everything.
    let src = tempfile::tempdir().unwrap();
    let (admin, _) = latchkey::init::init(&config(src.path())).await.unwrap();
    let d = Daemon::start_in_with(src, admin.clone(), |c| c.webhooks.allow_loopback = true).await;
    d.put(&admin, "app/db", json!({"value": "db-password-1"}))
        .await;
    d.put(&admin, "app/db", json!({"value": "db-password-2"}))
        .await;
    let (_, agent_key) = d.agent("migrant", 3).await;
    d.call(
        Method::POST,
        "/v1/webhooks",
        Some(&admin),
        Some(json!({"url": "http://127.0.0.1:9/x", "events": ["audit.*"]})),
    )
    .await;
    let (_, v) = d.get("/v1/audit/verify").await;
    let events = v["checked"].as_u64().unwrap();
    let (src, _) = d.stop().await;
    let src_path = src.path().to_str().unwrap().to_string();

    // redb → PostgreSQL.
    let url = pg_cluster()
        .unwrap()
        .create_database(&format!("mig{}", std::process::id()))
        .unwrap();
    let (ok, out) = latchkey(&["migrate", "--from", &src_path, "--to", &url]);
    assert!(ok, "{out}");
    let (ok, out) = latchkey(&["migrate", "--from", &src_path, "--to", &url]);
    assert!(!ok && out.contains("already holds a store"), "{out}");
    let on_pg = copy_dir(src.path(), Some(&url));
    let d = Daemon::start_in(on_pg, admin.clone()).await;
    check_copy(&d, &agent_key, events).await;
    // The copy goes on: a new write chains onto the copied log.
    d.put(&admin, "app/after", json!({"value": "x"})).await;
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let (on_pg, _) = d.stop().await;

    // PostgreSQL → redb (an empty directory is an empty target).
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = latchkey(&[
        "migrate",
        "--from",
        &url,
        "--to",
        back.path().to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    std::fs::copy(
        on_pg.path().join("master.key"),
        back.path().join("master.key"),
    )
    .unwrap();
    let d = Daemon::start_in(back, admin.clone()).await;
    check_copy(&d, &agent_key, events).await;
    d.stop().await;

    // backup (PostgreSQL, while nothing runs on it) → restore into a fresh redb directory.
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("latchkey.backup");
    let (ok, out) = latchkey(&["backup", "--from", &url, "--to", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("db-password"),
        "values stay sealed in a backup"
    );
    let restored = tempfile::tempdir().unwrap();
    let (ok, out) = latchkey(&[
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--to",
        restored.path().to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = latchkey(&[
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--to",
        restored.path().to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("already holds a store"), "{out}");
    std::fs::copy(
        on_pg.path().join("master.key"),
        restored.path().join("master.key"),
    )
    .unwrap();
    let d = Daemon::start_in(restored, admin).await;
    check_copy(&d, &agent_key, events).await;
    d.stop().await;
}
