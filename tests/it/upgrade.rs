//! A data directory written by the release before the table seam (`tests/fixtures/
//! typed-layout`, made by latchkey 6024b86 through its API: secrets with versions, an agent,
//! a grant, leases, approvals, an approver token, a scoped token, a webhook, a policy) opens
//! on this one: the typed tables are converted once, the chain still verifies, the same keys
//! and tokens authenticate, and the stored values read back.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;

fn copy_fixture(to: &Path) -> Value {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/typed-layout");
    for f in [
        "latchkey.redb",
        "keyring.json",
        "master.key",
        "dev-admin-token",
    ] {
        let dest = to.join(f);
        std::fs::copy(from.join(f), &dest).unwrap();
        // git keeps 0644; the daemon refuses key files others can read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    serde_json::from_slice(&std::fs::read(from.join("fixture.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn a_data_directory_of_the_typed_layout_opens_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let fx = copy_fixture(dir.path());
    let admin = fx["admin_token"].as_str().unwrap().to_string();
    let agent = fx["agent_key"].as_str().unwrap().to_string();
    let approver = fx["approver_token"].as_str().unwrap().to_string();
    // The fixture's daemon had approver alice configured (config is not in the data dir).
    let alice = |cfg: &mut latchkey::config::Config| {
        cfg.approvers = vec![latchkey::config::ApproverConfig {
            name: "alice".into(),
            patterns: vec!["**".into()],
            telegram_user_id: None,
            discord_user_id: None,
        }];
    };
    let d = Daemon::start_in_with(dir, admin.clone(), alice).await;

    // The chain written by the old release verifies, with what this start added after it.
    let (s, v) = d.get("/v1/audit/verify").await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    assert!(v["checked"].as_u64().unwrap() >= fx["audit_events"].as_u64().unwrap());

    // Secrets, their versions, the agent (by id and by name), its grant, the policy, the
    // webhook with its cursor.
    let (_, db) = d.get("/v1/secrets/shared/db").await;
    assert_eq!(db["current_version"], 2, "{db}");
    let (_, versions) = d.get("/v1/secrets/shared/db/versions").await;
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(2),
        "{versions}"
    );
    let (_, list) = d.get("/v1/secrets?prefix=shared/").await;
    assert_eq!(list["secrets"].as_array().map(Vec::len), Some(3), "{list}");
    let (s, a) = d.get("/v1/agents/name:fixture-agent").await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (_, grants) = d.get("/v1/grants").await;
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    let (_, policies) = d.get("/v1/approval-policies").await;
    assert!(policies.to_string().contains("shared/vip"), "{policies}");
    let (_, hooks) = d.get("/v1/webhooks").await;
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks}");

    // The old leases are there, and the deadlines the old release queued for them hold: one
    // past its time is applied at start (a long-poll sees it happen), one not yet is not.
    for id in fx["leases"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        let (_, l) = d.get(&format!("/v1/leases/{id}")).await;
        let seen = l["state"].as_str().unwrap().to_string();
        let due = time::OffsetDateTime::parse(
            l["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
            < time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let l = if due && !["expired", "exhausted", "denied"].contains(&seen.as_str()) {
            d.get(&format!("/v1/leases/{id}?wait=10&seen={seen}"))
                .await
                .1
        } else {
            l
        };
        let state = l["state"].as_str().unwrap();
        if due {
            assert!(["expired", "exhausted", "denied"].contains(&state), "{l}");
        } else {
            assert!(["active", "pending"].contains(&state), "{l}");
        }
    }
    let (_, mine) = d
        .call(Method::GET, "/v1/leases?limit=10", Some(&agent), None)
        .await;
    assert_eq!(mine.as_array().map(Vec::len), Some(3), "{mine}");

    // The agent key and the approver token still authenticate; values decrypt.
    let (s, read) = d
        .call(
            Method::POST,
            "/v1/secrets//shared/db/read",
            Some(&agent),
            Some(json!({"reason": "after the upgrade"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["value"], "fixture-db-password-2");
    let (s, pending) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&agent),
            Some(json!({"path": "/shared/vip", "reason": "after the upgrade"})),
        )
        .await;
    assert_eq!(
        (s, &pending["state"]),
        (StatusCode::CREATED, &json!("pending"))
    );
    let approval = pending["approval"]["id"].as_str().unwrap();
    let (s, b) = d
        .call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(&approver),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let lease = pending["id"].as_str().unwrap();
    let (s, v) = d
        .call(
            Method::POST,
            &format!("/v1/leases/{lease}/secret"),
            Some(&agent),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, &v["value"]),
        (StatusCode::OK, &json!("fixture-vip-value"))
    );

    // The conversion happened once: a second start finds the seam's tables and verifies.
    let (dir, admin) = d.stop().await;
    let d = Daemon::start_in_with(dir, admin, alice).await;
    let (_, v) = d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, db) = d.get("/v1/secrets/shared/db").await;
    assert_eq!(db["current_version"], 2);
    d.stop().await;
}
