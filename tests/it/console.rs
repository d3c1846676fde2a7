//! The web console over HTTP, as a browser meets it (cookies, forms, redirects): one-time
//! links used once, pasted tokens (agents refused), CSRF tokens, approvers limited to their
//! paths and to the approvals page, sign-out and revocation, the audit export, and no secret
//! value on any page. (tests/browser drives the same pages in a real Chromium.)

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::Daemon;
use crate::lease_world::{World, world};

/// A browser without JavaScript: one cookie, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(d: &Daemon) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: d.base.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String, Option<String>) {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        if let Some(c) = resp.headers().get(SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        (status, resp.text().await.unwrap(), location)
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// The CSRF token of the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let (s, html, _) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{html}");
        let at = html
            .find(r#"name="csrf" value=""#)
            .expect("a form with a CSRF token");
        let rest = &html[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

async fn link(d: &Daemon, approver: Option<&str>) -> String {
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/console/links",
            Some(&d.admin.clone()),
            Some(json!({"approver": approver})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let url = b["url"].as_str().unwrap();
    assert!(url.starts_with(&d.base), "{url}");
    url[d.base.len()..].to_string()
}

async fn signed_in(d: &Daemon, approver: Option<&str>) -> Browser {
    let path = link(d, approver).await;
    let mut b = Browser::new(d);
    let (s, _, to) = b.post(&path, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to.as_deref(), Some("/ui/approvals"));
    assert!(b.cookie.is_some());
    b
}

/// A pending lease on `path` (stored with `value`) for a tier-1 agent; returns the approval id.
async fn pending(w: &World, key: &str, path: &str, value: &str) -> (String, String) {
    w.secret(path, "sensitive", value).await;
    let (s, l) = w
        .lease(
            key,
            json!({"path": format!("/{path}"), "reason": "nightly <b>deploy</b> & \"sync\""}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["state"], "pending", "{l}");
    (
        l["id"].as_str().unwrap().to_string(),
        l["approval"]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_link_signs_in_once_and_the_session_ends_on_sign_out() {
    let w = world().await;
    let d = &w.d;
    let path = link(d, None).await;
    let mut b = Browser::new(d);
    // Without a session every page sends the browser to sign in.
    let (s, _, to) = b.get("/ui/approvals").await;
    assert_eq!(
        (s, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/ui/login"))
    );
    // Opening the link shows a button; only its POST uses the link (previewers do not).
    let (s, html, _) = b.get(&path).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("the operator (admin)"), "{html}");
    let (s, _, _) = b.post(&path, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let cookie = b.cookie.clone().unwrap();
    let (s, html, _) = b.get("/ui/approvals").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Pending") && html.contains("Sign out"));
    // A second use is refused, and audited.
    let mut other = Browser::new(d);
    let (s, html, _) = other.post(&path, &[]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("already used"), "{html}");
    assert!(other.cookie.is_none());
    let (s, _, _) = other.get(&path).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let failed = d.events("auth.failed").await;
    assert!(
        failed.iter().any(|e| e["resource_path"] == "/ui/link"),
        "{failed:?}"
    );
    // The session is listed; signing out (with the CSRF token) ends it everywhere.
    let (_, sessions) = d.get("/v1/console/sessions").await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions[0]["via"], "link");
    assert!(sessions[0].get("csrf").is_none() && sessions[0].get("credential").is_none());
    let csrf = b.csrf("/ui/approvals").await;
    let (s, _, to) = b.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (s, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/ui/login"))
    );
    let mut stale = Browser::new(d);
    stale.cookie = Some(cookie);
    let (s, _, to) = stale.get("/ui/approvals").await;
    assert_eq!(
        (s, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/ui/login"))
    );
    for event in [
        "console.link_issued",
        "console.signed_in",
        "console.signed_out",
    ] {
        assert_eq!(d.events(event).await.len(), 1, "{event}");
    }
    let signed_in = &d.events("console.signed_in").await[0];
    assert_eq!(signed_in["actor_type"], "admin");
    assert_eq!(signed_in["details"]["via"], "link");
    w.d.stop().await;
}

#[tokio::test]
async fn pasted_tokens_agents_refused_and_revocation_ends_sessions() {
    let w = world().await;
    let d = &w.d;
    let (_, agent_key) = d.agent("pasty", 1).await;
    let mut b = Browser::new(d);
    let (s, html, _) = b.get("/ui/login").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"type="password""#));
    let (s, _, _) = b.post("/ui/login", &[("token", "lk_admin_nope")]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, html, _) = b.post("/ui/login", &[("token", &agent_key)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(b.cookie.is_none());
    let denied = d.events("access.denied").await;
    assert!(
        denied.iter().any(|e| e["resource_path"] == "/ui/login"),
        "{denied:?}"
    );
    // An approver's token signs in as that approver: approvals only.
    let (s, _, _) = b.post("/ui/login", &[("token", &w.carol)]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, html, _) = b.get("/ui/approvals").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("carol") && !html.contains(r#"href="/ui/audit""#),
        "{html}"
    );
    for page in [
        "/ui/audit",
        "/ui/secrets",
        "/ui/agents",
        "/ui/webhooks",
        "/ui/audit/export",
    ] {
        let (s, _, _) = b.get(page).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    }
    // A second admin token's session ends when that token is revoked.
    let (s, minted) = d
        .call(
            Method::POST,
            "/v1/admin-tokens",
            Some(&d.admin.clone()),
            Some(json!({"description": "laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut admin = Browser::new(d);
    let (s, _, _) = admin
        .post("/ui/login", &[("token", minted["token"].as_str().unwrap())])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(admin.get("/ui/audit").await.0, StatusCode::OK);
    let (s, _) = d
        .call(
            Method::DELETE,
            &format!("/v1/admin-tokens/{}", minted["id"].as_str().unwrap()),
            Some(&d.admin.clone()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, to) = admin.get("/ui/audit").await;
    assert_eq!(
        (s, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/ui/login"))
    );
    // The admin revokes carol's session through the API.
    let (_, sessions) = d.get("/v1/console/sessions").await;
    let carol = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["who"]["name"] == "carol")
        .unwrap();
    let (s, _) = d
        .call(
            Method::DELETE,
            &format!("/v1/console/sessions/{}", carol["id"].as_str().unwrap()),
            Some(&d.admin.clone()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = b.get("/ui/approvals").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let out = d.events("console.signed_out").await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["details"]["reason"], "revoked");
    w.d.stop().await;
}

#[tokio::test]
async fn votes_need_the_csrf_token_and_an_approver_for_the_path() {
    let w = world().await;
    let d = &w.d;
    let (_, key) = d.agent("deployer", 1).await;
    let (lease, approval) = pending(&w, &key, "production/db", "prod-db-value-7431").await;

    // carol (staging/** only) sees no card and no button; a forged POST is refused and audited.
    let mut carol = signed_in(d, Some("carol")).await;
    let (_, html, _) = carol.get("/ui/approvals").await;
    assert!(
        !html.contains(&approval) && !html.contains("Approve</button>"),
        "{html}"
    );
    let csrf = carol.csrf("/ui/approvals").await;
    let (s, html, _) = carol
        .post(
            &format!("/ui/approvals/{approval}/vote"),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    let rejected = d.events("approval.vote_rejected").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["details"]["via"], "console");
    assert_eq!(rejected[0]["actor_id"], "carol");

    // bob (production/**) sees the card with the agent's reason escaped, and its buttons.
    let mut bob = signed_in(d, Some("bob")).await;
    let (_, html, _) = bob.get("/ui/approvals").await;
    assert!(
        html.contains(&approval) && html.contains("Approve</button>"),
        "{html}"
    );
    assert!(
        html.contains("nightly &lt;b&gt;deploy&lt;/b&gt; &amp; &quot;sync&quot;"),
        "{html}"
    );
    assert!(!html.contains("<b>deploy</b>"));
    // Without the CSRF token, or with another session's, the vote is refused.
    let (s, _, _) = bob
        .post(
            &format!("/ui/approvals/{approval}/vote"),
            &[("decision", "approve")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = bob
        .post(
            &format!("/ui/approvals/{approval}/vote"),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let csrf_refusals = d.events("access.denied").await;
    assert!(
        csrf_refusals
            .iter()
            .filter(|e| e["details"]["reason"] == "missing or wrong CSRF token")
            .count()
            >= 2,
        "{csrf_refusals:?}"
    );
    assert_eq!(w.show(&key, &lease).await["state"], "pending");
    // A form from another site is refused before anything else.
    let bob_csrf = bob.csrf("/ui/approvals").await;
    let req = bob
        .http
        .post(format!("{}/ui/approvals/{approval}/vote", d.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", bob_csrf.as_str()), ("decision", "approve")]);
    assert_eq!(bob.send(req).await.0, StatusCode::FORBIDDEN);
    // With it, the vote counts through the API's own operation.
    let (s, _, to) = bob
        .post(
            &format!("/ui/approvals/{approval}/vote"),
            &[
                ("csrf", &bob_csrf),
                ("decision", "deny"),
                ("reason", "not tonight"),
            ],
        )
        .await;
    assert_eq!(
        (s, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/ui/approvals"))
    );
    let l = w.show(&key, &lease).await;
    assert_eq!(l["state"], "denied", "{l}");
    assert_eq!(l["approval"]["reason"], "not tonight", "{l}");
    // Voting again on a decided approval: 409, as in the API.
    let (s, _, _) = bob
        .post(
            &format!("/ui/approvals/{approval}/vote"),
            &[("csrf", &bob_csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The decided list shows it, filterable by state.
    let (_, html, _) = bob.get("/ui/approvals?state=denied").await;
    assert!(
        html.contains(&approval) && html.contains("not tonight"),
        "{html}"
    );
    let (_, html, _) = bob.get("/ui/approvals?state=approved").await;
    assert!(!html.contains(&approval));
    w.d.stop().await;
}

#[tokio::test]
async fn operator_pages_render_and_never_show_a_value() {
    let w = world().await;
    let d = &w.d;
    let (agent_id, key) = d.agent("reader", 1).await;
    let admin = d.admin.clone();
    let values = [
        "console-secret-value-one-8812",
        "console-secret-value-two-1290",
    ];
    let (_, _approval) = pending(&w, &key, "production/api", values[0]).await;
    w.secret(&format!("entities/{agent_id}/own"), "standard", values[1])
        .await;
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/leases",
            Some(&key),
            Some(json!({"path": "own", "reason": "read"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let lease = b["id"].as_str().unwrap();
    let (s, read) = d
        .call(
            Method::POST,
            &format!("/v1/leases/{lease}/secret"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read["value"], values[1]);
    let (s, t) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:**"], "ttl_seconds": 600, "description": "sub-agent"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "https://hooks.example.invalid/latchkey", "events": ["audit.*"]})),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let mut b = signed_in(d, None).await;
    let mut pages: Vec<(String, String)> = Vec::new();
    for page in [
        "/ui/approvals",
        "/ui/approvals?state=approved",
        "/ui/approvals/inbox",
        "/ui/audit",
        "/ui/audit?event=secret.*&path=entities/",
        "/ui/audit/verify",
        "/ui/audit/export?format=jsonl",
        "/ui/audit/export?format=csv",
        "/ui/secrets",
        "/ui/agents",
        "/ui/webhooks",
    ] {
        let (s, html, _) = b.get(page).await;
        assert_eq!(s, StatusCode::OK, "{page}: {html}");
        pages.push((page.into(), html));
    }
    for (page, html) in &pages {
        for v in values {
            assert!(!html.contains(v), "{page} shows a secret value");
        }
    }
    let find = |p: &str| &pages.iter().find(|(page, _)| page == p).unwrap().1;
    assert!(
        find("/ui/secrets").contains("production/") && find("/ui/secrets").contains("1 pending"),
        "{}",
        find("/ui/secrets")
    );
    assert!(find("/ui/agents").contains("reader") && find("/ui/agents").contains("sub-agent"));
    assert!(find("/ui/audit/verify").contains(r#"data-ok="true""#));
    assert!(find("/ui/audit").contains("<svg") && find("/ui/audit").contains("lease.requested"));
    assert!(
        find("/ui/webhooks").contains("https://hooks.example.invalid/latchkey")
            && find("/ui/webhooks").contains("store")
    );
    let csv = find("/ui/audit/export?format=csv");
    assert!(csv.starts_with("seq,timestamp,event,"));
    let jsonl = find("/ui/audit/export?format=jsonl");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() + 1, csv.lines().count());
    assert!(rows.iter().any(|e| e["event"] == "secret.read"));
    let (_, filtered, _) = b
        .get("/ui/audit/export?format=jsonl&event=lease.*&agent=reader")
        .await;
    assert!(filtered.lines().count() >= 2);
    for l in filtered.lines() {
        let e: Value = serde_json::from_str(l).unwrap();
        assert!(e["event"].as_str().unwrap().starts_with("lease."), "{e}");
    }
    // The admin changes a tier and revokes the token from the agents page (audited as usual).
    let csrf = b.csrf("/ui/agents").await;
    let (_, agents) = d.get("/v1/agents/reader").await;
    let id = agents["id"].as_str().unwrap();
    let (s, _, _) = b
        .post(
            &format!("/ui/agents/{id}"),
            &[("csrf", &csrf), ("trust_tier", "3")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(d.get("/v1/agents/reader").await.1["trust_tier"], 3);
    let token_id = t["token_id"].as_str().or(t["id"].as_str()).unwrap();
    let (s, _, _) = b
        .post(&format!("/ui/tokens/{token_id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, html, _) = b.get("/ui/agents").await;
    assert!(!html.contains("sub-agent"), "{html}");
    // Static files are served with their types; unknown ones are 404.
    let (s, js, _) = b.get("/ui/assets/htmx.min.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(js.starts_with("var htmx"));
    assert_eq!(b.get("/ui/assets/nope.js").await.0, StatusCode::NOT_FOUND);
    w.d.stop().await;
}

#[tokio::test]
async fn the_console_can_be_switched_off() {
    let d = Daemon::start_with(|c| c.console.enabled = false).await;
    let (s, b) = d.call(Method::GET, "/ui/approvals", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = d
        .call(
            Method::POST,
            "/v1/console/links",
            Some(&d.admin.clone()),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    d.stop().await;
}
