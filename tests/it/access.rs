//! Authorization: every route × every kind of credential gives the status the access rules
//! say (the table is checked against the OpenAPI document so no route is left out); a scoped
//! token reaches only the leases in its scope and lineage; approvers vote but do not revoke;
//! rotating or disabling an agent key ends what it minted.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::lease_world::world;

/// Passes the route's guard: neither 401 nor 403 (the status then depends on the request).
const PASS: u16 = 0;

/// The credentials of a table row, in the order the cells are run (the admin, who may
/// change most, last).
const WHO: [&str; 5] = ["none", "approver", "scoped token", "agent key", "admin"];

struct Row {
    method: Method,
    /// The route as the OpenAPI document names it.
    template: &'static str,
    /// The request path; `{ns}` becomes the agent's namespace for the admin (agents write
    /// paths relative to theirs).
    path: String,
    body: Option<Value>,
    expect: [u16; 5],
}

fn row(
    method: Method,
    template: &'static str,
    path: &str,
    body: Option<Value>,
    expect: [u16; 5],
) -> Row {
    Row {
        method,
        template,
        path: path.to_string(),
        body,
        expect,
    }
}

#[tokio::test]
async fn every_route_answers_each_kind_of_credential_as_the_rules_say() {
    let w = world().await;
    let d = &w.d;
    let admin = d.admin.clone();
    let (a_id, a_key) = d.agent("table-a", 2).await;
    let (b_id, b_key) = d.agent("table-b", 2).await;
    let (s, t) = d
        .mint(
            &a_key,
            json!({"scopes": ["secrets:*:**", "secrets:*:/**"], "ttl_seconds": 600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let scoped = t["token"].as_str().unwrap().to_string();
    let (s, t) = d.mint(&b_key, json!({"scopes": ["secrets:read:**"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let b_token = t["id"].as_str().unwrap().to_string();
    let (s, b) = d
        .put(&a_key, "mine/x", json!({"value": "table-value-1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A lease the agent key opened: its scoped token does not reach it.
    let (s, l) = w
        .lease(
            &a_key,
            json!({"path": "mine/x", "action": "read", "uses": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let key_lease = l["id"].as_str().unwrap().to_string();

    use Method as M;
    let lease = format!("/v1/leases/{key_lease}");
    let rows = vec![
        row(M::GET, "/healthz", "/healthz", None, [200; 5]),
        row(M::GET, "/readyz", "/readyz", None, [200; 5]),
        row(M::GET, "/openapi.json", "/openapi.json", None, [200; 5]),
        row(
            M::GET,
            "/v1/status",
            "/v1/status",
            None,
            [401, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/whoami",
            "/v1/whoami",
            None,
            [401, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/admin-tokens",
            "/v1/admin-tokens",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/admin-tokens",
            "/v1/admin-tokens",
            Some(json!({"description": "table"})),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::DELETE,
            "/v1/admin-tokens/{id}",
            "/v1/admin-tokens/01NOSUCHADMINTOKEN",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::GET,
            "/v1/keys",
            "/v1/keys",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/keys/rotate",
            "/v1/keys/rotate",
            None,
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::POST,
            "/v1/keys/rewrap",
            "/v1/keys/rewrap",
            None,
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::GET,
            "/v1/secrets",
            "/v1/secrets",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::PUT,
            "/v1/secrets/{path}",
            "/v1/secrets/{ns}mine/x",
            Some(json!({"value": "table-value-2"})),
            [401, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/secrets/{path}",
            "/v1/secrets/{ns}mine/x",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/secrets/{path}/versions",
            "/v1/secrets/{ns}mine/x/versions",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::POST,
            "/v1/secrets/{path}/rollback",
            "/v1/secrets/{ns}mine/x/rollback",
            Some(json!({"version": 1})),
            [401, 403, 200, 200, 200],
        ),
        row(
            M::POST,
            "/v1/secrets/{path}/read",
            "/v1/secrets/{ns}mine/x/read",
            Some(json!({})),
            [401, 403, 200, 200, 403],
        ),
        row(
            M::DELETE,
            "/v1/secrets/{path}",
            "/v1/secrets/{ns}mine/none",
            None,
            [401, 403, 404, 404, 404],
        ),
        row(
            M::POST,
            "/v1/secrets/{path}/restore",
            "/v1/secrets/{ns}mine/none/restore",
            None,
            [401, 403, 404, 404, 404],
        ),
        row(
            M::POST,
            "/v1/agents",
            "/v1/agents",
            Some(json!({"name": "table-c"})),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::GET,
            "/v1/agents",
            "/v1/agents",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::GET,
            "/v1/agents/{id}",
            &format!("/v1/agents/{a_id}"),
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/agents/{id}",
            &format!("/v1/agents/{b_id}"),
            None,
            [401, 403, 403, 403, 200],
        ),
        // By unique name: an agent reaches itself, not another.
        row(
            M::GET,
            "/v1/agents/{id}",
            "/v1/agents/table-a",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/agents/{id}",
            "/v1/agents/table-b",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::PATCH,
            "/v1/agents/{id}",
            &format!("/v1/agents/{b_id}"),
            Some(json!({"trust_tier": 3})),
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/agents/{id}/rotate-key",
            &format!("/v1/agents/{b_id}/rotate-key"),
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/tokens",
            "/v1/tokens",
            Some(json!({"scopes": ["secrets:read:mine/**"], "ttl_seconds": 60})),
            [401, 403, 201, 201, 400],
        ),
        row(
            M::POST,
            "/v1/tokens/revoke",
            "/v1/tokens/revoke",
            Some(json!({"task_id": "no-such-task"})),
            [401, 403, 403, 200, 200],
        ),
        row(
            M::POST,
            "/v1/tokens/revoke",
            "/v1/tokens/revoke",
            Some(json!({"agent_id": b_id})),
            [401, 403, 403, 403, 200],
        ),
        row(
            M::DELETE,
            "/v1/tokens/{id}",
            &format!("/v1/tokens/{b_token}"),
            None,
            [401, 403, 404, 404, 200],
        ),
        row(
            M::POST,
            "/v1/leases",
            "/v1/leases",
            Some(json!({"path": "{ns}mine/x", "action": "read"})),
            [401, 403, 201, 201, 403],
        ),
        row(
            M::GET,
            "/v1/leases",
            "/v1/leases",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/leases/{id}",
            &lease,
            None,
            [401, 403, 404, 200, 200],
        ),
        row(
            M::POST,
            "/v1/leases/{id}/secret",
            &format!("{lease}/secret"),
            None,
            [401, 403, 404, 200, 403],
        ),
        row(
            M::DELETE,
            "/v1/leases/{id}",
            &lease,
            None,
            [401, 403, 404, 200, 409],
        ),
        row(
            M::GET,
            "/v1/approvals",
            "/v1/approvals",
            None,
            [401, 200, 403, 403, 200],
        ),
        row(
            M::GET,
            "/v1/approvals/{id}",
            "/v1/approvals/01NOSUCHAPPROVAL",
            None,
            [401, 404, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/approvals/{id}/votes",
            "/v1/approvals/01NOSUCHAPPROVAL/votes",
            Some(json!({"decision": "approve"})),
            [401, 404, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/approvers/{name}/tokens",
            "/v1/approvers/carol/tokens",
            None,
            [401, 403, 403, 403, 201],
        ),
        row(
            M::POST,
            "/v1/grants",
            "/v1/grants",
            Some(
                json!({"subject": {"kind": "agent", "value": b_id}, "pattern": "x/**", "actions": ["read"]}),
            ),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::GET,
            "/v1/grants",
            "/v1/grants",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::PUT,
            "/v1/grants/{id}",
            "/v1/grants/table-grant",
            Some(
                json!({"subject": {"kind": "agent", "value": b_id}, "pattern": "y/**", "actions": ["read"]}),
            ),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::DELETE,
            "/v1/grants/{id}",
            "/v1/grants/01NOSUCHGRANT",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::GET,
            "/v1/approval-policies",
            "/v1/approval-policies",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::PUT,
            "/v1/approval-policies/{pattern}",
            "/v1/approval-policies/table/**",
            Some(json!({"requirement": "approval", "quorum": 1})),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::DELETE,
            "/v1/approval-policies/{pattern}",
            "/v1/approval-policies/none/**",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/webhooks",
            "/v1/webhooks",
            Some(json!({"url": "https://hooks.invalid/x", "events": ["audit.*"]})),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::GET,
            "/v1/webhooks",
            "/v1/webhooks",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::GET,
            "/v1/webhooks/{id}",
            "/v1/webhooks/01NOSUCHHOOK",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::PATCH,
            "/v1/webhooks/{id}",
            "/v1/webhooks/01NOSUCHHOOK",
            Some(json!({"paused": true})),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::DELETE,
            "/v1/webhooks/{id}",
            "/v1/webhooks/01NOSUCHHOOK",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/webhooks/{id}/rotate-secret",
            "/v1/webhooks/01NOSUCHHOOK/rotate-secret",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/webhooks/{id}/replay",
            "/v1/webhooks/01NOSUCHHOOK/replay",
            Some(json!({"from_seq": 1})),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::GET,
            "/v1/webhooks/{id}/deliveries",
            "/v1/webhooks/01NOSUCHHOOK/deliveries",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/console/links",
            "/v1/console/links",
            Some(json!({})),
            [401, 403, 403, 403, 201],
        ),
        row(
            M::GET,
            "/v1/console/sessions",
            "/v1/console/sessions",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::DELETE,
            "/v1/console/sessions/{id}",
            "/v1/console/sessions/01NOSUCHSESSION",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::POST,
            "/v1/export",
            "/v1/export",
            Some(json!({"paths": ["{ns}mine/x"]})),
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/proxy/{service}/{endpoint}",
            "/v1/proxy/none/none",
            Some(json!({"lease_id": key_lease})),
            [401, 403, 404, 404, 403],
        ),
        row(
            M::POST,
            "/v1/services",
            "/v1/services",
            Some(json!({"template": "github", "name": "gh", "secret": "x/y"})),
            [401, 403, 403, 403, PASS],
        ),
        row(
            M::GET,
            "/v1/services",
            "/v1/services",
            None,
            [401, 403, 200, 200, 200],
        ),
        row(
            M::DELETE,
            "/v1/services/{name}",
            "/v1/services/none",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::GET,
            "/v1/jobs",
            "/v1/jobs",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::POST,
            "/v1/jobs/{name}/run",
            "/v1/jobs/none/run",
            None,
            [401, 403, 403, 403, 404],
        ),
        row(
            M::GET,
            "/v1/audit",
            "/v1/audit",
            None,
            [401, 403, 403, 403, 200],
        ),
        row(
            M::GET,
            "/v1/audit/verify",
            "/v1/audit/verify",
            None,
            [401, 403, 403, 403, 200],
        ),
    ];

    // Every operation of the OpenAPI document is in the table: a new route cannot skip it.
    let (_, doc) = d.call(M::GET, "/openapi.json", None, None).await;
    let mut missing = Vec::new();
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if !rows.iter().any(|r| r.template == template && r.method == m) {
                missing.push(format!("{method} {template}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the table: {missing:?}"
    );

    let creds: [Option<&str>; 5] = [
        None,
        Some(&w.carol),
        Some(&scoped),
        Some(&a_key),
        Some(&admin),
    ];
    let mut wrong = Vec::new();
    for r in &rows {
        for (i, cred) in creds.iter().enumerate() {
            let ns = if WHO[i] == "admin" {
                format!("entities/{a_id}/")
            } else {
                String::new()
            };
            let path = r.path.replace("{ns}", &ns);
            let body = r
                .body
                .as_ref()
                .map(|b| serde_json::from_str(&b.to_string().replace("{ns}", &ns)).unwrap());
            let (status, answer) = d.call(r.method.clone(), &path, *cred, body).await;
            let got = status.as_u16();
            let ok = match r.expect[i] {
                PASS => got != 401 && got != 403,
                want => got == want,
            };
            if !ok {
                wrong.push(format!(
                    "{} {path} as {}: {got} (want {}) {answer}",
                    r.method,
                    WHO[i],
                    match r.expect[i] {
                        PASS => "not 401/403".to_string(),
                        w => w.to_string(),
                    }
                ));
            }
            // Refusals keep the JSON error shape.
            if got == 401 || got == 403 {
                assert!(answer["error"]["code"].is_string(), "{path}: {answer}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_scoped_token_reaches_only_leases_in_its_scope_and_lineage() {
    let w = world().await;
    let d = &w.d;
    w.secret("prod/db", "standard", "prod-db-password-1").await;
    let (_, key) = d.agent("scoped-bot", 2).await;
    // The agent key opens a lease on prod/db.
    let (s, l) = w
        .lease(
            &key,
            json!({"path": "/prod/db", "action": "read", "uses": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let key_lease = l["id"].as_str().unwrap().to_string();
    // A token that may only list staging/** cannot request a lease on prod/db…
    let (_, t) = d
        .mint(&key, json!({"scopes": ["secrets:list:staging/**"]}))
        .await;
    let narrow = t["token"].as_str().unwrap().to_string();
    let (s, _) = w
        .lease(&narrow, json!({"path": "/prod/db", "action": "read"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // …nor use, show or revoke the one its parent key opened (before: 200 with the value).
    let (s, b) = w.use_lease(&narrow, &key_lease).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(!b.to_string().contains("prod-db-password-1"));
    let at = format!("/v1/leases/{key_lease}");
    assert_eq!(
        d.call(Method::GET, &at, Some(&narrow), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        d.call(Method::DELETE, &at, Some(&narrow), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, list) = d.call(Method::GET, "/v1/leases", Some(&narrow), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    // A token with a read scope on /prod/** reaches what it opens, and what its children open.
    let (_, t) = d
        .mint(&key, json!({"scopes": ["secrets:read:/prod/**"]}))
        .await;
    let reader = t["token"].as_str().unwrap().to_string();
    let (_, t) = d
        .mint(&reader, json!({"scopes": ["secrets:read:/prod/**"]}))
        .await;
    let child = t["token"].as_str().unwrap().to_string();
    let (s, l) = w
        .lease(
            &reader,
            json!({"path": "/prod/db", "action": "read", "uses": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let reader_lease = l["id"].as_str().unwrap().to_string();
    let (_, l) = w
        .lease(
            &child,
            json!({"path": "/prod/db", "action": "read", "uses": 2}),
        )
        .await;
    let child_lease = l["id"].as_str().unwrap().to_string();
    // Not its parent's lease, even with a scope that covers it.
    assert_eq!(
        w.use_lease(&reader, &key_lease).await.0,
        StatusCode::NOT_FOUND
    );
    // Its own and its child's, yes; the child not its parent's.
    assert_eq!(w.use_lease(&reader, &reader_lease).await.0, StatusCode::OK);
    assert_eq!(w.use_lease(&reader, &child_lease).await.0, StatusCode::OK);
    assert_eq!(
        w.use_lease(&child, &reader_lease).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(w.use_lease(&child, &child_lease).await.0, StatusCode::OK);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, list) = d.call(Method::GET, "/v1/leases", Some(&reader), None).await;
    let mut seen = ids(&list);
    seen.sort();
    let mut want = vec![reader_lease.clone(), child_lease.clone()];
    want.sort();
    assert_eq!(seen, want);
    // The agent key reaches all of them; the value it reads is the secret's.
    let (_, list) = d.call(Method::GET, "/v1/leases", Some(&key), None).await;
    assert_eq!(ids(&list).len(), 3);
    let (s, v) = w.use_lease(&key, &key_lease).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["value"], "prod-db-password-1");
    // The refusals did not use the lease.
    assert_eq!(v["lease"]["uses_left"], 4);
}

#[tokio::test]
async fn approvers_vote_but_do_not_revoke() {
    let w = world().await;
    let d = &w.d;
    let (agent_id, key) = d.agent("revoked-not", 2).await;
    let (_, t) = d.mint(&key, json!({"scopes": ["secrets:read:**"]})).await;
    let token = t["token"].as_str().unwrap().to_string();
    let token_id = t["id"].as_str().unwrap().to_string();
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&w.alice),
            Some(json!({"agent_id": agent_id})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = d
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{token_id}"),
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // The token still works, and the refusals are audited.
    let (s, _) = d.call(Method::GET, "/v1/leases", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    let denied = d.events("access.denied").await;
    assert!(
        denied
            .iter()
            .filter(|e| e["actor_type"] == "approver")
            .count()
            >= 2,
        "{denied:?}"
    );
    // A scoped token revokes only itself and what it minted, never by agent.
    let (_, t) = d.mint(&key, json!({"scopes": ["secrets:read:**"]})).await;
    let sibling = t["token"].as_str().unwrap().to_string();
    let (s, _) = d
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{token_id}"),
            Some(&sibling),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&sibling),
            Some(json!({"agent_id": agent_id})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The agent key may, with a reason that lands in the audit event.
    let (s, b) = d
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{token_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&key),
            Some(json!({"agent_id": agent_id, "reason": "laptop lost"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let revoked = d.events("token.revoked").await;
    assert!(
        revoked
            .iter()
            .any(|e| e["details"]["reason"] == "laptop lost"),
        "{revoked:?}"
    );
    assert_eq!(
        d.call(Method::GET, "/v1/leases", Some(&sibling), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rotating_or_disabling_an_agent_key_ends_what_it_minted() {
    let w = world().await;
    let d = &w.d;
    let admin = d.admin.clone();
    w.secret("prod/api", "standard", "prod-api-key-77").await;
    for change in ["rotate", "disable"] {
        let (id, key) = d.agent(&format!("leaky-{change}"), 2).await;
        let (_, t) = d
            .mint(&key, json!({"scopes": ["secrets:read:/prod/**"]}))
            .await;
        let token = t["token"].as_str().unwrap().to_string();
        // A shorter lifetime than the parent's: with the default one the child would outlive
        // its parent as soon as a second has passed since the parent was minted (refused).
        let (_, t) = d
            .mint(
                &token,
                json!({"scopes": ["secrets:read:/prod/**"], "ttl_seconds": 300}),
            )
            .await;
        let grandchild = t["token"].as_str().unwrap().to_string();
        let (s, l) = w
            .lease(
                &grandchild,
                json!({"path": "/prod/api", "action": "read", "uses": 3}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        let lease = l["id"].as_str().unwrap().to_string();
        let (s, b) = if change == "rotate" {
            d.call(
                Method::POST,
                &format!("/v1/agents/{id}/rotate-key"),
                Some(&admin),
                None,
            )
            .await
        } else {
            d.call(
                Method::PATCH,
                &format!("/v1/agents/{id}"),
                Some(&admin),
                Some(json!({"disabled": true})),
            )
            .await
        };
        assert_eq!(s, StatusCode::OK, "{b}");
        if change == "disable" {
            // Re-enabling does not bring the old tokens back.
            let (s, _) = d
                .call(
                    Method::PATCH,
                    &format!("/v1/agents/{id}"),
                    Some(&admin),
                    Some(json!({"disabled": false})),
                )
                .await;
            assert_eq!(s, StatusCode::OK);
        }
        for t in [&token, &grandchild] {
            let (s, _) = d.call(Method::GET, "/v1/leases", Some(t), None).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{change}: a token minted from the old key still works"
            );
        }
        let (_, l) = d.get(&format!("/v1/leases/{lease}")).await;
        assert_eq!(l["state"], "revoked", "{change}: {l}");
        let events = d.events("token.revoked").await;
        let why = if change == "rotate" {
            "agent key rotated"
        } else {
            "agent disabled"
        };
        assert!(
            events.iter().any(|e| e["resource_path"] == id.as_str()
                && e["details"]["reason"] == why
                && e["details"]["leases_revoked"].as_u64() >= Some(1)),
            "{change}: {events:?}"
        );
    }
}
