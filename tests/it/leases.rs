//! Using leases end to end: single-use under concurrency, uses and access limits, expired
//! secrets and bad requests, revocation (cascading from a token, and direct), env_bundle key
//! allowlists, and paging of lease and approval lists with hourly limits holding.

use reqwest::{Method, StatusCode};
use serde_json::json;

use std::time::Duration;

use crate::common::code;
use crate::lease_world::world;

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
        crate::common::unix(&active["expires_at"])
            <= crate::common::unix(&active["token_expires_at"]),
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
async fn an_env_bundle_put_as_dotenv_lines_reads_as_entries() {
    let w = world().await;
    let admin = w.d.admin.clone();
    // 1claw's put_secret: the bundle as KEY=VALUE lines, read with `import .env`'s rules.
    let lines = "# billing\nSTRIPE_KEY=sk_live_lines\nexport LABEL='two words'\nEMPTY=\n";
    let (s, b) =
        w.d.put(
            &admin,
            "bundles/lines",
            json!({"type": "env_bundle", "value": lines}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, key) = w.d.agent("liner", 3).await;
    let (_, l) = w.lease(&key, json!({"path": "/bundles/lines"})).await;
    let (_, v) = w.use_lease(&key, l["id"].as_str().unwrap()).await;
    assert_eq!(
        v["entries"],
        json!({"STRIPE_KEY": "sk_live_lines", "LABEL": "two words", "EMPTY": ""})
    );
    // A malformed line refuses it (naming the line, never the value); so does an empty value
    // for any other type.
    for (body, says) in [
        (
            json!({"type": "env_bundle", "value": "GOOD=1\nnot a line\n"}),
            "line 2",
        ),
        (
            json!({"type": "env_bundle", "value": "A=1\nA=2\n"}),
            "line 2",
        ),
        (json!({"value": ""}), "empty"),
    ] {
        let (s, b) = w.d.put(&admin, "bundles/bad", body.clone()).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{body}"
        );
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{b}"
        );
    }
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

#[tokio::test]
async fn a_time_bound_grant_stops_applying_at_its_expiry_and_says_so() {
    // A daemon with no other grant: only the time-bound one lets the agent out of its namespace.
    let d = crate::common::Daemon::start().await;
    let admin = d.admin.clone();
    d.put(&admin, "billing/stripe", json!({"value": "sk-timebound"}))
        .await;
    let (agent, key) = d.agent("contractor", 3).await;
    let lease = |body: serde_json::Value| {
        let (d, key) = (&d, key.clone());
        async move {
            d.call(Method::POST, "/v1/leases", Some(&key), Some(body))
                .await
        }
    };
    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, g) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(json!({"subject": {"kind": "agent", "value": agent},
            "pattern": "billing/**", "actions": ["read"], "expires_at": until})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert!(g["expires_at"].is_string());
    let (s, b) = lease(json!({"path": "/billing/stripe"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // The expiry is audited when it comes (bounded wait), and from then on nothing is allowed.
    let expired = d
        .wait_events("grant.expired", 1, Duration::from_secs(10))
        .await;
    assert_eq!(expired.len(), 1, "grant.expired audited");
    assert_eq!(expired[0]["details"]["id"], g["id"]);
    let (s, b) = lease(json!({"path": "/billing/stripe"})).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "access_denied"),
        "{b}"
    );
    // A grant that is already over is refused.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/grants",
            Some(&admin),
            Some(json!({"subject": {"kind": "agent", "value": agent},
            "pattern": "billing/**", "actions": ["read"], "expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    d.stop().await;
}
