//! `latchkey console …` (admin): a one-time sign-in link for the web console (printed alone
//! on stdout, valid 10 minutes, usable once), and the live console sessions, listed and
//! revoked.

use serde_json::{Value, json};

use super::client::{Client, item_url};
use super::{GlobalOpts, print_json, print_table, text};

/// Console commands (admin).
#[derive(clap::Subcommand)]
pub enum ConsoleCommand {
    /// Print a one-time sign-in link to the web console (valid 10 minutes, usable once).
    ///
    /// Without --approver the link signs in as the operator (admin); the session lasts no
    /// longer than the admin token that asked for it. Set `[console] public_url` when
    /// browsers reach the daemon by another address.
    Link {
        /// Sign in as this configured approver (sees and decides approvals only).
        #[arg(long)]
        approver: Option<String>,
    },
    /// List live console sessions.
    Sessions,
    /// End a console session at once (audited).
    Revoke {
        /// The session's id (see `latchkey console sessions`).
        id: String,
    },
}

/// Runs a console command.
pub async fn run(opts: &GlobalOpts, cmd: ConsoleCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    match cmd {
        ConsoleCommand::Link { approver } => {
            let resp = client
                .post("/v1/console/links", &json!({"approver": approver}))
                .await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            outln!("{}", text(&resp, "url"));
            eprintln!("open it within 10 minutes; it signs in once");
        }
        ConsoleCommand::Sessions => {
            let resp = client.get("/v1/console/sessions", &[]).await?;
            if opts.json {
                print_json(&resp);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = resp
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|s| {
                    let who = match text(&s["who"], "kind").as_str() {
                        "approver" => format!("approver {}", text(&s["who"], "name")),
                        _ => "admin".to_string(),
                    };
                    let when = |k: &str| {
                        s[k].as_i64()
                            .and_then(crate::util::rfc3339_of)
                            .unwrap_or_default()
                    };
                    vec![
                        text(s, "id"),
                        who,
                        text(s, "via"),
                        text(s, "ip"),
                        when("created_at"),
                        when("expires_at"),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no console sessions");
            } else {
                print_table(
                    &["ID", "WHO", "VIA", "IP", "CREATED_AT", "EXPIRES_AT"],
                    &rows,
                );
            }
        }
        ConsoleCommand::Revoke { id } => {
            let _: Value = client.delete(&item_url("console/sessions", &id)?).await?;
            outln!("ended console session {id}");
        }
    }
    Ok(())
}
