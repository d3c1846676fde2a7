//! `latchkey token …`: mint a scoped token (printed alone on stdout, so
//! `TOKEN=$(latchkey token mint …)` works) and revoke by token, agent, session or task.

use serde_json::{Value, json};

use super::client::Client;
use super::{GlobalOpts, print_json, text};

/// Token commands.
#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Mint a scoped token for a sub-agent; never wider than the credential minting it.
    ///
    /// The token alone goes to stdout; its id, scopes and expiry go to stderr.
    Mint {
        /// A scope such as `secrets:read:production/openai/*` (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// Lifetime in seconds (the daemon's default when absent).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Bind the token to a session; revoking the session revokes it.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Bind the token to a task.
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Admins only: the agent to mint for.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
    },
    /// Revoke one token (and those minted from it), or every token of an agent, session or task.
    #[command(group(clap::ArgGroup::new("target").required(true).multiple(false)
        .args(["token_id", "agent", "session", "task"])))]
    Revoke {
        /// The token's id.
        token_id: Option<String>,
        /// Every token of this agent issued until now.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// Every token bound to this session.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Every token bound to this task.
        #[arg(long, value_name = "ID")]
        task: Option<String>,
    },
}

/// The body of `POST /v1/tokens/revoke`: exactly one of the targets.
fn revoke_body(
    token_id: Option<String>,
    agent: Option<String>,
    session: Option<String>,
    task: Option<String>,
) -> anyhow::Result<Value> {
    let given = [
        ("token_id", token_id),
        ("agent_id", agent),
        ("session_id", session),
        ("task_id", task),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect::<Vec<_>>();
    match given.as_slice() {
        [(k, v)] => Ok(json!({ *k: v })),
        _ => anyhow::bail!("give exactly one of TOKEN_ID, --agent, --session, --task"),
    }
}

/// Runs a token command.
pub async fn run(opts: &GlobalOpts, cmd: TokenCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        TokenCommand::Mint {
            scopes,
            ttl,
            session,
            task,
            description,
            agent,
        } => {
            let body = json!({
                "scopes": scopes,
                "ttl_seconds": ttl,
                "session_id": session,
                "task_id": task,
                "description": description.unwrap_or_default(),
                "agent_id": agent,
            });
            let resp = client.post("/v1/tokens", &body).await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            outln!("{}", text(&resp, "token"));
            let scopes = resp
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            eprintln!(
                "token {} for agent {}, scopes: {scopes}, expires {}",
                text(&resp, "id"),
                text(&resp, "agent_id"),
                text(&resp, "expires_at")
            );
            for (label, key) in [("session", "session_id"), ("task", "task_id")] {
                if resp.get(key).is_some_and(|v| !v.is_null()) {
                    eprintln!("bound to {label} {}", text(&resp, key));
                }
            }
        }
        TokenCommand::Revoke {
            token_id,
            agent,
            session,
            task,
        } => {
            let body = revoke_body(token_id, agent, session, task)?;
            let resp = client.post("/v1/tokens/revoke", &body).await?;
            if opts.json {
                print_json(&resp);
            } else {
                outln!("revoked {} token(s)", text(&resp, "revoked"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn revoke_takes_exactly_one_target() {
        assert_eq!(
            revoke_body(None, None, Some("s1".into()), None).unwrap(),
            json!({"session_id": "s1"})
        );
        assert_eq!(
            revoke_body(Some("t".into()), None, None, None).unwrap(),
            json!({"token_id": "t"})
        );
        assert!(revoke_body(None, None, None, None).is_err());
        assert!(revoke_body(Some("t".into()), Some("a".into()), None, None).is_err());
    }
}
