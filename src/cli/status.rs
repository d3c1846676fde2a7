//! `latchkey whoami` (who the token is) and `latchkey status` (the daemon's address, version,
//! readiness and approval channels).

use serde_json::{Map, Value, json};

use super::client::{Client, TIMEOUT, http_error};
use super::exit::{Exit, bail_as};
use super::{GlobalOpts, array, print_json, text};

/// Runs `whoami`.
pub async fn whoami(opts: &GlobalOpts) -> anyhow::Result<()> {
    let me = Client::new(opts)?.get("/v1/whoami", &[]).await?;
    if opts.json {
        print_json(&me);
    } else {
        for (key, value) in whoami_lines(&me) {
            outln!("{key}: {value}");
        }
    }
    Ok(())
}

/// The `key: value` lines of `whoami`, in reading order; absent fields are left out.
fn whoami_lines(me: &Value) -> Vec<(&'static str, String)> {
    let kind = match text(me, "kind").as_str() {
        "admin" => "admin token".to_string(),
        "approver" => "approver token".to_string(),
        "agent" => "agent key".to_string(),
        "token" => "scoped token".to_string(),
        other => other.to_string(),
    };
    let mut lines = vec![("kind", kind), ("id", text(me, "id"))];
    let present = |k: &str| me.get(k).is_some_and(|v| !v.is_null() && v != "");
    if present("description") {
        lines.push(("description", text(me, "description")));
    }
    if let Some(agent) = me.get("agent").filter(|a| a.is_object()) {
        lines.push((
            "agent",
            format!(
                "{} ({}), trust tier {}",
                text(agent, "name"),
                text(agent, "id"),
                text(agent, "trust_tier")
            ),
        ));
    }
    if present("namespace") {
        lines.push(("namespace", text(me, "namespace")));
    }
    let scopes: Vec<String> = array(me, "scopes")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let reach = match text(me, "kind").as_str() {
        "admin" => "everything (admin)".to_string(),
        "approver" => "approvals only".to_string(),
        _ if scopes.is_empty() => "nothing".to_string(),
        _ => scopes.join(" "),
    };
    lines.push(("scopes", reach));
    let expires = if present("expires_at") {
        text(me, "expires_at")
    } else {
        "never".to_string()
    };
    lines.push(("expires", expires));
    for (label, key) in [
        ("parent token", "parent"),
        ("session", "session_id"),
        ("task", "task_id"),
    ] {
        if present(key) {
            lines.push((label, text(me, key)));
        }
    }
    let approves: Vec<&str> = array(me, "approves")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !approves.is_empty() {
        lines.push(("approves", approves.join(" ")));
    }
    lines.push(("actor", text(me, "actor")));
    lines
}

/// Runs `status`: readiness from `/readyz` (no token needed), and with a token the daemon's
/// version and channels from `/v1/status`.
pub async fn status(opts: &GlobalOpts) -> anyhow::Result<()> {
    let anonymous = Client::anonymous(opts, TIMEOUT)?;
    let (code, ready) = anonymous.probe("/readyz").await?;
    let is_ready = code == 200 && text(&ready, "status") == "ready";
    let mut report = Map::new();
    report.insert("address".into(), json!(anonymous.base()));
    report.insert("cli_version".into(), json!(env!("CARGO_PKG_VERSION")));
    report.insert(
        "status".into(),
        json!(if is_ready { "ready" } else { "not_ready" }),
    );
    report.insert(
        "checks".into(),
        ready.get("checks").cloned().unwrap_or(Value::Null),
    );
    let has_token = opts.token.as_deref().is_some_and(|t| !t.trim().is_empty());
    let mut token_note = None;
    if has_token {
        match Client::new(opts)?.get("/v1/status", &[]).await {
            Ok(daemon) => {
                for key in [
                    "version",
                    "store",
                    "channels",
                    "approvers",
                    "admin_is_approver",
                ] {
                    if let Some(v) = daemon.get(key) {
                        report.insert(key.into(), v.clone());
                    }
                }
            }
            Err(e) if http_error(&e).is_some_and(|h| h.status == 401) => {
                token_note = Some("the daemon refused the token: version and channels not shown");
            }
            Err(e) => return Err(e),
        }
    } else {
        token_note = Some("no token (LATCHKEY_TOKEN): version and channels not shown");
    }
    let report = Value::Object(report);
    if opts.json {
        print_json(&report);
    } else {
        for (key, value) in status_lines(&report) {
            outln!("{key}: {value}");
        }
    }
    if let Some(note) = token_note {
        eprintln!("latchkey: {note}");
    }
    if !is_ready {
        let failing: Vec<String> = report["checks"]
            .as_object()
            .map(|c| {
                c.iter()
                    .filter(|(_, v)| *v != "ok" && *v != "starting")
                    .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("failing")))
                    .collect()
            })
            .unwrap_or_default();
        bail_as!(
            Exit::Failure,
            "the daemon at {} is not ready ({})",
            anonymous.base(),
            if failing.is_empty() {
                format!("HTTP {code}")
            } else {
                failing.join(", ")
            }
        );
    }
    Ok(())
}

/// The `key: value` lines of `status`.
fn status_lines(r: &Value) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        ("address", text(r, "address")),
        ("status", text(r, "status")),
    ];
    if r.get("version").is_some() {
        lines.push(("version", text(r, "version")));
    }
    lines.push(("cli version", text(r, "cli_version")));
    let store = r
        .get("store")
        .or_else(|| r["checks"].get("store"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    lines.push(("store", store.to_string()));
    // Channels from /v1/status, or from the readiness checks without a token.
    let channels: Vec<String> = match r.get("channels").and_then(Value::as_object) {
        Some(c) => c
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
            .collect(),
        None => r["checks"]
            .as_object()
            .map(|c| {
                c.iter()
                    .filter_map(|(k, v)| {
                        Some(format!(
                            "{} {}",
                            k.strip_prefix("channel:")?,
                            v.as_str().unwrap_or("?")
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    lines.push((
        "channels",
        if channels.is_empty() {
            "none configured (approvals by CLI and API only)".into()
        } else {
            channels.join(", ")
        },
    ));
    if r.get("approvers").is_some() {
        let admin = if r["admin_is_approver"] == true {
            ", and admin tokens may vote"
        } else {
            ""
        };
        lines.push((
            "approvers",
            format!("{} configured{admin}", text(r, "approvers")),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoami_reads_well_for_each_kind() {
        let token = json!({
            "kind": "token", "id": "t1", "actor": "token:a1/t1", "description": "ci",
            "agent": {"id": "a1", "name": "bot", "trust_tier": 3}, "namespace": "entities/a1",
            "scopes": ["secrets:read:prod/**"], "expires_at": "2030-01-01T00:00:00Z",
            "parent": null, "session_id": "s1", "task_id": null, "approves": []
        });
        let lines = whoami_lines(&token);
        let get = |k: &str| {
            lines
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("kind").as_deref(), Some("scoped token"));
        assert_eq!(get("agent").as_deref(), Some("bot (a1), trust tier 3"));
        assert_eq!(get("scopes").as_deref(), Some("secrets:read:prod/**"));
        assert_eq!(get("expires").as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(get("session").as_deref(), Some("s1"));
        assert_eq!(get("task"), None, "absent fields are left out");
        let admin = json!({"kind": "admin", "id": "x", "actor": "admin:x", "scopes": [],
            "expires_at": null, "approves": ["**"]});
        let lines = whoami_lines(&admin);
        assert!(lines.contains(&("scopes", "everything (admin)".into())));
        assert!(lines.contains(&("expires", "never".into())));
        assert!(lines.contains(&("approves", "**".into())));
    }

    #[test]
    fn status_reads_well_with_and_without_a_token() {
        let full = json!({"address": "http://h:1", "cli_version": "0.1.0", "status": "ready",
            "checks": {"store": "ok", "channel:telegram": "ok"}, "version": "0.1.0",
            "store": "ok", "channels": {"telegram": "ok"}, "approvers": 2,
            "admin_is_approver": true});
        let lines = status_lines(&full);
        assert!(lines.contains(&("channels", "telegram ok".into())));
        assert!(lines.contains(&(
            "approvers",
            "2 configured, and admin tokens may vote".into()
        )));
        assert!(lines.contains(&("version", "0.1.0".into())));
        let bare = json!({"address": "http://h:1", "cli_version": "0.1.0",
            "status": "not_ready", "checks": {"store": "failing"}});
        let lines = status_lines(&bare);
        assert!(lines.contains(&("store", "failing".into())));
        assert!(lines.iter().all(|(k, _)| *k != "version"));
        assert!(lines[lines.len() - 1].1.starts_with("none configured"));
    }
}
