//! `latchkey lease …`: request a lease (optionally waiting for its approval and revealing the
//! value), show, list, revoke and read leases. A value is printed only on an explicit ask
//! (`lease request --reveal`, `lease read`), alone on stdout.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::client::{Client, LONG_POLL_TIMEOUT, http_error, item_url};
use super::exit::{Exit, bail_as};
use super::value::Revealed;
use super::{GlobalOpts, output, print_fields, print_json, print_table, text};

/// Lease commands (agents request and use leases; admins may list, show and revoke any).
#[derive(clap::Subcommand)]
pub enum LeaseCommand {
    /// Request a lease on a secret; it is active at once or waits for approvers.
    ///
    /// Prints the lease's id, state and the rule that applied. No value is printed unless
    /// --reveal is given, and then only the value goes to stdout.
    Request(RequestArgs),
    /// Wait until a pending lease is decided (or --timeout runs out), then say what it became.
    ///
    /// Exits 0 once the lease is active, 7 when it was denied or expired, 8 when it is still
    /// pending at the end of --timeout.
    Wait {
        /// Lease id.
        id: String,
        /// Longest wait, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
        /// Once active, use the lease and print only the value on stdout (read leases).
        #[arg(long)]
        reveal: bool,
    },
    /// Show a lease; with --wait, answer as soon as its state changes.
    Show {
        /// Lease id.
        id: String,
        /// Wait up to this many seconds (at most 60) for the state to change.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=60))]
        wait: Option<u64>,
    },
    /// List leases (yours; an admin sees all), newest first.
    Ls {
        /// Only leases in this state: pending, active, exhausted, expired, revoked, denied.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (default 100).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Only leases older than this lease id (the last id of the previous page).
        #[arg(long, value_name = "LEASE_ID")]
        before: Option<String>,
    },
    /// Revoke a lease (a pending one's approval is cancelled).
    Revoke {
        /// Lease id.
        id: String,
        /// Why, recorded in the audit event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Use one use of an active read lease and print the value alone on stdout.
    Read {
        /// Lease id.
        id: String,
    },
}

/// Arguments of `lease request`.
#[derive(clap::Args)]
pub struct RequestArgs {
    /// Secret path (relative to your namespace, or absolute with a leading `/`).
    pub path: String,
    /// What the lease allows.
    #[arg(long, default_value = "read", value_parser = ["read", "proxy"])]
    pub action: String,
    /// Lifetime once granted, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// Uses (default 1).
    #[arg(long, value_name = "N")]
    pub uses: Option<u32>,
    /// For an env_bundle: only this key (repeat for several).
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Why you need it (shown to approvers).
    #[arg(long)]
    pub reason: Option<String>,
    /// Bind the lease to a session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Bind the lease to a task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Wait until the lease is no longer pending (bounded by --timeout).
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Once active, use the lease and print only the value on stdout (read leases).
    #[arg(long)]
    pub reveal: bool,
}

/// Runs a lease command.
pub async fn run(opts: &GlobalOpts, cmd: LeaseCommand) -> anyhow::Result<()> {
    match cmd {
        LeaseCommand::Request(args) => request(opts, args).await,
        LeaseCommand::Wait {
            id,
            timeout,
            reveal: show_value,
        } => {
            let client = Client::new(opts)?;
            let lease = client.get(&item_url("leases", &id)?, &[]).await?;
            if show_value && text(&lease, "action") != "read" {
                bail_as!(
                    Exit::Usage,
                    "--reveal prints a value: lease {id} is a {} lease",
                    text(&lease, "action")
                );
            }
            let how = Outcome {
                wait: Some(timeout),
                reveal: show_value,
            };
            settle(opts, &client, lease, how).await
        }
        LeaseCommand::Show { id, wait } => {
            let url = item_url("leases", &id)?;
            let (client, query) = match wait {
                Some(w) if w > 0 => (
                    Client::with_timeout(opts, LONG_POLL_TIMEOUT)?,
                    vec![("wait", w.to_string())],
                ),
                _ => (Client::new(opts)?, vec![]),
            };
            let lease = match client.get(&url, &query).await {
                // The daemon's request timeout cut the long poll short: show the lease as is.
                Err(e) if http_error(&e).is_some_and(|h| h.status == 408) => {
                    client.get(&url, &[]).await?
                }
                other => other?,
            };
            output(opts, &lease, print_lease);
            Ok(())
        }
        LeaseCommand::Ls {
            state,
            limit,
            before,
        } => {
            let mut query = Vec::new();
            if let Some(s) = state {
                query.push(("state", s));
            }
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            if let Some(b) = before {
                query.push(("before", b));
            }
            let resp = Client::new(opts)?.get("/v1/leases", &query).await?;
            output(opts, &resp, print_list);
            Ok(())
        }
        LeaseCommand::Revoke { id, reason } => {
            let query: Vec<(&str, String)> = reason.into_iter().map(|r| ("reason", r)).collect();
            let resp = Client::new(opts)?
                .request(
                    reqwest::Method::DELETE,
                    &item_url("leases", &id)?,
                    &query,
                    None,
                )
                .await?;
            output(opts, &resp, |l| {
                outln!("lease {} is now {}", text(l, "id"), text(l, "state"));
            });
            Ok(())
        }
        LeaseCommand::Read { id } => reveal(opts, &Client::new(opts)?, &id).await,
    }
}

fn print_lease(l: &Value) {
    let mut v = l.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("policy".into(), json!(text(&l["policy"], "source")));
        if let Some(a) = l.get("approval").filter(|a| a.is_object()) {
            let summary = format!(
                "{} {} ({}/{} votes, deadline {}, decided by {})",
                text(a, "id"),
                text(a, "state"),
                text(a, "votes"),
                text(a, "votes_needed"),
                text(a, "deadline"),
                text(a, "decided_by")
            );
            obj.insert("approval".into(), json!(summary));
        }
    }
    #[rustfmt::skip]
    let order = ["id", "state", "path", "action", "agent_name", "trust_tier", "sensitivity", "policy",
        "approval", "uses", "uses_left", "ttl_seconds", "expires_at", "reason"];
    print_fields(&v, &order);
}

fn print_list(resp: &Value) {
    let rows: Vec<Vec<String>> = resp
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|l| {
            vec![
                text(l, "id"),
                text(l, "state"),
                text(l, "agent_name"),
                text(l, "path"),
                text(l, "action"),
                format!("{}/{}", text(l, "uses_left"), text(l, "uses")),
                text(l, "expires_at"),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no leases");
    } else {
        #[rustfmt::skip]
        print_table(&["ID", "STATE", "AGENT", "PATH", "ACTION", "USES", "EXPIRES"], &rows);
    }
}

/// Uses one use of a lease and prints the value (or, with --json, the daemon's answer).
async fn reveal(opts: &GlobalOpts, client: &Client, id: &str) -> anyhow::Result<()> {
    let url = format!("{}/secret", item_url("leases", id)?);
    let body = client.request_secret(Method::POST, &url).await?;
    if opts.json {
        print_json(&serde_json::from_slice(&body)?);
    } else {
        Revealed::parse(&body)?.print();
    }
    Ok(())
}

async fn request(opts: &GlobalOpts, a: RequestArgs) -> anyhow::Result<()> {
    if a.reveal && a.action != "read" {
        bail_as!(
            Exit::Usage,
            "--reveal prints a value: it needs a read lease, not {}",
            a.action
        );
    }
    let client = Client::new(opts)?;
    let mut body = json!({"path": a.path, "action": a.action});
    let optional = [
        ("ttl_seconds", a.ttl.map(Value::from)),
        ("uses", a.uses.map(Value::from)),
        ("keys", (!a.keys.is_empty()).then(|| json!(a.keys))),
        ("reason", a.reason.map(Value::from)),
        ("session_id", a.session.map(Value::from)),
        ("task_id", a.task.map(Value::from)),
    ];
    for (k, v) in optional {
        if let (Some(v), Some(obj)) = (v, body.as_object_mut()) {
            obj.insert(k.into(), v);
        }
    }
    let lease = client.post("/v1/leases", &body).await?;
    // With --reveal or --json stdout is kept for the value or the JSON.
    let line = format!(
        "lease {}: {} (policy: {})",
        text(&lease, "id"),
        text(&lease, "state"),
        text(&lease["policy"], "source")
    );
    if a.reveal || opts.json {
        eprintln!("{line}");
    } else {
        outln!("{line}");
    }
    let how = Outcome {
        wait: a.wait.then_some(a.timeout),
        reveal: a.reveal,
    };
    settle(opts, &client, lease, how).await
}

/// What `lease request` and `lease wait` do with a lease once they have it.
struct Outcome {
    /// Wait this many seconds while it is pending (None: do not wait).
    wait: Option<u64>,
    /// Once active, use it and print the value.
    reveal: bool,
}

/// Waits for a pending lease when asked, then reveals the value, tells how to use the lease,
/// or fails with the class of what it became (README, "Exit codes").
async fn settle(
    opts: &GlobalOpts,
    client: &Client,
    mut lease: Value,
    how: Outcome,
) -> anyhow::Result<()> {
    let id = text(&lease, "id");
    if state(&lease) == "pending" {
        announce_pending(&lease, how.wait.is_some());
        if let Some(secs) = how.wait {
            let deadline = Instant::now() + Duration::from_secs(secs);
            lease = super::lease_wait::wait(opts, lease, deadline).await?;
        }
    }
    if opts.json && !(how.reveal && state(&lease) == "active") {
        print_json(&lease);
    }
    match (state(&lease).as_str(), how.wait) {
        ("active", _) if how.reveal => reveal(opts, client, &id).await,
        ("active", _) if text(&lease, "action") == "read" => {
            eprintln!(
                "lease {id} is active; use --reveal to print the value (or run `latchkey lease read {id}`)"
            );
            Ok(())
        }
        ("active", _) => {
            eprintln!("lease {id} is active for proxy use");
            Ok(())
        }
        ("pending", Some(secs)) => bail_as!(
            Exit::Pending,
            "lease {id} is still pending after {secs} s; wait longer with `latchkey lease wait {id}`"
        ),
        ("pending", None) if how.reveal => bail_as!(
            Exit::Pending,
            "lease {id} is pending approval, so there is no value yet: add --wait to wait for it, or run `latchkey lease wait {id} --reveal`"
        ),
        ("pending", None) => {
            eprintln!(
                "lease {id} is pending; wait for the decision with `latchkey lease wait {id}` (or request with --wait)"
            );
            Ok(())
        }
        _ => bail_as!(Exit::LeaseEnded, "{}", ended(&lease)),
    }
}

pub(super) fn state(lease: &Value) -> String {
    text(lease, "state")
}

/// Tells, on stderr, which approval a pending lease waits for and how an approver gives it;
/// "waiting" only when this process is about to wait.
pub(super) fn announce_pending(lease: &Value, waiting: bool) {
    let appr = text(&lease["approval"], "id");
    eprintln!(
        "approval {appr}: needs {} vote(s) by {} (an approver runs: latchkey approve {appr})",
        text(&lease["approval"], "votes_needed"),
        text(&lease["approval"], "deadline")
    );
    if waiting {
        eprintln!("waiting for approval {appr}");
    }
}

/// The one line for a lease that did not become (or is no longer) usable.
pub(super) fn ended(lease: &Value) -> String {
    let id = text(lease, "id");
    let by = text(&lease["approval"], "decided_by");
    match (
        state(lease).as_str(),
        text(&lease["approval"], "state").as_str(),
    ) {
        ("denied", _) => format!("lease {id} was denied by {by}"),
        ("expired", "expired") => {
            format!("lease {id} expired: no approver decided before the deadline")
        }
        ("expired", _) => format!("lease {id} has expired"),
        ("revoked", _) => format!("lease {id} was revoked"),
        ("exhausted", _) => format!("lease {id} is exhausted: no uses left"),
        (s, _) => format!("lease {id} is {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_leases_are_one_clear_line() {
        let l = json!({"id": "l1", "state": "denied", "approval": {"state": "denied", "decided_by": "alice"}});
        assert_eq!(ended(&l), "lease l1 was denied by alice");
        let l = json!({"id": "l1", "state": "expired", "approval": {"state": "expired", "decided_by": "deadline"}});
        assert!(ended(&l).contains("no approver decided"));
        let l = json!({"id": "l1", "state": "revoked", "approval": null});
        assert_eq!(ended(&l), "lease l1 was revoked");
    }
}
