//! `latchkey policy …` (admin): overrides of the approval matrix for a path pattern.

use serde_json::Value;

use super::client::{Client, pattern_url};
use super::grants::{list, object, some_list, table};
use super::{GlobalOpts, output, text};

/// Approval-policy commands (admin).
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Set what leases under a path pattern need (replaces that pattern's policy).
    Set {
        /// Full-path glob, e.g. `production/**`.
        pattern: String,
        /// instant, approval, or flagged (instant but flagged in the audit log).
        #[arg(long = "require", value_name = "REQUIREMENT",
            value_parser = ["instant", "approval", "flagged"])]
        requirement: String,
        /// Distinct approvals needed (1–10; default 1).
        #[arg(long, value_name = "N")]
        quorum: Option<u32>,
        /// Seconds a pending approval waits (default: the configured default).
        #[arg(long, value_name = "SECONDS")]
        deadline: Option<u64>,
        /// What the deadline does (default deny).
        #[arg(long, value_name = "WHAT", value_parser = ["deny", "grant"])]
        on_deadline: Option<String>,
        /// Only for this trust tier (repeat for several; all when absent).
        #[arg(long = "tier", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
        tiers: Vec<u8>,
        /// Only for this sensitivity (repeat for several; all when absent).
        #[arg(long = "sensitivity", value_name = "S",
            value_parser = ["standard", "sensitive", "critical"])]
        sensitivities: Vec<String>,
    },
    /// List policies, from the configuration and from the API.
    Ls,
    /// Remove a policy set through the API.
    Rm {
        /// Its pattern.
        pattern: String,
    },
}

/// Runs a policy command.
pub async fn run(opts: &GlobalOpts, cmd: PolicyCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        PolicyCommand::Set {
            pattern,
            requirement,
            quorum,
            deadline,
            on_deadline,
            tiers,
            sensitivities,
        } => {
            let body = object([
                ("requirement", Some(Value::from(requirement))),
                ("quorum", quorum.map(Value::from)),
                ("deadline_seconds", deadline.map(Value::from)),
                ("on_deadline", on_deadline.map(Value::from)),
                ("tiers", some_list(tiers)),
                ("sensitivities", some_list(sensitivities)),
            ]);
            let url = pattern_url("approval-policies", &pattern)?;
            let resp = client.put(&url, &body).await?;
            output(opts, &resp, |p| {
                outln!("policy {}: {}", text(p, "pattern"), policy_rule(p));
            });
        }
        PolicyCommand::Ls => {
            let resp = client.get("/v1/approval-policies", &[]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = list(r)
                    .iter()
                    .map(|p| {
                        vec![
                            text(p, "pattern"),
                            policy_rule(p),
                            text(p, "tiers"),
                            text(p, "sensitivities"),
                            text(p, "origin"),
                        ]
                    })
                    .collect();
                let header = ["PATTERN", "RULE", "TIERS", "SENSITIVITIES", "ORIGIN"];
                table(&header, &rows, "policies");
            });
        }
        PolicyCommand::Rm { pattern } => {
            let resp = client
                .delete(&pattern_url("approval-policies", &pattern)?)
                .await?;
            output(opts, &resp, |_| outln!("removed policy {pattern}"));
        }
    }
    Ok(())
}

/// `approval ×2, 3600s then deny`, `instant`, `flagged`.
fn policy_rule(p: &Value) -> String {
    let req = text(p, "requirement");
    if req != "approval" {
        return req;
    }
    let deadline = match p.get("deadline_seconds").and_then(Value::as_u64) {
        Some(s) => format!("{s}s"),
        None => "default deadline".into(),
    };
    format!(
        "approval ×{}, {deadline} then {}",
        text(p, "quorum"),
        text(p, "on_deadline")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_read_well() {
        let p = json!({"pattern": "prod/**", "requirement": "approval", "quorum": 2, "deadline_seconds": 60, "on_deadline": "deny"});
        assert_eq!(policy_rule(&p), "approval ×2, 60s then deny");
        assert_eq!(policy_rule(&json!({"requirement": "flagged"})), "flagged");
    }
}
