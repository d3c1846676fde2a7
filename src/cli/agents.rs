//! `latchkey agent …`: register agents (the API key is shown once), list, show, enable or
//! disable them, change their trust tier and rotate their key. An agent is named by its id or
//! its unique name (`id:…` or `name:…` to say which, should one agent's name be another's id).

use serde_json::{Value, json};

use super::client::{Client, item_url};
use super::exit::{Exit, bail_as};
use super::{GlobalOpts, flag, print_fields, print_json, print_table, text};

/// Agent commands (admin, except `show` of oneself).
#[derive(clap::Subcommand)]
pub enum AgentCommand {
    /// Register an agent; prints its id, namespace and API key (shown once).
    Create {
        /// Unique name (letters, digits, `.`, `_`, `-`; at most 64).
        name: String,
        /// Trust tier, 1 (new) to 5 (elite).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        tier: u8,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Print only the API key, alone on stdout: `AGENT_KEY=$(latchkey agent create NAME -q)`.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List agents.
    Ls,
    /// Show one agent.
    Show {
        /// The agent's id or unique name.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Disable an agent: its key and tokens are refused.
    Disable {
        /// The agent's id or unique name.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Enable a disabled agent.
    Enable {
        /// The agent's id or unique name.
        #[arg(value_name = "AGENT")]
        id: String,
    },
    /// Change an agent's trust tier.
    SetTier {
        /// The agent's id or unique name.
        #[arg(value_name = "AGENT")]
        id: String,
        /// Trust tier, 1 (new) to 5 (elite).
        #[arg(value_parser = clap::value_parser!(u8).range(1..=5))]
        tier: u8,
    },
    /// Replace an agent's API key; the old one stops working at once.
    RotateKey {
        /// The agent's id or unique name.
        #[arg(value_name = "AGENT")]
        id: String,
        /// Print only the new API key, alone on stdout.
        #[arg(short, long)]
        quiet: bool,
    },
}

#[rustfmt::skip]
const FIELD_ORDER: &[&str] = &[
    "id", "name", "trust_tier", "namespace", "disabled", "description", "created_at", "key_id",
];

/// Runs an agent command.
pub async fn run(opts: &GlobalOpts, cmd: AgentCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        AgentCommand::Create {
            name,
            tier,
            description,
            quiet,
        } => {
            refuse_quiet_json(opts, quiet)?;
            let body = json!({"name": name, "trust_tier": tier, "description": description});
            let resp = client.post("/v1/agents", &body).await?;
            print_with_key(opts, quiet, &resp, "created");
        }
        AgentCommand::Ls => {
            let resp = client.get("/v1/agents", &[]).await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = resp
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|a| {
                    vec![
                        text(a, "id"),
                        text(a, "name"),
                        text(a, "trust_tier"),
                        flag(a, "disabled", "disabled"),
                        text(a, "namespace"),
                        text(a, "created_at"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no agents");
            } else {
                print_table(
                    &["ID", "NAME", "TIER", "DISABLED", "NAMESPACE", "CREATED_AT"],
                    &rows,
                );
            }
        }
        AgentCommand::Show { id } => {
            let resp = client.get(&item_url("agents", &id)?, &[]).await?;
            show(opts, &resp);
        }
        AgentCommand::Disable { id } => {
            let resp = client
                .patch(&item_url("agents", &id)?, &json!({"disabled": true}))
                .await?;
            done(opts, &resp, "disabled");
        }
        AgentCommand::Enable { id } => {
            let resp = client
                .patch(&item_url("agents", &id)?, &json!({"disabled": false}))
                .await?;
            done(opts, &resp, "enabled");
        }
        AgentCommand::SetTier { id, tier } => {
            let resp = client
                .patch(&item_url("agents", &id)?, &json!({"trust_tier": tier}))
                .await?;
            done(
                opts,
                &resp,
                &format!("now at trust tier {}", text(&resp, "trust_tier")),
            );
        }
        AgentCommand::RotateKey { id, quiet } => {
            refuse_quiet_json(opts, quiet)?;
            let url = format!("{}/rotate-key", item_url("agents", &id)?);
            let resp = client.post(&url, &json!({})).await?;
            print_with_key(
                opts,
                quiet,
                &resp,
                "has a new key; the old one no longer works",
            );
        }
    }
    Ok(())
}

fn show(opts: &GlobalOpts, agent: &Value) {
    if opts.json {
        print_json(agent);
    } else {
        print_fields(agent, FIELD_ORDER);
    }
}

fn done(opts: &GlobalOpts, agent: &Value, what: &str) {
    if opts.json {
        print_json(agent);
    } else {
        outln!(
            "agent {} ({}) {what}",
            text(agent, "id"),
            text(agent, "name")
        );
    }
}

/// `--quiet` prints the key alone and `--json` the whole answer: not both.
fn refuse_quiet_json(opts: &GlobalOpts, quiet: bool) -> anyhow::Result<()> {
    if quiet && opts.json {
        bail_as!(
            Exit::Usage,
            "--quiet prints the API key alone and --json the whole answer: give one of them"
        );
    }
    Ok(())
}

/// Prints an `{agent, api_key}` answer: the key last, alone on its line (with `quiet`, only
/// the key).
fn print_with_key(opts: &GlobalOpts, quiet: bool, resp: &Value, what: &str) {
    if opts.json {
        print_json(resp);
        return;
    }
    if quiet {
        outln!("{}", text(resp, "api_key"));
        return;
    }
    let agent = resp.get("agent").unwrap_or(&Value::Null);
    outln!(
        "agent {} ({}) {what}",
        text(agent, "id"),
        text(agent, "name")
    );
    outln!("namespace: {}", text(agent, "namespace"));
    outln!("trust tier: {}", text(agent, "trust_tier"));
    outln!("API key (shown once, store it now):");
    outln!("{}", text(resp, "api_key"));
}
