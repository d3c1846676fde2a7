//! Lease approvals end to end: the default tier × sensitivity matrix, quorum overrides and
//! votes (duplicates, refusals, decisions), deadlines that deny or auto-grant (live and during
//! downtime), and the long-poll that wakes on the vote, with the audit trail of it all.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, code};
use crate::lease_world::{World, setup, world};

#[tokio::test]
async fn default_matrix_all_fifteen_cells() {
    let w = world().await;
    for sens in ["standard", "sensitive", "critical"] {
        w.secret(&format!("matrix/{sens}"), sens, "v").await;
    }
    let expected = [
        (1, ["active", "pending", "pending"]),
        (2, ["active", "pending", "pending"]),
        (3, ["active", "active", "pending"]),
        (4, ["active", "active", "pending"]),
        (5, ["active", "active", "active"]),
    ];
    for (tier, states) in expected {
        let (_, key) = w.d.agent(&format!("tier{tier}"), tier).await;
        for (sens, want) in ["standard", "sensitive", "critical"].iter().zip(states) {
            let (s, l) = w
                .lease(
                    &key,
                    json!({"path": format!("/matrix/{sens}"), "reason": "matrix"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{l}");
            assert_eq!(l["state"], want, "tier {tier} × {sens}: {l}");
            assert_eq!(
                l["policy"]["source"],
                format!("default: tier {tier} × {sens}")
            );
            if want == "pending" {
                assert_eq!(l["approval"]["votes_needed"], 1);
                assert_eq!(l["approval"]["votes"], 0);
                let on_deadline = l["policy"]["on_deadline"].as_str().unwrap();
                assert_eq!(
                    on_deadline,
                    if tier == 4 { "grant" } else { "deny" },
                    "tier {tier} × {sens}"
                );
                if tier == 4 {
                    assert_eq!(l["policy"]["deadline_seconds"], 86400);
                }
            }
            assert_eq!(
                l["flagged"],
                tier == 5 && *sens == "critical",
                "tier {tier} × {sens}"
            );
        }
    }
    let granted = w.d.events("lease.granted").await;
    assert!(
        granted.iter().any(|e| e["details"]["flagged"] == true),
        "the tier 5 critical grant is flagged in the audit log"
    );
    w.d.stop().await;
}

#[tokio::test]
async fn quorum_votes_duplicates_refusals_and_decisions() {
    let w = world().await;
    w.secret("quorum/key", "standard", "quorum-value").await;
    let (_, key) = w.d.agent("q-agent", 5).await;

    // Two approvals grant.
    let (_, l) = w
        .lease(&key, json!({"path": "/quorum/key", "reason": "deploy"}))
        .await;
    assert_eq!(l["state"], "pending");
    assert_eq!(l["policy"]["source"], "policy quorum/**");
    assert_eq!(l["approval"]["votes_needed"], 2);
    let approval = l["approval"]["id"].as_str().unwrap().to_string();
    let (s, b) = w.vote(&w.alice, &approval, "approve").await;
    assert_eq!(
        (s, b["result"].as_str()),
        (StatusCode::OK, Some("counted")),
        "{b}"
    );
    let (s, b) = w.vote(&w.alice, &approval, "approve").await;
    assert_eq!(
        (s, b["result"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "a second vote counts once"
    );
    assert_eq!(b["approval"]["tally"]["votes"].as_array().unwrap().len(), 1);
    // Carol may not decide quorum/**: refused and audited.
    let (s, b) = w.vote(&w.carol, &approval, "approve").await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "access_denied"));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an approver for quorum/key")
    );
    assert_eq!(w.d.events("approval.vote_rejected").await.len(), 1);
    // An agent may not vote either.
    let (s, _) = w.vote(&key, &approval, "approve").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = w.vote(&w.bob, &approval, "approve").await;
    assert_eq!(
        (s, b["result"].as_str()),
        (StatusCode::OK, Some("decided")),
        "{b}"
    );
    assert_eq!(b["lease"]["state"], "active");
    assert_eq!(b["approval"]["tally"]["decided_by"], "bob");
    let (s, b) = w.vote(&w.alice, &approval, "deny").await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "already_decided"));
    assert!(
        b["error"]["message"].as_str().unwrap().contains("by bob"),
        "{b}"
    );
    let lease_id = l["id"].as_str().unwrap();
    let (s, v) = w.use_lease(&key, lease_id).await;
    assert_eq!(
        (s, v["value"].as_str()),
        (StatusCode::OK, Some("quorum-value")),
        "{v}"
    );

    // Approve + deny denies.
    let (_, l) = w.lease(&key, json!({"path": "/quorum/key"})).await;
    let approval = l["approval"]["id"].as_str().unwrap().to_string();
    w.vote(&w.alice, &approval, "approve").await;
    let (_, b) =
        w.d.call(
            Method::POST,
            &format!("/v1/approvals/{approval}/votes"),
            Some(&w.bob.clone()),
            Some(json!({"decision": "deny", "reason": "not on a Friday"})),
        )
        .await;
    assert_eq!(b["lease"]["state"], "denied");
    let (s, b) = w.use_lease(&key, l["id"].as_str().unwrap()).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "lease_not_active"));
    // The agent reads who denied and why on its own lease.
    let lease_path = format!("/v1/leases/{}", l["id"].as_str().unwrap());
    let (_, mine) = w.d.call(Method::GET, &lease_path, Some(&key), None).await;
    assert_eq!(mine["approval"]["state"], "denied", "{mine}");
    assert_eq!(mine["approval"]["decided_by"], "bob");
    assert_eq!(mine["approval"]["reason"], "not on a Friday");

    // Listing: bob sees pending approvals for his paths only.
    w.lease(&key, json!({"path": "/quorum/key"})).await;
    let (_, list) =
        w.d.call(
            Method::GET,
            "/v1/approvals?state=pending",
            Some(&w.bob.clone()),
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) =
        w.d.call(
            Method::GET,
            "/v1/approvals?state=pending",
            Some(&w.carol.clone()),
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 0);

    let (_, v) = w.d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    w.d.stop().await;
}

async fn wait_state(w: &World, key: &str, id: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let l = w.show(key, id).await;
        if l["state"] == want || Instant::now() > deadline {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deadlines_deny_and_auto_grant() {
    let w = world().await;
    w.secret("short/deny/k", "standard", "v").await;
    w.secret("short/grant/k", "standard", "auto-granted-value")
        .await;
    let (_, key) = w.d.agent("waiter", 1).await;
    let (_, denied) = w.lease(&key, json!({"path": "/short/deny/k"})).await;
    let (_, granted) = w
        .lease(&key, json!({"path": "/short/grant/k", "ttl_seconds": 60}))
        .await;
    let l = wait_state(
        &w,
        &key,
        denied["id"].as_str().unwrap(),
        "expired",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(l["state"], "expired", "{l}");
    assert_eq!(l["approval"]["state"], "expired");
    let l = wait_state(
        &w,
        &key,
        granted["id"].as_str().unwrap(),
        "active",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(l["state"], "active", "{l}");
    assert_eq!(l["approval"]["state"], "auto_granted");
    assert_eq!(l["approval"]["decided_by"], "deadline");
    // The TTL starts at the grant, not at the request.
    assert!(crate::common::unix(&l["expires_at"]) >= crate::common::unix(&l["granted_at"]) + 60);
    let (s, v) = w.use_lease(&key, granted["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["value"].as_str()),
        (StatusCode::OK, Some("auto-granted-value"))
    );
    // A vote after the deadline: an approve is too late, recorded as the deadline's outcome.
    let approval = denied["approval"]["id"].as_str().unwrap();
    let (s, b) = w.vote(&w.alice, approval, "approve").await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "already_decided"));
    assert_eq!(w.d.events("approval.expired").await.len(), 1);
    assert_eq!(w.d.events("approval.auto_granted").await.len(), 1);
    w.d.stop().await;
}

#[tokio::test]
async fn deadline_passed_during_downtime_is_applied_at_start() {
    let w = world().await;
    w.secret("short/deny/k", "standard", "v").await;
    let (_, key) = w.d.agent("sleeper", 1).await;
    let (_, l) = w.lease(&key, json!({"path": "/short/deny/k"})).await;
    let id = l["id"].as_str().unwrap().to_string();
    let (dir, admin) = w.d.stop().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let d = Daemon::start_in_with(dir, admin, setup).await;
    let start = Instant::now();
    let mut state = Value::Null;
    while start.elapsed() < Duration::from_secs(3) {
        state = d
            .call(Method::GET, &format!("/v1/leases/{id}"), Some(&key), None)
            .await
            .1["state"]
            .clone();
        if state == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "expired");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "applied at start, not later: {:?}",
        start.elapsed()
    );
    d.stop().await;
}

#[tokio::test]
async fn long_poll_wakes_on_the_vote_and_one_call_read() {
    let w = world().await;
    w.secret("poll/critical", "critical", "polled-value").await;
    w.secret("poll/standard", "standard", "instant-value").await;
    let (_, key) = w.d.agent("poller", 1).await;
    // The one-call read: instant → the value; approval needed → 202 with the pending lease.
    let (s, v) =
        w.d.call(
            Method::POST,
            "/v1/secrets//poll/standard/read",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        (s, v["value"].as_str()),
        (StatusCode::OK, Some("instant-value")),
        "{v}"
    );
    let (s, l) =
        w.d.call(
            Method::POST,
            "/v1/secrets//poll/critical/read",
            Some(&key),
            Some(json!({"reason": "need it"})),
        )
        .await;
    assert_eq!(
        (s, l["state"].as_str()),
        (StatusCode::ACCEPTED, Some("pending")),
        "{l}"
    );
    let id = l["id"].as_str().unwrap().to_string();
    let approval = l["approval"]["id"].as_str().unwrap().to_string();

    let poll = {
        let (base, key, id) = (w.d.base.clone(), key.clone(), id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = reqwest::Client::new()
                .get(format!("{base}/v1/leases/{id}?wait=30"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            (started.elapsed(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let voted_at = Instant::now();
    let (s, _) = w.vote(&w.alice, &approval, "approve").await;
    assert_eq!(s, StatusCode::OK);
    let (elapsed, body) = poll.await.unwrap();
    assert_eq!(body["state"], "active");
    assert!(
        elapsed >= Duration::from_millis(300),
        "the poll waited for the vote"
    );
    assert!(
        voted_at.elapsed() < Duration::from_secs(1),
        "answered within a second of the vote"
    );
    let (s, v) = w.use_lease(&key, &id).await;
    assert_eq!(
        (s, v["value"].as_str()),
        (StatusCode::OK, Some("polled-value"))
    );
    // A poll with nothing to wait for times out with the same state.
    let (s, _) =
        w.d.call(
            Method::GET,
            &format!("/v1/leases/{id}?wait=61"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, pending) =
        w.d.call(Method::GET, "/v1/leases?state=exhausted", Some(&key), None)
            .await;
    assert_eq!(pending.as_array().unwrap().len(), 2);

    // Every transition is in the audit log, and the chain verifies.
    let kinds: Vec<String> =
        w.d.events("lease.*")
            .await
            .iter()
            .chain(w.d.events("approval.*").await.iter())
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
    for k in [
        "lease.requested",
        "lease.granted",
        "lease.exhausted",
        "approval.requested",
        "approval.voted",
        "approval.granted",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let audit = w.d.get("/v1/audit?limit=1000").await.1.to_string();
    assert!(!audit.contains("polled-value") && !audit.contains("instant-value"));
    let (_, v) = w.d.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true);
    w.d.stop().await;
}
