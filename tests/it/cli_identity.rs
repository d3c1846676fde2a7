//! Who am I, is the daemon up, agents by name, and admin tokens, from the real binary:
//! `whoami` for each kind of credential, `status` with and without a token, `agent …` by
//! unique name (unknown and ambiguous names refused), and `admin-token ls|mint|revoke` with
//! their audit events and the last working token kept.

use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Daemon, admin_approves, cli, cli_command, finish, output_text as text};

/// Runs the CLI with whitespace-separated arguments (at most 30 s).
fn run(base: &str, token: &str, line: &str) -> Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    cli(base, token, &args)
}

/// Runs the CLI, requires success and returns stdout.
fn ok(base: &str, token: &str, line: &str) -> String {
    let out = run(base, token, line);
    assert!(out.status.success(), "{line}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn json_of(base: &str, token: &str, line: &str) -> Value {
    serde_json::from_str(&ok(base, token, line)).unwrap()
}

#[tokio::test]
async fn whoami_for_each_kind_of_credential() {
    let d = Daemon::start_with(admin_approves).await;
    let (agent_id, key) = d.agent("whoami-bot", 3).await;
    let (s, t) = d
        .mint(
            &key,
            json!({"scopes": ["secrets:read:prod/**"], "ttl_seconds": 300, "session_id": "s-42", "description": "sub-agent"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let scoped = t["token"].as_str().unwrap().to_string();
    let scoped_id = t["id"].as_str().unwrap().to_string();
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        // The admin token: reaches everything, never expires; may vote in this daemon.
        let me = json_of(&base, &admin, "whoami --json");
        assert_eq!(me["kind"], "admin");
        assert!(
            me["expires_at"].is_null() && me["namespace"].is_null(),
            "{me}"
        );
        assert_eq!(me["approves"], json!(["**"]));
        let lines = ok(&base, &admin, "whoami");
        assert!(lines.contains("kind: admin token"), "{lines}");
        assert!(lines.contains("scopes: everything (admin)"), "{lines}");
        assert!(lines.contains("expires: never"), "{lines}");
        assert!(
            lines.contains(&format!("id: {}", me["id"].as_str().unwrap())),
            "{lines}"
        );

        // An approver token: approvals only, and the patterns it decides.
        let appr = ok(&base, &admin, "approver token alice").trim().to_string();
        let me = json_of(&base, &appr, "whoami --json");
        assert_eq!(
            (me["kind"].as_str(), me["id"].as_str()),
            (Some("approver"), Some("alice"))
        );
        let lines = ok(&base, &appr, "whoami");
        assert!(
            lines.contains("scopes: approvals only") && lines.contains("approves: **"),
            "{lines}"
        );

        // The agent key: its agent, namespace and full scopes; no expiry.
        let me = json_of(&base, &key, "whoami --json");
        assert_eq!(me["kind"], "agent");
        assert_eq!(me["agent"]["id"], agent_id.as_str());
        assert_eq!(me["agent"]["name"], "whoami-bot");
        assert_eq!(me["namespace"], format!("entities/{agent_id}"));
        assert!(!me["scopes"].as_array().unwrap().is_empty(), "{me}");
        assert!(me["expires_at"].is_null());
        let lines = ok(&base, &key, "whoami");
        assert!(lines.contains("kind: agent key"), "{lines}");
        assert!(lines.contains("agent: whoami-bot ("), "{lines}");

        // A scoped token: its own scopes, expiry, binding and description.
        let me = json_of(&base, &scoped, "whoami --json");
        assert_eq!(
            (me["kind"].as_str(), me["id"].as_str()),
            (Some("token"), Some(scoped_id.as_str()))
        );
        assert_eq!(me["scopes"], json!(["secrets:read:prod/**"]));
        assert_eq!(
            (me["session_id"].as_str(), me["description"].as_str()),
            (Some("s-42"), Some("sub-agent"))
        );
        assert!(
            me["expires_at"].as_str().is_some_and(|e| e.ends_with('Z')),
            "{me}"
        );
        let lines = ok(&base, &scoped, "whoami");
        assert!(lines.contains("kind: scoped token"), "{lines}");
        assert!(lines.contains("scopes: secrets:read:prod/**"), "{lines}");
        assert!(lines.contains("session: s-42"), "{lines}");
        assert!(
            !lines.contains(&scoped),
            "the credential itself is never printed"
        );

        // A refused token: one line, exit 4.
        let out = run(&base, "lk_admin_wrong", "whoami");
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert_eq!(text(&out).trim().lines().count(), 1, "{}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn status_with_and_without_a_token() {
    let d = Daemon::start().await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        let lines = ok(&base, &admin, "status");
        assert!(lines.contains(&format!("address: {base}")), "{lines}");
        assert!(lines.contains("status: ready"), "{lines}");
        assert!(
            lines.contains(&format!("version: {}", env!("CARGO_PKG_VERSION"))),
            "{lines}"
        );
        assert!(lines.contains("store: ok"), "{lines}");
        assert!(lines.contains("channels: none configured"), "{lines}");
        let report = json_of(&base, &admin, "status --json");
        assert_eq!(report["status"], "ready");
        assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(report["channels"], json!({}));

        // Without a token: readiness still, and a note on what is not shown.
        let mut c = cli_command(&base, "", &["status"]);
        c.env_remove("LATCHKEY_TOKEN");
        let out = finish(c.spawn().unwrap(), std::time::Duration::from_secs(30));
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("status: ready"), "{stdout}");
        assert!(
            !stdout.lines().any(|l| l.starts_with("version:")),
            "{stdout}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no token"),
            "{}",
            text(&out)
        );

        // Nothing listening: exit 3.
        let out = run("http://127.0.0.1:9", &admin, "status");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn agents_by_unique_name() {
    let d = Daemon::start().await;
    let (a_id, a_key) = d.agent("research-bot", 2).await;
    // An agent whose name is another agent's id: that reference is ambiguous.
    let (b_id, _) = d.agent(&a_id, 1).await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    tokio::task::spawn_blocking(move || {
        let shown = json_of(&base, &admin, "agent show research-bot --json");
        assert_eq!(shown["id"], a_id.as_str());
        let lines = ok(&base, &admin, "agent show research-bot");
        assert!(lines.contains(&format!("id: {a_id}")), "{lines}");
        // The id works as before, in either case.
        let shown = json_of(
            &base,
            &admin,
            &format!("agent show id:{} --json", a_id.to_uppercase()),
        );
        assert_eq!(shown["name"], "research-bot");

        let out = ok(&base, &admin, "agent set-tier research-bot 4");
        assert!(out.contains("now at trust tier 4"), "{out}");
        let out = ok(&base, &admin, "agent disable research-bot");
        assert!(
            out.contains(&format!("agent {a_id} (research-bot) disabled")),
            "{out}"
        );
        let refused = run(&base, &a_key, "whoami");
        assert_eq!(
            refused.status.code(),
            Some(4),
            "a disabled agent's key is refused"
        );
        ok(&base, &admin, "agent enable research-bot");
        let rotated = ok(&base, &admin, "agent rotate-key research-bot");
        let new_key = rotated.lines().last().unwrap().trim().to_string();
        assert!(new_key.starts_with("lk_agent_"), "{rotated}");
        // The agent shows itself by name; not another agent.
        let me = json_of(&base, &new_key, "agent show research-bot --json");
        assert_eq!(me["id"], a_id.as_str());
        let other = run(&base, &new_key, &format!("agent show name:{a_id}"));
        assert_eq!(other.status.code(), Some(4), "{}", text(&other));

        // Unknown: 5, one line naming what was looked for.
        let out = run(&base, &admin, "agent show nobody");
        assert_eq!(out.status.code(), Some(5), "{}", text(&out));
        assert!(
            text(&out).contains("no agent with the id or name \"nobody\""),
            "{}",
            text(&out)
        );
        assert_eq!(text(&out).trim().lines().count(), 1);

        // Ambiguous: 6, saying how to choose; id: and name: choose.
        let out = run(&base, &admin, &format!("agent show {a_id}"));
        assert_eq!(out.status.code(), Some(6), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("say id:{a_id} or name:{a_id}")),
            "{}",
            text(&out)
        );
        let by_id = json_of(&base, &admin, &format!("agent show id:{a_id} --json"));
        assert_eq!(by_id["name"], "research-bot");
        let by_name = json_of(&base, &admin, &format!("agent show name:{a_id} --json"));
        assert_eq!(by_name["id"], b_id.as_str());

        // --quiet: the API key alone on stdout, for `AGENT_KEY=$(latchkey agent create … -q)`.
        let key = ok(&base, &admin, "agent create quiet-bot --tier 2 --quiet");
        assert!(key.starts_with("lk_agent_"), "{key}");
        assert_eq!(key.trim_end().lines().count(), 1, "{key}");
        let me = json_of(&base, key.trim(), "whoami --json");
        assert_eq!(me["agent"]["name"], "quiet-bot", "{me}");
        let key = ok(&base, &admin, "agent rotate-key quiet-bot -q");
        assert!(key.starts_with("lk_agent_") && key.trim_end().lines().count() == 1);
        let out = run(&base, &admin, "agent create other-bot --quiet --json");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    })
    .await
    .unwrap();
    d.stop().await;
}

#[tokio::test]
async fn admin_tokens_are_listed_minted_and_revoked() {
    let d = Daemon::start().await;
    let (_, agent_key) = d.agent("not-an-admin", 5).await;
    let (base, admin) = (d.base.clone(), d.admin.clone());
    let (second, second_id, first_id) = tokio::task::spawn_blocking(move || {
        let out = run(&base, &admin, "admin-token mint --description ci-deploy");
        assert!(out.status.success(), "{}", text(&out));
        let second = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            second.starts_with("lk_admin_") && !second.contains(char::is_whitespace),
            "{second}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("shown once"),
            "{}",
            text(&out)
        );

        let me = json_of(&base, &second, "whoami --json");
        assert_eq!(
            (me["kind"].as_str(), me["description"].as_str()),
            (Some("admin"), Some("ci-deploy"))
        );
        let second_id = me["id"].as_str().unwrap().to_string();
        let first_id = json_of(&base, &admin, "whoami --json")["id"]
            .as_str()
            .unwrap()
            .to_string();

        let list = json_of(&base, &admin, "admin-token ls --json");
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [first_id.as_str(), second_id.as_str()], "oldest first");
        assert!(
            !list.to_string().contains("lk_admin_"),
            "values are never listed"
        );
        let table = ok(&base, &second, "admin-token ls");
        let mine = table.lines().find(|l| l.contains(&second_id)).unwrap();
        assert!(
            mine.starts_with('*') && mine.contains("ci-deploy"),
            "{table}"
        );
        assert!(
            !table
                .lines()
                .find(|l| l.contains(&first_id))
                .unwrap()
                .starts_with('*')
        );

        // Only the admin manages admin tokens.
        let out = run(&base, &agent_key, "admin-token ls");
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));

        // Revoked: refused at once, listed with --all only; twice is a conflict.
        let out = ok(&base, &admin, &format!("admin-token revoke {second_id}"));
        assert!(
            out.contains(&format!("revoked admin token {second_id} (ci-deploy)")),
            "{out}"
        );
        let out = run(&base, &second, "secret ls");
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        let list = json_of(&base, &admin, "admin-token ls --json");
        assert_eq!(list.as_array().unwrap().len(), 1);
        let list = json_of(&base, &admin, "admin-token ls --all --json");
        assert!(list[1]["revoked_at"].is_string(), "{list}");
        let out = run(&base, &admin, &format!("admin-token revoke {second_id}"));
        assert_eq!(out.status.code(), Some(6), "{}", text(&out));
        assert!(text(&out).contains("already revoked"), "{}", text(&out));

        // The last working admin token stays; an unknown id is not found.
        let out = run(&base, &admin, &format!("admin-token revoke {first_id}"));
        assert_eq!(out.status.code(), Some(6), "{}", text(&out));
        assert!(
            text(&out).contains("last working admin token"),
            "{}",
            text(&out)
        );
        let out = run(
            &base,
            &admin,
            "admin-token revoke 01jnosuchtoken0000000000000",
        );
        assert_eq!(out.status.code(), Some(5), "{}", text(&out));
        (second, second_id, first_id)
    })
    .await
    .unwrap();

    // Audited, without the token's value.
    let minted = d.events("admin_token.minted").await;
    let m = minted
        .iter()
        .find(|e| e["resource_path"] == second_id.as_str())
        .unwrap();
    assert_eq!(m["actor_id"], first_id.as_str());
    assert_eq!(m["details"]["description"], "ci-deploy");
    let revoked = d.events("admin_token.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["resource_path"], second_id.as_str());
    let (_, all) = d.get("/v1/audit?limit=1000").await;
    assert!(
        !all.to_string().contains(&second),
        "no token value in the audit log"
    );
    // The token `init` minted is audited the same way.
    assert!(
        minted
            .iter()
            .any(|e| e["resource_path"] == first_id.as_str())
    );
    let (s, _) = d.call(Method::GET, "/v1/whoami", Some(&second), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    d.stop().await;
}
