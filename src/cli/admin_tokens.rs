//! `latchkey admin-token …` (admin): list admin tokens (never their values), mint one (printed
//! alone on stdout, once) and revoke one by id. The daemon audits both changes and refuses to
//! revoke the last working admin token.

use serde_json::{Value, json};

use super::client::{Client, item_url};
use super::{GlobalOpts, print_json, print_table, text};

/// Admin token commands (admin).
#[derive(clap::Subcommand)]
pub enum AdminTokenCommand {
    /// List admin tokens: ids, descriptions and dates (values are never stored or shown).
    ///
    /// The token in use is marked with `*`.
    Ls {
        /// Revoked tokens too.
        #[arg(long)]
        all: bool,
    },
    /// Mint an admin token; the token alone goes to stdout (shown once: store it now).
    Mint {
        /// What the token is for, e.g. "ci deploy" or "alice laptop".
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Revoke an admin token by id; it stops working at once.
    ///
    /// The last working admin token is refused, so the daemon always stays administrable:
    /// mint its replacement first.
    Revoke {
        /// The token's id (see `latchkey admin-token ls`).
        id: String,
    },
}

/// Runs an admin-token command.
pub async fn run(opts: &GlobalOpts, cmd: AdminTokenCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        AdminTokenCommand::Ls { all } => {
            let resp = client.get("/v1/admin-tokens", &[]).await?;
            let shown: Vec<Value> = resp
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter(|t| all || t["revoked_at"].is_null())
                .cloned()
                .collect();
            if opts.json {
                print_json(&Value::Array(shown));
                return Ok(());
            }
            let me = client.get("/v1/whoami", &[]).await?;
            let rows: Vec<Vec<String>> = shown
                .iter()
                .map(|t| {
                    let current = if text(t, "id") == text(&me, "id") {
                        "*"
                    } else {
                        ""
                    };
                    vec![
                        current.to_string(),
                        text(t, "id"),
                        text(t, "description"),
                        text(t, "created_at"),
                        text(t, "revoked_at"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no admin tokens");
            } else {
                print_table(
                    &["", "ID", "DESCRIPTION", "CREATED_AT", "REVOKED_AT"],
                    &rows,
                );
            }
        }
        AdminTokenCommand::Mint { description } => {
            let resp = client
                .post("/v1/admin-tokens", &json!({"description": description}))
                .await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            outln!("{}", text(&resp, "token"));
            eprintln!(
                "admin token {} minted (shown once: store it now); revoke it with `latchkey admin-token revoke {0}`",
                text(&resp, "id")
            );
        }
        AdminTokenCommand::Revoke { id } => {
            let me = client.get("/v1/whoami", &[]).await?;
            let resp = client.delete(&item_url("admin-tokens", &id)?).await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            let description = text(&resp, "description");
            let about = if description.is_empty() || description == "-" {
                String::new()
            } else {
                format!(" ({description})")
            };
            outln!("revoked admin token {}{about}", text(&resp, "id"));
            if text(&resp, "id") == text(&me, "id") {
                eprintln!("that was the token in use: set LATCHKEY_TOKEN to another admin token");
            }
        }
    }
    Ok(())
}
