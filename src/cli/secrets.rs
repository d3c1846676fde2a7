//! `latchkey secret …`: put (value from a file or stdin, never argv), get, ls, rm, restore,
//! history and rollback. Nothing here prints a secret value.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Client, secret_url};
use super::value::{read_value, secret_json};
use super::{GlobalOpts, array, flag, output, print_fields, print_json, print_table, text};

/// Secret commands.
#[derive(clap::Subcommand)]
pub enum SecretCommand {
    /// Create or update a secret; the value is read from --file or stdin, never from argv.
    ///
    /// From stdin, exactly one trailing newline (`\n` or `\r\n`) is stripped, so
    /// `echo "$KEY" | latchkey secret put PATH` stores the key without it. A --file is stored
    /// byte for byte. The value must be UTF-8 text and not empty.
    Put {
        /// Secret path (agents: relative to their namespace, or absolute with a leading `/`).
        path: String,
        /// Read the value from this file (exactly as is) instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// api_key (default), password, token, certificate, ssh_key, note, generic.
        #[arg(long = "type", value_name = "TYPE")]
        secret_type: Option<String>,
        /// standard (default), sensitive or critical.
        #[arg(long)]
        sensitivity: Option<String>,
        /// A JSON object, e.g. '{"owner":"ops"}' (replaces the stored metadata).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// RFC 3339 time after which the secret cannot be used.
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
        /// Total reads allowed.
        #[arg(long, value_name = "N")]
        max_access_count: Option<u64>,
        /// Check-and-set: the current version you expect (0: the secret must not exist yet).
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Describe a secret (metadata only).
    Get {
        /// Secret path.
        path: String,
        /// Describe a soft-deleted secret too.
        #[arg(long)]
        deleted: bool,
    },
    /// List secrets under a prefix.
    Ls {
        /// Path prefix.
        prefix: Option<String>,
        /// Include soft-deleted secrets.
        #[arg(long)]
        deleted: bool,
    },
    /// Soft-delete a secret (restorable).
    Rm {
        /// Secret path.
        path: String,
    },
    /// Restore a soft-deleted secret.
    Restore {
        /// Secret path.
        path: String,
    },
    /// List a secret's versions.
    History {
        /// Secret path.
        path: String,
    },
    /// Make an old version's value current again, as a new version.
    Rollback {
        /// Secret path.
        path: String,
        /// The version to bring back.
        version: u64,
        /// Check-and-set on the current version.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
}

/// The body of a PUT; `value` borrows the zeroized buffer.
#[derive(Serialize)]
struct PutBody<'a> {
    value: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    secret_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_access_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_version: Option<u64>,
}

fn parse_metadata(raw: Option<&str>) -> anyhow::Result<Option<serde_json::Map<String, Value>>> {
    raw.map(|m| match serde_json::from_str::<Value>(m) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(anyhow!(
            "--metadata must be a JSON object, e.g. '{{\"owner\":\"ops\"}}'"
        )),
    })
    .transpose()
}

/// Runs a secret command.
pub async fn run(opts: &GlobalOpts, cmd: SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Put {
            path,
            file,
            secret_type,
            sensitivity,
            metadata,
            expires_at,
            max_access_count,
            if_version,
        } => {
            let url = secret_url(&path)?;
            let metadata = parse_metadata(metadata.as_deref())?;
            if secret_type.as_deref() == Some("env_bundle") {
                bail!("an env_bundle takes entries: use `latchkey import .env FILE --bundle NAME`");
            }
            let client = Client::new(opts)?;
            let value = read_value(file.as_deref())?;
            let body = secret_json(
                &PutBody {
                    value: &value,
                    secret_type: secret_type.as_deref(),
                    sensitivity: sensitivity.as_deref(),
                    metadata,
                    expires_at: expires_at.as_deref(),
                    max_access_count,
                    if_version,
                },
                value.len(),
            )?;
            drop(value);
            let resp = client
                .request(Method::PUT, &url, &[], Some(body.to_vec()))
                .await?;
            drop(body);
            output(opts, &resp, |r| {
                outln!(
                    "stored {} version {}",
                    text(r, "path"),
                    text(r, "current_version")
                );
            });
        }
        SecretCommand::Get { path, deleted } => {
            let url = secret_url(&path)?;
            let query = [("include_deleted", deleted.to_string())];
            let resp = Client::new(opts)?.get(&url, &query).await?;
            output(opts, &resp, |r| print_fields(r, FIELD_ORDER));
        }
        SecretCommand::Ls { prefix, deleted } => list(opts, prefix, deleted).await?,
        SecretCommand::Rm { path } => {
            let resp = Client::new(opts)?.delete(&secret_url(&path)?).await?;
            output(opts, &resp, |r| {
                let p = text(r, "path");
                outln!("deleted {p} (restore with `latchkey secret restore {p}`)");
            });
        }
        SecretCommand::Restore { path } => {
            let url = format!("{}/restore", secret_url(&path)?);
            let resp = Client::new(opts)?.post(&url, &json!({})).await?;
            output(opts, &resp, |r| {
                outln!(
                    "restored {} version {}",
                    text(r, "path"),
                    text(r, "current_version")
                );
            });
        }
        SecretCommand::History { path } => {
            let url = format!("{}/versions", secret_url(&path)?);
            let resp = Client::new(opts)?.get(&url, &[]).await?;
            output(opts, &resp, |r| {
                let rows: Vec<Vec<String>> = array(r, "versions")
                    .iter()
                    .map(|v| {
                        let cols = ["version", "created_at", "created_by", "source"];
                        let mut row: Vec<String> = cols.iter().map(|c| text(v, c)).collect();
                        row.push(flag(v, "current", "*"));
                        row
                    })
                    .collect();
                let header = ["VERSION", "CREATED_AT", "CREATED_BY", "SOURCE", "CURRENT"];
                print_table(&header, &rows);
            });
        }
        SecretCommand::Rollback {
            path,
            version,
            if_version,
        } => {
            let url = format!("{}/rollback", secret_url(&path)?);
            let body = json!({"version": version, "if_version": if_version});
            let resp = Client::new(opts)?.post(&url, &body).await?;
            output(opts, &resp, |r| {
                let (p, now) = (text(r, "path"), text(r, "current_version"));
                outln!("rolled back {p} to the value of version {version}: now version {now}");
            });
        }
    }
    Ok(())
}

#[rustfmt::skip]
const FIELD_ORDER: &[&str] = &[
    "path", "full_path", "namespace", "type", "sensitivity", "current_version", "latest_version",
    "created_at", "created_by", "updated_at", "expires_at", "max_access_count", "access_count",
    "deleted", "deleted_at", "metadata",
];

async fn list(opts: &GlobalOpts, prefix: Option<String>, deleted: bool) -> anyhow::Result<()> {
    let client = Client::new(opts)?;
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("include_deleted", deleted.to_string()),
            ("limit", "1000".into()),
        ];
        if let Some(p) = &prefix {
            query.push(("prefix", p.clone()));
        }
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let page = client.get("/v1/secrets", &query).await?;
        all.extend_from_slice(array(&page, "secrets"));
        match page.get("next").and_then(Value::as_str) {
            Some(n) if after.as_deref() != Some(n) => after = Some(n.to_string()),
            _ => break,
        }
    }
    if opts.json {
        print_json(&json!({"secrets": all, "next": null}));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                text(s, "path"),
                text(s, "type"),
                text(s, "sensitivity"),
                format!("v{}", text(s, "current_version")),
                flag(s, "deleted", "deleted"),
            ]
        })
        .collect();
    if rows.is_empty() {
        eprintln!("no secrets");
    } else {
        print_table(
            &["PATH", "TYPE", "SENSITIVITY", "VERSION", "DELETED"],
            &rows,
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_body_has_only_given_fields() {
        let body = PutBody {
            value: "v\"1",
            secret_type: Some("password"),
            sensitivity: None,
            metadata: parse_metadata(Some(r#"{"owner":"ops"}"#)).unwrap(),
            expires_at: None,
            max_access_count: Some(3),
            if_version: Some(0),
        };
        let json: Value = serde_json::from_slice(&secret_json(&body, 3).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"value": "v\"1", "type": "password", "metadata": {"owner": "ops"}, "max_access_count": 3, "if_version": 0})
        );
        assert!(parse_metadata(Some("[1]")).is_err());
        assert!(parse_metadata(Some("{")).is_err());
    }
}
