//! Audit webhooks end to end: signatures, payloads, order, retries, 410, restart, replay,
//! secret rotation and filters (destination safety and isolation: `webhook_safety.rs`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::receiver::{Mode, Receiver};

fn verifies(x: &crate::receiver::Received, secret: &str) -> bool {
    let h = webhooks::WebhookHeaders::from_pairs([
        ("webhook-id", x.id.as_str()),
        ("webhook-timestamp", x.timestamp.as_str()),
        ("webhook-signature", x.signature.as_str()),
    ])
    .unwrap();
    webhooks::verify(
        &[webhooks::Secret::parse(secret).unwrap()],
        &h,
        x.raw.as_bytes(),
        Duration::from_secs(300),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .is_ok()
}

/// Loopback receivers allowed, short backoffs.
pub(crate) fn dev(cfg: &mut latchkey::config::Config) {
    cfg.webhooks.allow_loopback = true;
    cfg.webhooks.min_backoff_ms = 50;
    cfg.webhooks.max_backoff_seconds = 1;
}

/// Subscribes `r` with `body` (its URL added) as admin; the receiver learns the secret.
pub(crate) async fn subscribe(d: &Daemon, r: &Receiver, body: Value) -> Value {
    let mut body = body;
    body["url"] = json!(r.url);
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&d.admin.clone()),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let secret = b["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    r.set_secrets(&[secret]);
    b
}

async fn last_seq(d: &Daemon) -> u64 {
    d.get("/v1/audit?limit=1").await.1["last_seq"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn events_arrive_signed_in_order_with_full_payloads() {
    let d = Daemon::start_with(dev).await;
    let r = Receiver::start().await;
    let sub = subscribe(
        &d,
        &r,
        json!({"events": ["audit.*"], "description": "graph"}),
    )
    .await;
    let admin = d.admin.clone();
    let canary = "WEBHOOK-CANARY-9911";
    d.put(&admin, "prod/k", json!({"value": canary})).await;
    let (agent_id, key) = d.agent("hooked", 5).await;
    d.call(Method::GET, "/v1/secrets", Some("lk_agent_bad"), None)
        .await;
    let (_, b) = d.call(Method::POST, "/v1/grants", Some(&admin), Some(json!({"subject": {"kind": "namespace", "value": "entities"}, "pattern": "prod/**", "actions": ["read"]}))).await;
    assert!(b["id"].is_string());
    let (_, l) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "/prod/k"})),
        )
        .await;
    d.call(
        Method::POST,
        &format!("/v1/leases/{}/secret", l["id"].as_str().unwrap()),
        Some(&key),
        None,
    )
    .await;
    // A scoped token of the agent acts too: its events name the agent as well.
    let (_, t) = d
        .mint(&key, json!({"scopes": ["secrets:read:/prod/*"]}))
        .await;
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(t["token"].as_str().unwrap()),
            Some(json!({"path": "/prod/k"})),
        )
        .await;
    assert!(s.is_success());
    let last = last_seq(&d).await;
    let got = r
        .wait_for(Duration::from_secs(10), |g| {
            g.iter().any(|x| x.body["data"]["seq"] == last)
        })
        .await;
    let first = sub["cursor"].as_u64().unwrap() + 1;
    let by = |kind: &str, event: &str| {
        got.iter()
            .find(|x| x.body["data"]["actor_type"] == kind && x.body["data"]["event"] == event)
            .unwrap_or_else(|| panic!("no {event} by {kind}"))
    };
    assert_eq!(
        by("agent", "secret.read").body["data"]["agent_id"],
        agent_id
    );
    assert_eq!(
        by("token", "lease.requested").body["data"]["agent_id"],
        agent_id
    );
    assert!(by("admin", "secret.created").body["data"]["agent_id"].is_null());
    let seqs: Vec<u64> = got
        .iter()
        .map(|x| x.body["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "every event once, in order"
    );
    for x in &got {
        assert!(x.verified, "signature verifies: {x:?}");
        assert!(x.user_agent.starts_with("latchkey/"));
        assert_eq!(
            x.id,
            x.body["data"]["id"].as_str().unwrap(),
            "webhook-id is the event id"
        );
        assert_eq!(
            x.body["type"],
            format!("audit.{}", x.body["data"]["event"].as_str().unwrap())
        );
        assert!(x.body["timestamp"].is_string());
        assert_eq!(x.body["data"]["timestamp"], x.body["timestamp"]);
        for field in [
            "timestamp",
            "agent_id",
            "event",
            "seq",
            "id",
            "actor_type",
            "actor_id",
            "namespace",
            "resource_path",
            "action",
            "outcome",
            "ip",
            "details",
        ] {
            assert!(x.body["data"].get(field).is_some(), "{field} missing");
        }
        assert!(!x.raw.contains(canary), "a value reached a webhook");
    }
    let types: Vec<&str> = got
        .iter()
        .map(|x| x.body["type"].as_str().unwrap())
        .collect();
    for t in [
        "audit.secret.created",
        "audit.agent.created",
        "audit.auth.failed",
        "audit.grant.created",
        "audit.lease.requested",
        "audit.lease.granted",
        "audit.secret.read",
        "audit.lease.exhausted",
    ] {
        assert!(types.contains(&t), "{t} not delivered: {types:?}");
    }
    let (_, deliveries) = d
        .get(&format!(
            "/v1/webhooks/{}/deliveries",
            sub["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == 200)
    );
    d.stop().await;
}

#[tokio::test]
async fn retries_keep_the_id_and_410_disables() {
    let d = Daemon::start_with(dev).await;
    let r = Receiver::start().await;
    let sub = subscribe(&d, &r, json!({"events": ["audit.secret.*"]})).await;
    let id = sub["id"].as_str().unwrap().to_string();
    r.set_mode(Mode::FailNext(500, 3));
    let admin = d.admin.clone();
    d.put(&admin, "retry/k", json!({"value": "v"})).await;
    let got = r
        .wait_for(Duration::from_secs(10), |g| {
            g.iter().any(|x| x.answered == 200)
        })
        .await;
    assert_eq!(got.len(), 4, "three 500s then one 200: {got:?}");
    assert!(
        got.iter().all(|x| x.id == got[0].id),
        "the same webhook-id on every retry"
    );
    // The log is saved right after the answer: wait (bounded) for it.
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = d.get(&format!("/v1/webhooks/{id}/deliveries")).await.1;
        if deliveries.as_array().is_some_and(|a| a.len() >= 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<u64> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    assert!(deliveries[0]["latency_ms"].is_u64());

    r.set_mode(Mode::Always(410));
    d.put(&admin, "retry/k2", json!({"value": "v"})).await;
    let mut status = Value::Null;
    for _ in 0..100 {
        status = d.get(&format!("/v1/webhooks/{id}")).await.1["status"].clone();
        if status == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "disabled");
    assert_eq!(d.events("webhook.disabled").await.len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn restart_mid_stream_loses_nothing_and_keeps_order() {
    let d = Daemon::start_with(dev).await;
    let r = Receiver::start().await;
    let sub = subscribe(&d, &r, json!({"events": ["audit.secret.created"]})).await;
    let admin = d.admin.clone();
    for i in 0..60 {
        d.put(&admin, &format!("many/k{i}"), json!({"value": "v"}))
            .await;
    }
    let expected: Vec<u64> = d
        .events("secret.created")
        .await
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(expected.len(), 60);
    // Stop while deliveries may still be in flight, then start again.
    let (dir, admin) = d.stop().await;
    let d = Daemon::start_in_with(dir, admin, dev).await;
    let got = r
        .wait_for(Duration::from_secs(15), |_| r.delivered_seqs().len() >= 60)
        .await;
    let seqs = r.delivered_seqs();
    assert_eq!(
        seqs,
        expected,
        "every event, in order, none missing ({} requests with duplicates)",
        got.len()
    );
    // Order per subscription holds across duplicates too: first arrivals are increasing.
    let _ = sub;
    d.stop().await;
}

#[tokio::test]
async fn replay_rotation_and_filters() {
    let d = Daemon::start_with(dev).await;
    let admin = d.admin.clone();
    let r_all = Receiver::start().await;
    let r_ns = Receiver::start().await;
    let r_approval = Receiver::start().await;
    let all = subscribe(&d, &r_all, json!({"events": ["audit.secret.created"]})).await;
    subscribe(
        &d,
        &r_ns,
        json!({"events": ["audit.*"], "namespace": "team-a"}),
    )
    .await;
    subscribe(&d, &r_approval, json!({"events": ["audit.approval.*"]})).await;
    d.put(&admin, "team-a/k", json!({"value": "v"})).await;
    d.put(&admin, "team-b/k", json!({"value": "v"})).await;
    r_all
        .wait_for(Duration::from_secs(10), |g| g.len() >= 2)
        .await;
    let ns = r_ns
        .wait_for(Duration::from_secs(3), |g| !g.is_empty())
        .await;
    assert!(
        ns.iter().all(|x| x.body["data"]["namespace"] == "team-a"),
        "namespace filter: {ns:?}"
    );
    let created: Vec<_> = ns
        .iter()
        .filter(|x| x.body["type"] == "audit.secret.created")
        .collect();
    assert_eq!(created.len(), 1, "team-b's secret is filtered out");
    assert!(r_approval.received().is_empty(), "pattern filter");

    // Replay from the first secret.created.
    let id = all["id"].as_str().unwrap();
    let first = d.events("secret.created").await[0]["seq"].as_u64().unwrap();
    let (s, _) = d
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/replay"),
            Some(&admin),
            Some(json!({"from_seq": first})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = r_all
        .wait_for(Duration::from_secs(10), |g| g.len() >= 4)
        .await;
    assert_eq!(got.len(), 4, "both events again");
    assert_eq!(got[2].id, got[0].id);

    // Rotation: both secrets sign during the grace period, only the new one after it.
    let old_secret = all["secret"].as_str().unwrap().to_string();
    let (s, b) = d
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            Some(&admin),
            // Long enough for the next delivery to land inside it on a loaded machine.
            Some(json!({"grace_seconds": 4})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let new_secret = b["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    d.put(&admin, "team-a/k2", json!({"value": "v"})).await;
    let got = r_all
        .wait_for(Duration::from_secs(10), |g| g.len() >= 5)
        .await;
    let during = got.last().unwrap().clone();
    assert_eq!(
        during.signature.split(' ').count(),
        2,
        "two signatures during the grace period"
    );
    r_all.set_secrets(&[&old_secret]);
    assert!(
        verifies(&during, &old_secret) && verifies(&during, &new_secret),
        "each secret alone verifies during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(4300)).await;
    r_all.set_secrets(&[&old_secret]);
    d.put(&admin, "team-a/k3", json!({"value": "v"})).await;
    let got = r_all
        .wait_for(Duration::from_secs(10), |g| g.len() >= 6)
        .await;
    let after = got.last().unwrap();
    assert_eq!(
        after.signature.split(' ').count(),
        1,
        "only the new secret signs after the grace period"
    );
    assert!(!after.verified, "the old secret no longer verifies");
    r_all.set_secrets(&[&new_secret]);
    d.put(&admin, "team-a/k4", json!({"value": "v"})).await;
    let got = r_all
        .wait_for(Duration::from_secs(10), |g| g.len() >= 7)
        .await;
    assert!(got.last().unwrap().verified);
    assert_eq!(
        d.events("webhook.*")
            .await
            .iter()
            .filter(|e| e["event"] == "webhook.secret_rotated")
            .count(),
        1
    );
    d.stop().await;
}

#[tokio::test]
async fn a_subscription_starts_at_the_next_event_or_at_from_seq() {
    let d = Daemon::start_with(dev).await;
    let admin = d.admin.clone();
    d.put(&admin, "prod/before", json!({"value": "v"})).await;
    let before = last_seq(&d).await;
    let (late, whole) = (Receiver::start().await, Receiver::start().await);
    let late_sub = subscribe(&d, &late, json!({"events": ["audit.*"]})).await;
    let whole_sub = subscribe(&d, &whole, json!({"events": ["audit.*"], "from_seq": 1})).await;
    assert_eq!(
        late_sub["cursor"].as_u64().unwrap(),
        before,
        "starts with its own creation"
    );
    assert_eq!(whole_sub["cursor"], 0, "from_seq 1: the whole log");
    let last = last_seq(&d).await;
    let got = whole
        .wait_for(Duration::from_secs(10), |g| {
            g.iter().any(|x| x.body["data"]["seq"] == last)
        })
        .await;
    assert_eq!(got[0].body["data"]["seq"], 1);
    let got = late
        .wait_for(Duration::from_secs(10), |g| {
            g.iter()
                .any(|x| x.body["data"]["event"] == "webhook.created")
        })
        .await;
    assert!(
        got.iter()
            .all(|x| x.body["data"]["seq"].as_u64().unwrap() > before)
    );
    d.stop().await;
}
