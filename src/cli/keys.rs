//! `latchkey keys …`: add a key-encryption key, re-wrap every data key under the newest
//! one, and list the keyring (ids and dates only, never key material).

use serde_json::{Value, json};

use super::client::Client;
use super::{GlobalOpts, array, print_json, print_table, text};

/// Keyring commands (admin).
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Add a new key-encryption key; new versions use it, old versions stay readable.
    Rotate,
    /// Re-wrap every version's data key under the newest key-encryption key.
    Rewrap,
    /// List the key-encryption keys.
    Ls,
}

/// Runs a keys command.
pub async fn run(opts: &GlobalOpts, cmd: KeysCommand) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    let resp = match cmd {
        KeysCommand::Rotate => client.post("/v1/keys/rotate", &json!({})).await?,
        KeysCommand::Rewrap => client.post("/v1/keys/rewrap", &json!({})).await?,
        KeysCommand::Ls => client.get("/v1/keys", &[]).await?,
    };
    if opts.json {
        print_json(&resp);
        return Ok(());
    }
    match cmd {
        KeysCommand::Rotate => {
            outln!(
                "added key {0}; new versions are encrypted under key {0}",
                text(&resp, "newest")
            );
            outln!("run `latchkey keys rewrap` to re-wrap existing versions under it");
        }
        KeysCommand::Rewrap => outln!(
            "re-wrapped {} version(s) under key {}",
            text(&resp, "rewrapped"),
            text(&resp, "kek_id")
        ),
        KeysCommand::Ls => print_keys(&resp),
    }
    Ok(())
}

fn print_keys(resp: &Value) {
    let newest = resp.get("newest");
    let rows: Vec<Vec<String>> = array(resp, "keys")
        .iter()
        .map(|k| {
            let current = if k.get("id") == newest { "*" } else { "" };
            vec![text(k, "id"), text(k, "created_at"), current.into()]
        })
        .collect();
    print_table(&["ID", "CREATED_AT", "NEWEST"], &rows);
}
