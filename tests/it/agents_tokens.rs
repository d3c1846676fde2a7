//! Agents, their namespaces, scoped tokens: narrowing, escalation refusal, cross-namespace
//! denial (audited), revocation by token, agent, session and task.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, code};

#[tokio::test]
async fn agent_namespace_isolation_and_denials_are_audited() {
    let d = Daemon::start().await;
    let (a_id, a_key) = d.agent("alpha", 2).await;
    let (b_id, b_key) = d.agent("beta", 3).await;

    // Relative paths land in the agent's own namespace.
    let (s, b) = d
        .put(
            &a_key,
            "production/openai/api-key",
            json!({"value": "sk-alpha"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        b["full_path"],
        format!("entities/{a_id}/production/openai/api-key")
    );
    assert_eq!(b["path"], "production/openai/api-key");
    let (s, _) = d
        .call(
            Method::GET,
            "/v1/secrets/production/openai/api-key",
            Some(&a_key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Beta cannot reach alpha's secret: its relative path is in its own namespace …
    let (s, _) = d
        .call(
            Method::GET,
            "/v1/secrets/production/openai/api-key",
            Some(&b_key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // … and an absolute path into alpha's namespace is denied and audited.
    let abs = format!("/v1/secrets//entities/{a_id}/production/openai/api-key");
    let (s, b) = d.call(Method::GET, &abs, Some(&b_key), None).await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "access_denied"));
    let (s, _) = d
        .call(
            Method::PUT,
            &abs,
            Some(&b_key),
            Some(json!({"value": "overwrite"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = d
        .call(
            Method::GET,
            "/v1/secrets?prefix=/production",
            Some(&b_key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Admin endpoints are refused too.
    let (s, _) = d.call(Method::GET, "/v1/agents", Some(&b_key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let denied = d.events("access.denied").await;
    assert!(denied.len() >= 4, "{denied:?}");
    assert!(
        denied.iter().any(|e| e["actor_id"] == b_id.as_str()
            && e["resource_path"].as_str().unwrap().contains(&a_id))
    );
    assert!(
        denied
            .iter()
            .all(|e| e["outcome"] == "denied" && e["ip"] == "127.0.0.1")
    );

    // Bad credentials are refused and audited.
    let (s, b) = d
        .call(Method::GET, "/v1/secrets", Some("lk_agent_nonsense"), None)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = d.call(Method::GET, "/v1/secrets", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(d.events("auth.failed").await.len() >= 2);

    // Listing as an agent shows only its own secrets, with relative paths.
    let (_, b) = d.call(Method::GET, "/v1/secrets", Some(&a_key), None).await;
    let paths: Vec<&str> = b["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["production/openai/api-key"]);
    d.stop().await;
}

#[tokio::test]
async fn scoped_tokens_narrow_and_never_widen() {
    let d = Daemon::start().await;
    let (_, key) = d.agent("gamma", 3).await;
    d.put(&key, "production/openai/api-key", json!({"value": "sk"}))
        .await;
    d.put(&key, "staging/db", json!({"value": "pw"})).await;

    let (s, t) = d.mint(&key, json!({"scopes": ["secrets:list:production/**"], "ttl_seconds": 300, "session_id": "s1"})).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let tok = t["token"].as_str().unwrap().to_string();
    assert!(tok.starts_with("lk_tok_"));

    let (s, _) = d
        .call(
            Method::GET,
            "/v1/secrets/production/openai/api-key",
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = d
        .call(Method::GET, "/v1/secrets/staging/db", Some(&tok), None)
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "access_denied"));
    let (s, _) = d
        .put(&tok, "production/openai/api-key", json!({"value": "x"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "list scope does not allow write");
    let (_, b) = d.call(Method::GET, "/v1/secrets", Some(&tok), None).await;
    assert_eq!(
        b["secrets"].as_array().unwrap().len(),
        1,
        "listing filtered by scope: {b}"
    );

    // A child of the token: narrower is fine, wider is refused.
    let (s, c) = d
        .mint(
            &tok,
            json!({"scopes": ["secrets:list:production/openai/*"], "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(
        c["session_id"], "s1",
        "children inherit the session binding"
    );
    for wider in [
        json!({"scopes": ["secrets:list:**"], "ttl_seconds": 60}),
        json!({"scopes": ["secrets:write:production/**"], "ttl_seconds": 60}),
        json!({"scopes": ["secrets:*:production/**"], "ttl_seconds": 60}),
        json!({"scopes": ["secrets:list:production/**"], "ttl_seconds": 900}),
        json!({"scopes": ["secrets:list:production/**"], "ttl_seconds": 60, "session_id": "other"}),
    ] {
        let (s, b) = d.mint(&tok, wider.clone()).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::FORBIDDEN, "scope_escalation"),
            "{wider}"
        );
    }
    let (s, b) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 100000}),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "invalid_ttl"));
    let (s, b) = d.mint(&key, json!({"scopes": ["keys:read:**"]})).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "invalid_scope"));
    let (s, b) = d.mint(&key, json!({"scopes": ["secrets:read:**"]})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(b["expires_at"].is_string(), "default TTL applies");

    // A tampered token is refused.
    let mut forged = tok.clone();
    forged.insert(10, 'x');
    let (s, _) = d
        .call(Method::GET, "/v1/secrets", Some(&forged), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let issued = d.events("token.issued").await;
    assert!(issued.len() >= 3);
    d.stop().await;
}

async fn ok(d: &Daemon, token: &str) -> bool {
    d.call(Method::GET, "/v1/secrets", Some(token), None)
        .await
        .0
        == StatusCode::OK
}

#[tokio::test]
async fn revocation_by_token_agent_session_task() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (agent_id, key) = d.agent("delta", 2).await;
    let mint = |body| d.mint(&key, body);
    let t1 = mint(json!({"scopes": ["secrets:*:**"]})).await.1;
    let t1_tok = t1["token"].as_str().unwrap().to_string();
    let child = d
        .mint(
            &t1_tok,
            json!({"scopes": ["secrets:list:**"], "ttl_seconds": 60}),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let s1 = mint(json!({"scopes": ["secrets:*:**"], "session_id": "sess-1"}))
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let k1 = mint(json!({"scopes": ["secrets:*:**"], "task_id": "task-1"}))
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    for t in [&t1_tok, &child, &s1, &k1] {
        assert!(ok(&d, t).await);
    }

    // By token: the token and its children stop working at once.
    let (s, b) = d
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{}", t1["id"].as_str().unwrap()),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!ok(&d, &t1_tok).await && !ok(&d, &child).await);
    assert!(ok(&d, &s1).await);

    // By session (the agent revokes its own session): later tokens of that session are refused too.
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&key),
            Some(json!({"session_id": "sess-1"})),
        )
        .await;
    assert_eq!((s, b["revoked"].as_u64()), (StatusCode::OK, Some(1)));
    assert!(!ok(&d, &s1).await);
    let late = mint(json!({"scopes": ["secrets:*:**"], "session_id": "sess-1"}))
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!ok(&d, &late).await, "a revoked session stays revoked");

    // By task, as admin.
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&admin),
            Some(json!({"task_id": "task-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!ok(&d, &k1).await);

    // By agent: every token issued so far; the agent key itself keeps working.
    let t2 = mint(json!({"scopes": ["secrets:*:**"]})).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ok(&d, &t2).await);
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&admin),
            Some(json!({"agent_id": agent_id})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!ok(&d, &t2).await);
    assert!(ok(&d, &key).await);
    let t3 = mint(json!({"scopes": ["secrets:*:**"]})).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ok(&d, &t3).await, "tokens minted after the revocation work");

    // Bad revoke requests.
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&admin),
            Some(json!({"token_id": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(d.events("token.revoked").await.len() >= 3);
    d.stop().await;
}

#[tokio::test]
async fn agent_lifecycle_tier_disable_rotate() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    let (id, key) = d.agent("epsilon", 1).await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/agents",
            Some(&admin),
            Some(json!({"name": "epsilon"})),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "conflict"));
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/agents",
            Some(&admin),
            Some(json!({"name": "zeta", "trust_tier": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, b) = d
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&admin),
            Some(json!({"trust_tier": 4})),
        )
        .await;
    assert_eq!((s, b["trust_tier"].as_u64()), (StatusCode::OK, Some(4)));
    let (s, b) = d
        .call(Method::GET, &format!("/v1/agents/{id}"), Some(&key), None)
        .await;
    assert_eq!(
        (s, b["namespace"].as_str()),
        (StatusCode::OK, Some(format!("entities/{id}").as_str()))
    );

    let token = d.mint(&key, json!({"scopes": ["secrets:*:**"]})).await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    d.call(
        Method::PATCH,
        &format!("/v1/agents/{id}"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert!(
        !ok(&d, &key).await && !ok(&d, &token).await,
        "a disabled agent's key and tokens are refused"
    );
    d.call(
        Method::PATCH,
        &format!("/v1/agents/{id}"),
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await;
    assert!(ok(&d, &key).await);

    let (s, b) = d
        .call(
            Method::POST,
            &format!("/v1/agents/{id}/rotate-key"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_key = b["api_key"].as_str().unwrap().to_string();
    assert!(!ok(&d, &key).await, "the old key stops working");
    assert!(ok(&d, &new_key).await);
    let kinds: Vec<String> = d
        .events("agent.*")
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "agent.created",
            "agent.tier_changed",
            "agent.disabled",
            "agent.enabled",
            "agent.key_rotated"
        ]
    );
    d.stop().await;
}

#[tokio::test]
async fn a_child_token_without_a_ttl_lives_as_long_as_its_parent() {
    let d = Daemon::start().await;
    let (_, key) = d.agent("parent-of-many", 3).await;
    let (s, parent) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{parent}");
    // The default lifetime is longer than the parent's 100 s: the child is capped, not refused.
    let (s, child) = d
        .mint(
            parent["token"].as_str().unwrap(),
            json!({"scopes": ["secrets:read:**"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{child}");
    assert_eq!(child["expires_at"], parent["expires_at"]);
    // An asked lifetime beyond the parent's is still an escalation.
    let (s, b) = d
        .mint(
            parent["token"].as_str().unwrap(),
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 200}),
        )
        .await;
    assert_eq!(
        (s, crate::common::code(&b)),
        (StatusCode::FORBIDDEN, "scope_escalation")
    );
    d.stop().await;
}
