//! Proxy services as declared: templates pointed at a self-hosted upstream, dotted endpoint
//! names, env_bundle entries injected in several places, services that survive a restart,
//! and lease revocation with a reason.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, code};
use crate::proxy::{TOKEN, lease, setup, upstream};

#[tokio::test]
async fn templates_take_a_local_base_url_endpoints_take_dots_and_revocation_a_reason() {
    let d = Daemon::start().await;
    let (base, _) = upstream().await;
    setup(&d, &base, true).await;
    let admin = d.admin.clone();
    // A template pointed at a self-hosted (here: local) upstream.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/services",
            Some(&admin),
            Some(
                json!({"template": "github", "name": "ghe", "secret": "/svc/up-token",
                "base_url": base, "allow_private": true}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["allow_private"], true);
    // Without allow_private, an http upstream is refused.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/services",
            Some(&admin),
            Some(json!({"template": "github", "name": "ghe2", "secret": "svc/up-token", "base_url": base})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{b}"
    );
    // Endpoint names with dots, as agentic-credential-vault names them.
    let service = json!({"service": {
        "name": "acv", "base_url": base, "secret": "svc/up-token", "allow_private": true,
        "inject": {"kind": "header", "name": "authorization", "template": "Bearer {secret}"},
        "endpoints": {"repo.get": {"method": "GET", "path": "/repos/{owner}"}}}});
    let (s, b) = d
        .call(Method::POST, "/v1/services", Some(&admin), Some(service))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, key) = d.agent("templated", 3).await;
    let l = lease(&d, &key, "/svc/up-token", 5).await;
    let id = l["id"].as_str().unwrap();
    for (path, want) in [
        ("/v1/proxy/ghe/get_repo", json!({"owner": "o", "repo": "r"})),
        ("/v1/proxy/acv/repo.get", json!({"owner": "o"})),
    ] {
        let (s, a) = d
            .call(
                Method::POST,
                path,
                Some(&key),
                Some(json!({"lease_id": id, "params": want})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{path}: {a}");
        assert_eq!(a["status"], 200, "{path}: {a}");
    }
    // Revocation with a reason, recorded in the audit event.
    let (s, b) = d
        .call(
            Method::DELETE,
            &format!("/v1/leases/{id}?reason=job%20finished"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["state"], "revoked");
    let revoked = d.events("lease.revoked").await;
    assert_eq!(
        revoked[0]["details"]["reason"], "job finished",
        "{revoked:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_service_injects_chosen_entries_of_a_bundle_in_several_places() {
    let d = Daemon::start().await;
    let (base, seen) = upstream().await;
    let admin = d.admin.clone();
    // Clawb's layout: one bundle per bot, the service takes one key of it.
    let (s, b) = d
        .put(
            &admin,
            "sets/stripe/prod/billing-bot",
            json!({"type": "env_bundle", "entries": {"STRIPE_SECRET_KEY": TOKEN,
                "STRIPE_ACCOUNT": "acct_PLACED_77", "UNRELATED": "unrelated-value-99"}}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let service = json!({"service": {
        "name": "stripe-bot", "base_url": base, "secret": "sets/stripe/prod/billing-bot",
        "allow_private": true, "key": "STRIPE_SECRET_KEY",
        "inject": [{"kind": "header", "name": "authorization", "template": "Bearer {secret}"},
                   {"kind": "query", "name": "account", "key": "STRIPE_ACCOUNT"}],
        "endpoints": {"get_item": {"method": "GET", "path": "/items/{id}"}, "echo": {"method": "GET", "path": "/echo"}}}});
    let (s, b) = d
        .call(Method::POST, "/v1/services", Some(&admin), Some(service))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["inject"].as_array().unwrap().len(), 2);
    let (agent, key) = d.agent("billing-bot", 3).await;
    // The grant's key allowlist still applies: first it leaves STRIPE_ACCOUNT out.
    let grant = |keys: Value| {
        json!({"subject": {"kind": "agent", "value": agent}, "pattern": "sets/stripe/**",
            "actions": ["proxy"], "limits": {"keys": keys}})
    };
    let (s, b) = d
        .call(
            Method::PUT,
            "/v1/grants/bot",
            Some(&admin),
            Some(grant(json!(["STRIPE_SECRET_KEY"]))),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let narrow = lease(&d, &key, "/sets/stripe/prod/billing-bot", 2).await;
    let call = |lease: Value, ep: &'static str| {
        let (d, key) = (&d, key.clone());
        async move {
            d.call(
                Method::POST,
                &format!("/v1/proxy/stripe-bot/{ep}"),
                Some(&key),
                Some(json!({"lease_id": lease["id"], "params": {"id": "7"}})),
            )
            .await
        }
    };
    let (s, b) = call(narrow.clone(), "get_item").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "access_denied"),
        "{b}"
    );
    assert!(seen.0.lock().unwrap().is_empty(), "nothing was sent");
    assert_eq!(
        d.show_lease_state(&key, narrow["id"].as_str().unwrap())
            .await,
        "active"
    );
    // With both keys allowed, each lands in its place.
    let (s, b) = d
        .call(
            Method::PUT,
            "/v1/grants/bot",
            Some(&admin),
            Some(grant(json!(["STRIPE_SECRET_KEY", "STRIPE_ACCOUNT"]))),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let wide = lease(&d, &key, "/sets/stripe/prod/billing-bot", 2).await;
    let (s, a) = call(wide.clone(), "get_item").await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(
        a["status"], 200,
        "the header carried STRIPE_SECRET_KEY alone: {a}"
    );
    let (uri, auth, _) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(auth, format!("Bearer {TOKEN}"));
    assert_eq!(uri, "/items/7?account=acct_PLACED_77");
    // The echo of either injected value is redacted.
    let (_, a) = call(wide, "echo").await;
    assert_eq!(a["body"]["leak"], "[redacted]", "{a}");
    d.stop().await;
}

#[tokio::test]
async fn services_declared_through_the_api_survive_a_restart() {
    let d = Daemon::start().await;
    let (base, _) = upstream().await;
    setup(&d, &base, true).await;
    let (dir, admin) = d.stop().await;
    let d = Daemon::start_in(dir, admin.clone()).await;
    let (s, list) = d
        .call(Method::GET, "/v1/services", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "up" && v["origin"] == "api"),
        "{list}"
    );
    let (s, _) = d
        .call(Method::DELETE, "/v1/services/up", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    d.stop().await;
}
