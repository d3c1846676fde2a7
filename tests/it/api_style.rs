//! One API, one style: every timestamp the API answers is RFC 3339 in UTC, and an audit
//! event's `changed` names only the fields whose value changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, admin_approves, unix};

/// Keys that hold a time.
fn is_time_key(k: &str) -> bool {
    k.ends_with("_at")
        || matches!(
            k,
            "at" | "deadline"
                | "timestamp"
                | "known_since"
                | "last_started"
                | "last_finished"
                | "next_run"
        )
}

/// Every time in `v` (recursively), checked to be RFC 3339 UTC; returns how many were seen.
fn check_times(v: &Value, path: &str) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| {
                let here = format!("{path}.{k}");
                if is_time_key(k) && !x.is_null() {
                    assert!(x.is_string(), "{here} = {x} is not RFC 3339");
                    unix(x);
                    1 + check_times(x, &here)
                } else {
                    check_times(x, &here)
                }
            })
            .sum(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| check_times(x, &format!("{path}[{i}]")))
            .sum(),
        _ => 0,
    }
}

#[tokio::test]
async fn every_timestamp_is_rfc3339() {
    let d = Daemon::start_with(admin_approves).await;
    let admin = d.admin.clone();
    d.put(
        &admin,
        "production/db",
        json!({"value": "STYLE-CANARY", "sensitivity": "critical"}),
    )
    .await;
    d.call(
        Method::POST,
        "/v1/grants",
        Some(&admin),
        Some(json!({"subject": {"kind": "namespace",
        "value": "entities"}, "pattern": "production/**", "actions": ["read"]})),
    )
    .await;
    let (_, key) = d.agent("styled", 2).await;
    let (s, pending) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "/production/db", "reason": "style"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pending}");
    let approval = pending["approval"]["id"].as_str().unwrap().to_string();
    let (s, voted) = d
        .call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(&admin),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{voted}");
    let lease = pending["id"].as_str().unwrap();
    let mut seen = check_times(&pending, "lease") + check_times(&voted, "vote");
    for (token, path) in [
        (&key, format!("/v1/leases/{lease}")),
        (&key, "/v1/leases".to_string()),
        (&admin, "/v1/approvals".to_string()),
        (&admin, format!("/v1/approvals/{approval}")),
        (&admin, "/v1/jobs".to_string()),
        (&admin, "/v1/agents".to_string()),
        (&admin, "/v1/secrets".to_string()),
        (&admin, "/v1/audit?limit=50".to_string()),
        (&admin, "/v1/grants".to_string()),
    ] {
        let (s, b) = d.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        seen += check_times(&b, &path);
    }
    assert!(seen > 20, "times were found and checked ({seen})");
    d.stop().await;
}

#[tokio::test]
async fn changed_names_only_what_changed() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    d.put(
        &admin,
        "app/k",
        json!({"value": "v1", "type": "password", "sensitivity": "sensitive"}),
    )
    .await;
    // The same type and sensitivity again, a new max_access_count: only that changed.
    let (s, b) = d
        .put(
            &admin,
            "app/k",
            json!({"type": "password", "sensitivity": "sensitive", "max_access_count": 9}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let updated = d.events("secret.updated").await;
    assert_eq!(
        updated[0]["details"]["changed"],
        json!(["max_access_count"])
    );
    d.stop().await;
}
