//! `latchkey webhook …` and `latchkey service …` (admin): audit webhook subscriptions
//! (create — the signing secret is printed once —, list, show, pause/resume, change, delete,
//! rotate the secret, replay, deliveries) and proxy services (add from a template or a file,
//! list, remove).

use serde_json::{Value, json};

use super::client::{Client, item_url};
use super::{GlobalOpts, output, print_table, text};

/// Webhook commands (admin).
#[derive(clap::Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to audit events; prints the whsec_ signing secret once.
    Create {
        /// Destination (http/https).
        url: String,
        /// Event pattern (repeatable): audit.*, audit.secret.read, audit.approval.* …
        #[arg(long = "event", default_value = "audit.*")]
        events: Vec<String>,
        /// Only events of this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List subscriptions.
    Ls,
    /// Show one subscription.
    Show {
        /// Subscription id.
        id: String,
    },
    /// Pause delivery.
    Pause {
        /// Subscription id.
        id: String,
    },
    /// Resume delivery (also revives a failing or disabled subscription).
    Resume {
        /// Subscription id.
        id: String,
    },
    /// Change the URL or the event patterns.
    Update {
        /// Subscription id.
        id: String,
        /// New destination.
        #[arg(long)]
        url: Option<String>,
        /// New event patterns (repeatable; replaces the old ones).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// Delete a subscription.
    Rm {
        /// Subscription id.
        id: String,
    },
    /// New signing secret; the old one keeps signing for the grace period.
    RotateSecret {
        /// Subscription id.
        id: String,
        /// Grace period in seconds (default from config, 24 h).
        #[arg(long)]
        grace: Option<u64>,
    },
    /// Re-send every matching event from a seq on.
    Replay {
        /// Subscription id.
        id: String,
        /// First seq to send again.
        #[arg(long)]
        from_seq: u64,
    },
    /// The newest delivery attempts.
    Deliveries {
        /// Subscription id.
        id: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Proxy service commands (admin).
#[derive(clap::Subcommand)]
pub enum ServiceCommand {
    /// Add a service from a template (github, stripe, openai, anthropic, shopify) or a TOML file.
    Add {
        /// Service name (with --template).
        #[arg(long)]
        name: Option<String>,
        /// Template name.
        #[arg(long, conflicts_with = "file")]
        template: Option<String>,
        /// The secret's full path (with --template).
        #[arg(long)]
        secret: Option<String>,
        /// Override the template's base URL (e.g. your Shopify store).
        #[arg(long)]
        base_url: Option<String>,
        /// A service file (the format of services/NAME.toml).
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// List services.
    Ls,
    /// Remove a service added through the API.
    Rm {
        /// Service name.
        name: String,
    },
}

fn print_hook(v: &Value) {
    outln!("id:          {}", text(v, "id"));
    outln!("url:         {}", text(v, "url"));
    outln!("events:      {}", text(v, "events"));
    outln!("namespace:   {}", text(v, "namespace"));
    outln!(
        "status:      {} {}",
        text(v, "status"),
        v.get("status_reason").and_then(Value::as_str).unwrap_or("")
    );
    outln!("cursor:      {}", text(v, "cursor"));
    if let Some(secret) = v.get("secret").and_then(Value::as_str) {
        outln!("secret:      {secret}   (shown once: give it to the consumer now)");
    }
}

/// Runs a webhook command.
pub async fn run(opts: &GlobalOpts, cmd: WebhookCommand) -> anyhow::Result<()> {
    let c = Client::new(opts)?;
    let item = |id: &str| item_url("webhooks", id);
    let resp = match cmd {
        WebhookCommand::Create { url, events, namespace, description } => c.post("/v1/webhooks", &json!({"url": url, "events": events, "namespace": namespace, "description": description})).await?,
        WebhookCommand::Ls => {
            let resp = c.get("/v1/webhooks", &[]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = r.as_array().map(|a| a.iter().map(|w| vec![text(w, "id"), text(w, "status"), text(w, "cursor"), text(w, "events"), text(w, "url")]).collect()).unwrap_or_default();
                print_table(&["ID", "STATUS", "CURSOR", "EVENTS", "URL"], &rows);
            });
            return Ok(());
        }
        WebhookCommand::Show { id } => c.get(&item(&id)?, &[]).await?,
        WebhookCommand::Pause { id } => c.patch(&item(&id)?, &json!({"paused": true})).await?,
        WebhookCommand::Resume { id } => c.patch(&item(&id)?, &json!({"paused": false})).await?,
        WebhookCommand::Update { id, url, events } => {
            let mut body = json!({});
            if let Some(u) = url {
                body["url"] = json!(u);
            }
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            c.patch(&item(&id)?, &body).await?
        }
        WebhookCommand::Rm { id } => {
            c.delete(&item(&id)?).await?;
            outln!("deleted webhook {id}");
            return Ok(());
        }
        WebhookCommand::RotateSecret { id, grace } => c.post(&format!("{}/rotate-secret", item(&id)?), &json!({"grace_seconds": grace})).await?,
        WebhookCommand::Replay { id, from_seq } => c.post(&format!("{}/replay", item(&id)?), &json!({"from_seq": from_seq})).await?,
        WebhookCommand::Deliveries { id, limit } => {
            let resp = c.get(&format!("{}/deliveries", item(&id)?), &[("limit", limit.to_string())]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = r.as_array().map(|a| a.iter().map(|d| vec![text(d, "time"), text(d, "seq"), text(d, "status"), text(d, "latency_ms"), text(d, "try_number"), text(d, "error")]).collect()).unwrap_or_default();
                print_table(&["TIME", "SEQ", "STATUS", "MS", "TRY", "ERROR"], &rows);
            });
            return Ok(());
        }
    };
    output(opts, &resp, print_hook);
    Ok(())
}

/// Runs a service command.
pub async fn run_service(opts: &GlobalOpts, cmd: ServiceCommand) -> anyhow::Result<()> {
    let c = Client::new(opts)?;
    match cmd {
        ServiceCommand::Add {
            name,
            template,
            secret,
            base_url,
            file,
        } => {
            let body = match (template, file) {
                (Some(t), None) => {
                    json!({"template": t, "name": name, "secret": secret, "base_url": base_url})
                }
                (None, Some(f)) => {
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                    let service: toml::Value = toml::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                    json!({"service": service})
                }
                _ => {
                    anyhow::bail!("give --template NAME (with --name and --secret) or --file FILE")
                }
            };
            let resp = c.post("/v1/services", &body).await?;
            output(opts, &resp, |r| {
                outln!(
                    "added service {} → {} (secret {})",
                    text(r, "name"),
                    text(r, "base_url"),
                    text(r, "secret")
                )
            });
        }
        ServiceCommand::Ls => {
            let resp = c.get("/v1/services", &[]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                vec![
                                    text(s, "name"),
                                    text(s, "origin"),
                                    text(s, "base_url"),
                                    text(s, "secret"),
                                    s.get("endpoints")
                                        .and_then(Value::as_object)
                                        .map(|e| e.keys().cloned().collect::<Vec<_>>().join(","))
                                        .unwrap_or_default(),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print_table(&["NAME", "FROM", "BASE URL", "SECRET", "ENDPOINTS"], &rows);
            });
        }
        ServiceCommand::Rm { name } => {
            c.delete(&item_url("services", &name)?).await?;
            outln!("removed service {name}");
        }
    }
    Ok(())
}
