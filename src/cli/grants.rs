//! `latchkey grant …` (admin): grants say which agents may do what on which paths, within
//! which limits.

use serde_json::{Map, Value, json};

use super::client::{Client, item_url};
use super::{GlobalOpts, output, text};

/// Grant commands (admin).
#[derive(clap::Subcommand)]
pub enum GrantCommand {
    /// Create a grant (or, with --id, create or replace the grant with that id).
    #[command(group(clap::ArgGroup::new("subject").required(true).multiple(false)
        .args(["agent", "namespace"])))]
    Create {
        /// For one agent, by id.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// For every agent whose namespace lies under this prefix (`entities`: all agents).
        #[arg(long, value_name = "PREFIX")]
        namespace: Option<String>,
        /// Full-path glob, e.g. `production/openai/*` or `shared/**`.
        #[arg(long)]
        pattern: String,
        /// read, proxy, list or write (repeat for several).
        #[arg(long = "action", value_name = "ACTION", required = true,
            value_parser = ["read", "proxy", "list", "write"])]
        actions: Vec<String>,
        /// Longest lease, in seconds.
        #[arg(long, value_name = "SECONDS")]
        max_ttl: Option<u64>,
        /// Most uses per lease.
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
        /// For env_bundles: a key that may be read (repeat for several).
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        /// Most leases per agent per hour under this grant.
        #[arg(long, value_name = "N")]
        max_per_hour: Option<u32>,
        /// Create or replace the grant with this id (letters, digits, `-`, `_`).
        #[arg(long)]
        id: Option<String>,
        /// A time-bound grant: it stops applying at this RFC 3339 time (audited `grant.expired`).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// List grants.
    Ls,
    /// Delete a grant.
    Rm {
        /// Grant id.
        id: String,
    },
}

/// An object of the given fields, leaving out absent ones (the daemon refuses `null` where a
/// default applies).
pub(super) fn object(fields: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    Value::Object(map)
}

pub(super) fn some_list<T: Into<Value>>(v: Vec<T>) -> Option<Value> {
    (!v.is_empty()).then(|| Value::Array(v.into_iter().map(Into::into).collect()))
}

/// Runs a grant command.
pub async fn run(opts: &GlobalOpts, cmd: GrantCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        GrantCommand::Create {
            agent,
            namespace,
            pattern,
            actions,
            max_ttl,
            max_uses,
            keys,
            max_per_hour,
            id,
            expires_at,
        } => {
            let subject = match (agent, namespace) {
                (Some(a), None) => json!({"kind": "agent", "value": a}),
                (None, Some(n)) => json!({"kind": "namespace", "value": n}),
                _ => anyhow::bail!("give exactly one of --agent, --namespace"),
            };
            let limits = object([
                ("max_ttl_seconds", max_ttl.map(Value::from)),
                ("max_uses", max_uses.map(Value::from)),
                ("keys", some_list(keys)),
                ("max_leases_per_hour", max_per_hour.map(Value::from)),
            ]);
            let mut body = json!({"subject": subject, "pattern": pattern, "actions": actions, "limits": limits});
            if let Some(t) = expires_at {
                body["expires_at"] = Value::String(t);
            }
            let resp = match id {
                Some(id) => client.put(&item_url("grants", &id)?, &body).await?,
                None => client.post("/v1/grants", &body).await?,
            };
            output(opts, &resp, |g| {
                outln!("grant {}: {}", text(g, "id"), describe(g));
            });
        }
        GrantCommand::Ls => {
            let resp = client.get("/v1/grants", &[]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = list(r)
                    .iter()
                    .map(|g| {
                        vec![
                            text(g, "id"),
                            subject(g),
                            text(g, "pattern"),
                            actions(g),
                            limits(g),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "SUBJECT", "PATTERN", "ACTIONS", "LIMITS"],
                    &rows,
                    "grants",
                );
            });
        }
        GrantCommand::Rm { id } => {
            let resp = client.delete(&item_url("grants", &id)?).await?;
            output(opts, &resp, |g| outln!("deleted grant {}", text(g, "id")));
        }
    }
    Ok(())
}

pub(super) fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

pub(super) fn table(header: &[&str], rows: &[Vec<String>], what: &str) {
    if rows.is_empty() {
        eprintln!("no {what}");
    } else {
        super::print_table(header, rows);
    }
}

fn subject(g: &Value) -> String {
    format!(
        "{}:{}",
        text(&g["subject"], "kind"),
        text(&g["subject"], "value")
    )
}

fn actions(g: &Value) -> String {
    super::array(g, "actions")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn limits(g: &Value) -> String {
    let Some(l) = g.get("limits").and_then(Value::as_object) else {
        return "-".into();
    };
    let parts: Vec<String> = l
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::Array(a) => {
                let items: Vec<String> = a.iter().map(|x| text(&json!({ "x": x }), "x")).collect();
                format!("{k}={}", items.join(","))
            }
            other => format!("{k}={}", text(&json!({ "x": other }), "x")),
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn describe(g: &Value) -> String {
    let limits = match limits(g).as_str() {
        "-" => String::new(),
        l => format!(" ({l})"),
    };
    format!(
        "{} may {} on {}{limits}",
        subject(g),
        actions(g),
        text(g, "pattern")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_leave_out_absent_fields() {
        let body = object([
            ("requirement", Some(Value::from("approval"))),
            ("quorum", None),
            ("tiers", some_list(vec![1u8, 2])),
            ("sensitivities", some_list(Vec::<String>::new())),
        ]);
        assert_eq!(body, json!({"requirement": "approval", "tiers": [1, 2]}));
    }

    #[test]
    fn grants_read_well() {
        let g = json!({"id": "g1", "subject": {"kind": "namespace", "value": "entities"}, "pattern": "shared/**",
            "actions": ["read", "proxy"], "limits": {"max_uses": 2, "keys": ["A", "B"], "max_ttl_seconds": null}});
        assert_eq!(
            describe(&g),
            "namespace:entities may read,proxy on shared/** (keys=A,B max_uses=2)"
        );
    }
}
