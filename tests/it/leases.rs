//! Leases and approvals end to end: the default matrix, quorum overrides, votes, deadlines
//! (live and during downtime), single-use under concurrency, uses and access limits,
//! revocation cascade, env_bundle key allowlists, long-polls, and the audit trail.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, code};
use latchkey::config::{ApproverConfig, Config};
use latchkey::policy::{OnDeadline, Override, Requirement};

fn approver(name: &str, patterns: &[&str]) -> ApproverConfig {
    ApproverConfig {
        name: name.into(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        telegram_user_id: None,
        discord_user_id: None,
    }
}

fn policy(pattern: &str, quorum: u32, deadline: Option<u64>, on_deadline: OnDeadline) -> Override {
    Override {
        pattern: pattern.into(),
        tiers: None,
        sensitivities: None,
        requirement: Requirement::Approval,
        quorum,
        deadline_seconds: deadline,
        on_deadline,
    }
}

fn setup(cfg: &mut Config) {
    cfg.approvers = vec![
        approver("alice", &["**"]),
        approver("bob", &["quorum/**", "production/**"]),
        approver("carol", &["staging/**"]),
    ];
    cfg.approval_policies = vec![
        policy("quorum/**", 2, None, OnDeadline::Deny),
        policy("short/deny/**", 1, Some(1), OnDeadline::Deny),
        policy("short/grant/**", 1, Some(1), OnDeadline::Grant),
    ];
}

/// A daemon with approvers alice, bob, carol (and their tokens), and a grant letting every
/// agent read and list everything outside its namespace.
struct World {
    d: Daemon,
    alice: String,
    bob: String,
    carol: String,
}

async fn world() -> World {
    let d = Daemon::start_with(setup).await;
    let admin = d.admin.clone();
    let (s, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "**", "actions": ["read", "list"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (s, b) = d
            .call(
                Method::POST,
                &format!("/v1/approvers/{name}/tokens"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        tokens.push(b["token"].as_str().unwrap().to_string());
    }
    let carol = tokens.pop().unwrap();
    let bob = tokens.pop().unwrap();
    let alice = tokens.pop().unwrap();
    World {
        d,
        alice,
        bob,
        carol,
    }
}

impl World {
    async fn secret(&self, path: &str, sensitivity: &str, value: &str) {
        let admin = self.d.admin.clone();
        let (s, b) = self
            .d
            .put(
                &admin,
                path,
                json!({"value": value, "sensitivity": sensitivity}),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }

    async fn lease(&self, key: &str, body: Value) -> (StatusCode, Value) {
        self.d
            .call(Method::POST, "/v1/leases", Some(key), Some(body))
            .await
    }

    async fn vote(&self, who: &str, approval: &str, decision: &str) -> (StatusCode, Value) {
        self.d
            .call(
                Method::POST,
                &format!("/v1/approvals/{approval}/votes"),
                Some(who),
                Some(json!({"decision": decision})),
            )
            .await
    }

    async fn use_lease(&self, key: &str, id: &str) -> (StatusCode, Value) {
        self.d
            .call(
                Method::POST,
                &format!("/v1/leases/{id}/secret"),
                Some(key),
                None,
            )
            .await
    }

    async fn show(&self, key: &str, id: &str) -> Value {
        self.d
            .call(Method::GET, &format!("/v1/leases/{id}"), Some(key), None)
            .await
            .1
    }
}

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
    let (_, b) = w.vote(&w.bob, &approval, "deny").await;
    assert_eq!(b["lease"]["state"], "denied");
    let (s, b) = w.use_lease(&key, l["id"].as_str().unwrap()).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "lease_not_active"));

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
    assert!(l["expires_at"].as_i64().unwrap() >= l["granted_at"].as_i64().unwrap() + 60);
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
async fn single_use_lease_under_fifty_concurrent_reads() {
    let w = world().await;
    w.secret("race/key", "standard", "only-once").await;
    let (_, key) = w.d.agent("racer", 3).await;
    let (_, l) = w.lease(&key, json!({"path": "/race/key"})).await;
    assert_eq!(l["state"], "active");
    let id = l["id"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, key) = (
            client.clone(),
            format!("{}/v1/leases/{id}/secret", w.d.base),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(key).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }));
    }
    let mut values = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            assert!(body.contains("only-once"));
            values += 1;
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert!(!body.contains("only-once"));
        }
    }
    assert_eq!(
        values, 1,
        "a single-use lease yields its value exactly once"
    );
    assert_eq!(w.d.events("secret.read").await.len(), 1);
    assert_eq!(w.show(&key, &id).await["state"], "exhausted");
    let (_, meta) = w.d.get("/v1/secrets/race/key").await;
    assert_eq!(meta["access_count"], 1);
    w.d.stop().await;
}

#[tokio::test]
async fn uses_access_limits_and_expired_secrets() {
    let w = world().await;
    let admin = w.d.admin.clone();
    w.d.put(
        &admin,
        "multi/key",
        json!({"value": "m", "max_access_count": 4}),
    )
    .await;
    w.d.put(
        &admin,
        "old/key",
        json!({"value": "o", "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await;
    let (_, key) = w.d.agent("multi", 3).await;
    let (_, l) = w
        .lease(&key, json!({"path": "/multi/key", "uses": 3}))
        .await;
    let id = l["id"].as_str().unwrap().to_string();
    for left in [2, 1, 0] {
        let (s, v) = w.use_lease(&key, &id).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["lease"]["uses_left"], left);
    }
    assert_eq!(w.show(&key, &id).await["state"], "exhausted");
    assert_eq!(w.d.events("lease.exhausted").await.len(), 1);
    // max_access_count: one more read is allowed (4), then 410.
    let (_, l) = w
        .lease(&key, json!({"path": "/multi/key", "uses": 5}))
        .await;
    let id = l["id"].as_str().unwrap().to_string();
    assert_eq!(w.use_lease(&key, &id).await.0, StatusCode::OK);
    let (s, b) = w.use_lease(&key, &id).await;
    assert_eq!((s, code(&b)), (StatusCode::GONE, "expired"));
    // A secret past expires_at cannot be leased.
    let (s, b) = w.lease(&key, json!({"path": "/old/key"})).await;
    assert_eq!((s, code(&b)), (StatusCode::GONE, "expired"));
    // Bad requests.
    for bad in [
        json!({"path": "/multi/key", "uses": 0}),
        json!({"path": "/multi/key", "ttl_seconds": 999999}),
        json!({"path": "/multi/key", "action": "write"}),
        json!({"path": "/multi/key", "keys": ["A"]}),
    ] {
        let (s, b) = w.lease(&key, bad.clone()).await;
        assert!(s == StatusCode::BAD_REQUEST, "{bad} → {s} {b}");
    }
    let (s, _) = w.lease(&admin, json!({"path": "multi/key"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "leases are for agents");
    w.d.stop().await;
}

#[tokio::test]
async fn revoking_a_token_revokes_its_leases() {
    let w = world().await;
    w.secret("cascade/a", "standard", "v").await;
    w.secret("cascade/b", "critical", "v").await;
    let (_, key) = w.d.agent("cascader", 2).await;
    let (_, t) =
        w.d.mint(
            &key,
            json!({"scopes": ["secrets:read:/cascade/*"], "ttl_seconds": 600}),
        )
        .await;
    let token = t["token"].as_str().unwrap().to_string();
    let (_, active) = w
        .lease(
            &token,
            json!({"path": "/cascade/a", "uses": 5, "ttl_seconds": 3000}),
        )
        .await;
    assert_eq!(active["state"], "active");
    assert!(
        active["expires_at"].as_i64().unwrap() <= active["token_expires_at"].as_i64().unwrap(),
        "a lease never outlives its token"
    );
    let (_, pending) = w.lease(&token, json!({"path": "/cascade/b"})).await;
    assert_eq!(pending["state"], "pending");
    let (_, other) = w.lease(&key, json!({"path": "/cascade/a"})).await;
    let (s, b) =
        w.d.call(
            Method::DELETE,
            &format!("/v1/tokens/{}", t["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        w.show(&key, active["id"].as_str().unwrap()).await["state"],
        "revoked"
    );
    let p = w.show(&key, pending["id"].as_str().unwrap()).await;
    assert_eq!(
        (p["state"].as_str(), p["approval"]["state"].as_str()),
        (Some("revoked"), Some("cancelled"))
    );
    assert_eq!(
        w.show(&key, other["id"].as_str().unwrap()).await["state"],
        "active",
        "leases of the agent key stay"
    );
    // Direct revocation.
    let (s, b) =
        w.d.call(
            Method::DELETE,
            &format!("/v1/leases/{}", other["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("revoked")));
    let (s, b) =
        w.d.call(
            Method::DELETE,
            &format!("/v1/leases/{}", other["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(w.d.events("lease.revoked").await.len(), 3);
    w.d.stop().await;
}

#[tokio::test]
async fn env_bundle_key_allowlist() {
    let w = world().await;
    let admin = w.d.admin.clone();
    w.d.put(&admin, "bundles/stripe", json!({"type": "env_bundle", "entries": {"STRIPE_KEY": "sk_live", "STRIPE_WEBHOOK": "whsec", "OTHER": "x"}})).await;
    let (agent, key) = w.d.agent("bundler", 3).await;
    let (s, b) = w.d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "agent", "value": agent}, "pattern": "bundles/*", "actions": ["read"], "limits": {"keys": ["STRIPE_KEY", "STRIPE_WEBHOOK"]}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = w
        .lease(&key, json!({"path": "/bundles/stripe", "keys": ["OTHER"]}))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "access_denied"));
    let (_, l) = w
        .lease(
            &key,
            json!({"path": "/bundles/stripe", "keys": ["STRIPE_KEY"]}),
        )
        .await;
    let (_, v) = w.use_lease(&key, l["id"].as_str().unwrap()).await;
    assert_eq!(v["entries"], json!({"STRIPE_KEY": "sk_live"}));
    let (_, l) = w.lease(&key, json!({"path": "/bundles/stripe"})).await;
    let (_, v) = w.use_lease(&key, l["id"].as_str().unwrap()).await;
    assert_eq!(
        v["entries"],
        json!({"STRIPE_KEY": "sk_live", "STRIPE_WEBHOOK": "whsec"}),
        "the grant's keys apply by default"
    );
    w.d.stop().await;
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

#[tokio::test]
async fn lease_lists_page_with_before_and_hourly_limits_hold() {
    let w = world().await;
    let admin = w.d.admin.clone();
    w.secret("team/a", "standard", "v-a").await;
    let (agent_id, key) = w.d.agent("pager", 5).await;
    // A narrower grant for this agent: at most 4 leases an hour.
    let grant = json!({"subject": {"kind": "agent", "value": agent_id}, "pattern": "team/**",
        "actions": ["read"], "limits": {"max_leases_per_hour": 4}});
    let (s, b) =
        w.d.call(Method::POST, "/v1/grants", Some(&admin), Some(grant))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (s, l) = w
            .lease(&key, json!({"path": "/team/a", "action": "read"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        ids.push(l["id"].as_str().unwrap().to_string());
    }
    let (s, b) = w
        .lease(&key, json!({"path": "/team/a", "action": "read"}))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{b}"
    );

    // Newest first, two a page, `before` = the last id seen; the agent's view and the admin's.
    ids.reverse();
    for who in [&key, &admin] {
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..10 {
            let q = match &before {
                Some(b) => format!("/v1/leases?limit=2&before={b}"),
                None => "/v1/leases?limit=2".to_string(),
            };
            let (s, page) = w.d.call(Method::GET, &q, Some(who), None).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let page: Vec<String> = page
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_string())
                .collect();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            before = page.last().cloned();
            seen.extend(page);
        }
        assert_eq!(seen, ids, "every lease once, newest first");
    }

    // Approvals page the same way.
    w.secret("team/c", "critical", "v-c").await;
    let (_, shy) = w.d.agent("shy", 1).await;
    let mut approvals = Vec::new();
    for _ in 0..3 {
        let (s, l) = w
            .lease(&shy, json!({"path": "/team/c", "action": "read"}))
            .await;
        assert_eq!(
            (s, l["state"].as_str()),
            (StatusCode::CREATED, Some("pending")),
            "{l}"
        );
        approvals.push(l["approval"]["id"].as_str().unwrap().to_string());
    }
    approvals.reverse();
    let page = |q: String| {
        let d = &w.d;
        let admin = admin.clone();
        async move {
            let (s, b) = d.call(Method::GET, &q, Some(&admin), None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b.as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let first = page("/v1/approvals?limit=2".into()).await;
    assert_eq!(first, approvals[..2]);
    let rest = page(format!("/v1/approvals?limit=2&before={}", first[1])).await;
    assert_eq!(rest, approvals[2..]);
}
