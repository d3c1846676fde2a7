//! Secret CRUD through the API: versions, rollback, soft delete/restore, check-and-set,
//! path validation, bad input.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, code};

#[tokio::test]
async fn crud_versions_rollback_delete_restore() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (s, b) = d.put(&admin, "production/openai/api-key", json!({"value": "sk-one", "type": "api_key", "sensitivity": "sensitive", "metadata": {"owner": "ml"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["current_version"], 1);
    assert_eq!(b["namespace"], "production");
    assert!(b.get("value").is_none());

    let (s, b) = d
        .put(
            &admin,
            "production/openai/api-key",
            json!({"value": "sk-two"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["current_version"], 2);
    assert_eq!(b["sensitivity"], "sensitive", "unchanged fields are kept");
    assert_eq!(b["metadata"]["owner"], "ml");

    let (s, b) = d.get("/v1/secrets/production/openai/api-key").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["type"], "api_key");
    assert!(
        !b.to_string().contains("sk-"),
        "describe never returns a value: {b}"
    );

    let (s, b) = d
        .get("/v1/secrets/production/openai/api-key/versions")
        .await;
    assert_eq!(s, StatusCode::OK);
    let versions = b["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["current"], true);

    let (s, b) = d
        .call(
            Method::POST,
            "/v1/secrets/production/openai/api-key/rollback",
            Some(&admin),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["current_version"], 3);
    let (_, b) = d
        .get("/v1/secrets/production/openai/api-key/versions")
        .await;
    assert_eq!(b["versions"][2]["source"], "rollback to version 1");

    // Rolling back to a version that does not exist.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/secrets/production/openai/api-key/rollback",
            Some(&admin),
            Some(json!({"version": 9})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));

    let (s, _) = d
        .call(
            Method::DELETE,
            "/v1/secrets/production/openai/api-key",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = d.get("/v1/secrets/production/openai/api-key").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = d
        .get("/v1/secrets/production/openai/api-key?include_deleted=true")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["deleted"], true);
    let (s, b) = d
        .put(&admin, "production/openai/api-key", json!({"value": "x"}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "secret_deleted"));
    let (_, b) = d.get("/v1/secrets?prefix=production/").await;
    assert_eq!(b["secrets"].as_array().unwrap().len(), 0);

    let (s, b) = d
        .call(
            Method::POST,
            "/v1/secrets/production/openai/api-key/restore",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["deleted"], false);
    assert_eq!(b["current_version"], 3);
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/secrets/production/openai/api-key/restore",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));

    let store_value = latchkey_value(&d, "production/openai/api-key").await;
    assert_eq!(
        store_value, "sk-one",
        "rollback made version 1's value current"
    );

    let kinds: Vec<String> = d
        .events("secret.*")
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "secret.created",
            "secret.updated",
            "secret.rolled_back",
            "secret.deleted",
            "secret.restored"
        ]
    );
    d.stop().await;
}

/// Reads a value through the internal decrypt path (no endpoint returns values yet).
async fn latchkey_value(d: &Daemon, path: &str) -> String {
    use secrecy::ExposeSecret;
    // A second store handle cannot open the same redb file while the daemon runs, so read
    // through a copy of the data directory.
    // (On PostgreSQL the copy holds the same database's address: a second store opens it
    // while the daemon runs.)
    let copy = tempfile::tempdir().unwrap();
    for f in [
        "latchkey.redb",
        "keyring.json",
        "master.key",
        "test-store-url",
    ] {
        let _ = std::fs::copy(d.dir.path().join(f), copy.path().join(f));
    }
    let (store, writer, _) = latchkey::open_store(&crate::common::config(copy.path())).unwrap();
    let v = String::from_utf8(
        store
            .read_value(path, None)
            .unwrap()
            .expose_secret()
            .to_vec(),
    )
    .unwrap();
    drop(store);
    writer.join();
    v
}

#[tokio::test]
async fn check_and_set() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (s, _) = d
        .put(&admin, "app/db", json!({"value": "a", "if_version": 0}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = d
        .put(&admin, "app/db", json!({"value": "b", "if_version": 0}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "version_conflict"));
    let (s, _) = d
        .put(&admin, "app/db", json!({"value": "b", "if_version": 1}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = d
        .put(&admin, "app/db", json!({"value": "c", "if_version": 1}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "version_conflict"));
    let (_, b) = d.get("/v1/secrets/app/db").await;
    assert_eq!(b["current_version"], 2, "a refused write changes nothing");
    d.stop().await;
}

#[tokio::test]
async fn concurrent_writers_each_get_their_own_version() {
    let d = std::sync::Arc::new(Daemon::start().await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let admin = d.admin.clone();
            let (s, b) = d
                .put(&admin, "app/shared", json!({"value": format!("v{i}")}))
                .await;
            assert!(s.is_success(), "{b}");
            b["current_version"].as_u64().unwrap()
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    assert_eq!(d.events("secret.*").await.len(), 40);
}

#[tokio::test]
async fn bad_paths_and_bodies_are_refused_and_change_nothing() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    // Sent as written, without a client normalising the URL first.
    for target in [
        "/v1/secrets/a/../b",
        "/v1/secrets/a/%2E%2E/b",
        "/v1/secrets/a/./b",
        "/v1/secrets/..",
        "/v1/secrets/a%2F..%2Fb",
    ] {
        let status = d.raw("PUT", target, r#"{"value":"v"}"#).await;
        assert_eq!(status, 400, "{target}");
    }
    for bad in [
        "a//b",
        "a%00b",
        "a%0Ab",
        "a/b%20c",
        "x/versions",
        "x/rollback",
    ] {
        let (s, b) = d.put(&admin, bad, json!({"value": "v"})).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "invalid_path"),
            "{bad}: {b}"
        );
    }
    let long = "a".repeat(600);
    let (s, b) = d.put(&admin, &long, json!({"value": "v"})).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "invalid_path"));

    let cases = [
        json!({"value": 5}),
        json!({"value": "v", "unknown": 1}),
        json!({"value": "v", "type": "bogus"}),
        json!({"value": "v", "sensitivity": "extreme"}),
        json!({"value": "v", "expires_at": "tomorrow"}),
        json!({"value": "v", "metadata": [1, 2]}),
        json!({"type": "env_bundle", "value": "x"}),
        json!({"entries": {"1BAD": "x"}, "type": "env_bundle"}),
        json!({}),
    ];
    for body in cases {
        let (s, b) = d.put(&admin, "app/x", body.clone()).await;
        assert!(s == StatusCode::BAD_REQUEST, "{body} → {s} {b}");
        assert!(b["error"]["code"].is_string());
    }
    // Not JSON at all, and too large.
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/secrets/app/x", d.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"value": "x".repeat(2 * 1024 * 1024)});
    let (s, b) = d.put(&admin, "app/x", huge).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (s, b) = d.get("/v1/secrets?prefix=app/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["secrets"].as_array().unwrap().len(),
        0,
        "nothing was written: {b}"
    );
    let (s, b) = d.get("/v1/nope").await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = d.get("/v1/secrets?bogus=1").await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "bad_request"));
    d.stop().await;
}

#[tokio::test]
async fn env_bundles_and_listing_pages() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (s, b) = d.put(&admin, "production/stripe", json!({"type": "env_bundle", "entries": {"STRIPE_KEY": "sk_live_x", "STRIPE_WEBHOOK": "whsec_y"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for i in 0..5 {
        d.put(&admin, &format!("list/k{i}"), json!({"value": "v"}))
            .await;
    }
    let (_, page1) = d.get("/v1/secrets?prefix=list/&limit=3").await;
    assert_eq!(page1["secrets"].as_array().unwrap().len(), 3);
    let next = page1["next"].as_str().unwrap();
    let (_, page2) = d
        .get(&format!("/v1/secrets?prefix=list/&limit=3&after={next}"))
        .await;
    let paths: Vec<&str> = page2["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["list/k3", "list/k4"]);
    assert!(page2["next"].is_null());
    d.stop().await;
}
