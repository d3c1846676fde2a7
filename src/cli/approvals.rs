//! `latchkey approvals …`, `latchkey approve|deny ID` and `latchkey approver token NAME`: the
//! console channel for approvers (and admins when `approvals.admin_is_approver` is set).

use serde_json::{Value, json};

use super::client::{Client, http_error, item_url};
use super::exit::{Exit, bail_as};
use super::{GlobalOpts, array, output, print_json, print_table, text};

/// Approval commands.
#[derive(clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals you may decide (pending ones unless --all), newest first.
    Ls {
        /// Decided approvals too.
        #[arg(long)]
        all: bool,
    },
    /// Show one approval with its votes.
    Show {
        /// Approval id.
        id: String,
    },
}

/// Approver commands (admin).
#[derive(clap::Subcommand)]
pub enum ApproverCommand {
    /// Issue an API token for an approver named in the configuration; the token alone goes
    /// to stdout (shown once).
    Token {
        /// The approver's name.
        name: String,
    },
}

/// Runs an approvals command.
pub async fn run(opts: &GlobalOpts, cmd: ApprovalsCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        ApprovalsCommand::Ls { all } => {
            let query = [("state", if all { "all" } else { "pending" }.to_string())];
            let resp = client.get("/v1/approvals", &query).await?;
            output(opts, &resp, print_list);
        }
        ApprovalsCommand::Show { id } => {
            let resp = client.get(&item_url("approvals", &id)?, &[]).await?;
            output(opts, &resp, print_one);
        }
    }
    Ok(())
}

/// Runs an approver command.
pub async fn run_approver(opts: &GlobalOpts, cmd: ApproverCommand) -> anyhow::Result<()> {
    let ApproverCommand::Token { name } = cmd;
    let url = format!("{}/tokens", item_url("approvers", &name)?);
    let resp = Client::new(opts)?.post(&url, &json!({})).await?;
    if opts.json {
        print_json(&resp);
    } else {
        outln!("{}", text(&resp, "token"));
        eprintln!(
            "token for approver {} (shown once: store it now)",
            text(&resp, "approver")
        );
    }
    Ok(())
}

/// Casts a vote (`approve` or `deny`) and prints what it did.
pub async fn vote(
    opts: &GlobalOpts,
    id: &str,
    decision: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let url = format!("{}/votes", item_url("approvals", id)?);
    let mut body = json!({ "decision": decision, "via": "cli" });
    if let (Some(r), Some(obj)) = (reason, body.as_object_mut()) {
        obj.insert("reason".into(), Value::from(r));
    }
    let resp = match Client::new(opts)?.post(&url, &body).await {
        Ok(r) => r,
        Err(e) => match http_error(&e) {
            Some(h) if h.code.as_deref() == Some("already_decided") => {
                bail_as!(
                    Exit::Conflict,
                    "{}",
                    h.message.clone().unwrap_or_else(|| e.to_string())
                )
            }
            _ => return Err(e),
        },
    };
    output(opts, &resp, |r| outln!("{}", vote_line(decision, r)));
    Ok(())
}

/// One line for a vote's answer: `approved: counted 1/2`, `decided: lease is now active`, …
fn vote_line(decision: &str, r: &Value) -> String {
    let tally = &r["approval"]["tally"];
    let votes = format!("{}/{}", approvals(tally), text(tally, "quorum"));
    let lease = text(&r["lease"], "state");
    let past = if decision == "approve" {
        "approved"
    } else {
        "denied"
    };
    match text(r, "result").as_str() {
        "counted" => format!("{past}: counted {votes}"),
        "duplicate" => format!("duplicate: your earlier vote stands ({votes})"),
        "decided" => format!("decided: lease is now {lease}"),
        "lapsed" => format!(
            "lapsed: the deadline had passed ({}); lease is now {lease}",
            text(tally, "state")
        ),
        other => format!("{other}: lease is {lease}"),
    }
}

fn approvals(tally: &Value) -> usize {
    array(tally, "votes")
        .iter()
        .filter(|v| v["decision"] == "approve")
        .count()
}

use super::when;

/// At most `n` characters, on one line, with `…` when cut.
fn truncate(s: &str, n: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one.chars().count() <= n {
        one
    } else {
        one.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn print_list(resp: &Value) {
    let rows: Vec<Vec<String>> = resp
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|a| {
            let tally = &a["tally"];
            vec![
                text(a, "id"),
                text(a, "path"),
                format!("{} ({})", text(a, "agent_name"), text(a, "trust_tier")),
                text(a, "action"),
                format!("{}/{}", approvals(tally), text(tally, "quorum")),
                when(&tally["deadline"]),
                truncate(&text(a, "reason"), 40),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no approvals");
    } else {
        #[rustfmt::skip]
        print_table(&["ID", "PATH", "AGENT (TIER)", "ACTION", "VOTES", "DEADLINE", "REASON"], &rows);
    }
}

fn print_one(a: &Value) {
    let tally = &a["tally"];
    let lines = [
        ("id", text(a, "id")),
        ("lease", text(a, "lease_id")),
        ("state", text(tally, "state")),
        ("path", text(a, "path")),
        (
            "agent",
            format!(
                "{} ({}), tier {}",
                text(a, "agent_name"),
                text(a, "agent_id"),
                text(a, "trust_tier")
            ),
        ),
        ("action", text(a, "action")),
        ("sensitivity", text(a, "sensitivity")),
        ("ttl_seconds", text(a, "ttl_seconds")),
        ("uses", text(a, "uses")),
        ("keys", text(a, "keys")),
        ("reason", text(a, "reason")),
        ("policy", text(a, "policy_source")),
        (
            "votes",
            format!("{}/{}", approvals(tally), text(tally, "quorum")),
        ),
        ("requested_at", when(&a["requested_at"])),
        (
            "deadline",
            format!(
                "{} (then {})",
                when(&tally["deadline"]),
                text(tally, "on_deadline")
            ),
        ),
        ("decided_by", text(tally, "decided_by")),
        ("decided_at", when(&tally["decided_at"])),
    ];
    for (k, v) in lines {
        outln!("{k}: {v}");
    }
    for v in array(tally, "votes") {
        let reason = v
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| format!(": {}", truncate(r, 80)));
        outln!(
            "vote: {} {} via {} at {}{}",
            text(v, "approver"),
            text(v, "decision"),
            text(v, "via"),
            when(&v["at"]),
            reason.unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_lines() {
        let tally = json!({"quorum": 2, "state": "pending", "votes": [{"decision": "approve"}]});
        let r = json!({"result": "counted", "approval": {"tally": tally}, "lease": {"state": "pending"}});
        assert_eq!(vote_line("approve", &r), "approved: counted 1/2");
        let r = json!({"result": "decided", "approval": {"tally": tally}, "lease": {"state": "active"}});
        assert_eq!(vote_line("approve", &r), "decided: lease is now active");
        let r = json!({"result": "decided", "approval": {"tally": tally}, "lease": {"state": "denied"}});
        assert_eq!(vote_line("deny", &r), "decided: lease is now denied");
    }

    #[test]
    fn reasons_are_cut_to_one_short_line() {
        assert_eq!(truncate("short", 40), "short");
        assert_eq!(truncate("a\nb", 40), "a b");
        let long = "x".repeat(50);
        assert_eq!(truncate(&long, 40).chars().count(), 40);
        assert!(truncate(&long, 40).ends_with('…'));
        assert_eq!(when(&json!(0)), "1970-01-01T00:00:00Z");
        assert_eq!(when(&Value::Null), "-");
    }
}
