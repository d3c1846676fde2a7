//! `latchkey import .env FILE`: loads a `.env` file, either as one secret per key under a
//! namespace or as a single `env_bundle` secret. The whole file is parsed and every path
//! checked before the first write; values are never printed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use reqwest::Method;
use serde::Serialize;
use zeroize::Zeroizing;

use super::client::{Client, RESERVED, secret_url};
use super::value::{MAX_VALUE_BYTES, read_file, secret_json};
use super::{GlobalOpts, print_json};
use crate::dotenv::Entry;

/// Import commands.
#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// Import a .env file: each KEY becomes the secret NS/KEY, or with --bundle NAME the whole
    /// file becomes one env_bundle secret at NS/NAME. Nothing is written if any line is bad.
    #[command(name = ".env", visible_alias = "env")]
    Dotenv {
        /// The .env file.
        file: PathBuf,
        /// Path prefix to import under (agents: relative to their namespace).
        #[arg(long, value_name = "NS")]
        namespace: String,
        /// Store the file as one env_bundle secret with this name.
        #[arg(long, value_name = "NAME")]
        bundle: Option<String>,
        /// Type of each secret (api_key by default); not with --bundle.
        #[arg(long = "type", value_name = "TYPE", conflicts_with = "bundle")]
        secret_type: Option<String>,
        /// standard (default), sensitive or critical.
        #[arg(long)]
        sensitivity: Option<String>,
        /// Show what would be written, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One planned PUT: the path and its JSON body (zeroized when dropped).
pub(crate) struct Write {
    pub path: String,
    pub body: Zeroizing<Vec<u8>>,
    /// The entry names it holds (for a bundle) or the key (otherwise).
    pub keys: Vec<String>,
}

#[derive(Serialize)]
struct ValueBody<'a> {
    value: &'a str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    secret_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<&'a str>,
}

#[derive(Serialize)]
struct BundleBody<'a> {
    #[serde(rename = "type")]
    secret_type: &'static str,
    entries: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<&'a str>,
}

/// Checks a path the way the daemon will (the part the CLI can see: an agent's namespace
/// prefix is added by the daemon).
fn check_path(path: &str) -> anyhow::Result<()> {
    let rel = path.strip_prefix('/').unwrap_or(path);
    crate::paths::validate(rel).map_err(|e| anyhow!("invalid_path: {e}"))?;
    let last = rel.rsplit('/').next().unwrap_or(rel);
    if RESERVED.contains(&last) {
        bail!("invalid_path: {path}: the last segment may not be one of {RESERVED:?}");
    }
    Ok(())
}

/// Turns parsed entries into the PUTs to make, refusing the whole import on the first
/// path or size that the daemon would refuse.
pub(crate) fn plan(
    namespace: &str,
    bundle: Option<&str>,
    secret_type: Option<&str>,
    sensitivity: Option<&str>,
    entries: &[Entry],
) -> anyhow::Result<Vec<Write>> {
    let ns = namespace.trim_end_matches('/');
    if ns.is_empty() || ns == "/" {
        bail!("--namespace is empty");
    }
    if entries.is_empty() {
        bail!("the file holds no KEY=VALUE lines: nothing to import");
    }
    for e in entries {
        if bundle.is_none() && e.value.is_empty() {
            bail!(
                "line {}: {}: the value is empty (a secret needs a value; with --bundle, empty variables are kept)",
                e.line,
                e.key
            );
        }
        if e.value.len() > MAX_VALUE_BYTES {
            bail!(
                "line {}: {}: the value is larger than {MAX_VALUE_BYTES} bytes",
                e.line,
                e.key
            );
        }
    }
    if let Some(name) = bundle {
        let path = format!("{ns}/{name}");
        check_path(&path)?;
        if let Some(e) = entries.iter().find(|e| e.key.len() > 128) {
            bail!("line {}: entry name is longer than 128 bytes", e.line);
        }
        let total: usize = entries.iter().map(|e| e.value.len()).sum();
        let body = BundleBody {
            secret_type: "env_bundle",
            entries: entries
                .iter()
                .map(|e| (e.key.as_str(), e.value.as_str()))
                .collect(),
            sensitivity,
        };
        return Ok(vec![Write {
            path,
            body: secret_json(&body, total)?,
            keys: entries.iter().map(|e| e.key.clone()).collect(),
        }]);
    }
    let mut writes = Vec::with_capacity(entries.len());
    for e in entries {
        let path = format!("{ns}/{}", e.key);
        check_path(&path).map_err(|err| anyhow!("line {}: {}: {err}", e.line, e.key))?;
        let body = ValueBody {
            value: &e.value,
            secret_type,
            sensitivity,
        };
        writes.push(Write {
            path,
            body: secret_json(&body, e.value.len())?,
            keys: vec![e.key.clone()],
        });
    }
    Ok(writes)
}

/// Runs an import command.
pub async fn run(opts: &GlobalOpts, cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Dotenv {
        file,
        namespace,
        bundle,
        secret_type,
        sensitivity,
        dry_run,
    } = cmd;
    let text = read_file(&file)?;
    let entries = crate::dotenv::parse(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    drop(text);
    let writes = plan(
        &namespace,
        bundle.as_deref(),
        secret_type.as_deref(),
        sensitivity.as_deref(),
        &entries,
    )
    .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    drop(entries);
    let ns = namespace.trim_end_matches('/');
    if dry_run {
        outln!(
            "would import {} secret(s) into {ns} (dry run, nothing written):",
            writes.len()
        );
        for w in &writes {
            match &bundle {
                Some(_) => outln!("  {} (env_bundle: {})", w.path, w.keys.join(", ")),
                None => outln!("  {}", w.path),
            }
        }
        return Ok(());
    }
    let client = Client::new(opts)?;
    // Check every URL before the first write, too.
    let urls = writes
        .iter()
        .map(|w| secret_url(&w.path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut results = Vec::with_capacity(writes.len());
    for (i, (w, url)) in writes.iter().zip(&urls).enumerate() {
        let resp = client
            .request(Method::PUT, url, &[], Some(w.body.to_vec()))
            .await
            .map_err(|e| {
                anyhow!(
                    "{}: {e} ({i} of {} secret(s) were imported before this failure)",
                    w.path,
                    writes.len()
                )
            })?;
        results.push(resp);
    }
    if opts.json {
        print_json(&serde_json::Value::Array(results));
    } else if bundle.is_some() {
        let n = writes.first().map_or(0, |w| w.keys.len());
        outln!(
            "imported {} secret(s) into {ns} (one env_bundle with {n} entries)",
            writes.len()
        );
    } else {
        outln!("imported {} secret(s) into {ns}", writes.len());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(w: &Write) -> Value {
        serde_json::from_slice(&w.body).unwrap()
    }

    #[test]
    fn one_secret_per_key() {
        let entries = crate::dotenv::parse("A=1\nexport B_2='two words'\n").unwrap();
        let w = plan("prod/app/", None, Some("password"), None, &entries).unwrap();
        assert_eq!(
            w.iter().map(|w| w.path.as_str()).collect::<Vec<_>>(),
            ["prod/app/A", "prod/app/B_2"]
        );
        assert_eq!(body(&w[0]), json!({"value": "1", "type": "password"}));
        assert_eq!(
            body(&w[1]),
            json!({"value": "two words", "type": "password"})
        );
        let abs = plan("/production", None, None, None, &entries).unwrap();
        assert_eq!(abs[0].path, "/production/A");
    }

    #[test]
    fn bundle_body() {
        let entries = crate::dotenv::parse("B=2\nA=1\n").unwrap();
        let w = plan("prod", Some("app-env"), None, Some("critical"), &entries).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "prod/app-env");
        assert_eq!(
            body(&w[0]),
            json!({"type": "env_bundle", "entries": {"A": "1", "B": "2"}, "sensitivity": "critical"})
        );
    }

    #[test]
    fn empty_values_are_kept_in_a_bundle_and_refused_as_secrets() {
        let entries = crate::dotenv::parse("A=1\nEMPTY=\n").unwrap();
        let err = plan("prod", None, None, None, &entries)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("EMPTY") && err.contains("empty"),
            "{err}"
        );
        let w = plan("prod", Some("env"), None, None, &entries).unwrap();
        assert_eq!(body(&w[0])["entries"], json!({"A": "1", "EMPTY": ""}));
    }

    #[test]
    fn a_bad_key_refuses_the_whole_import() {
        let entries = crate::dotenv::parse("GOOD=1\nread=s3cr3t\n").unwrap();
        let err = plan("prod", None, None, None, &entries)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 2") && err.contains("read"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let long = format!("{}=1\n", "K".repeat(200));
        let entries = crate::dotenv::parse(&long).unwrap();
        assert!(plan("prod", None, None, None, &entries).is_err());
        assert!(plan("prod", Some("b"), None, None, &entries).is_err());
        let entries = crate::dotenv::parse("A=1\n").unwrap();
        for (ns, bundle) in [
            ("", None),
            ("a//b", None),
            ("a/..", None),
            ("prod", Some("versions")),
            ("prod", Some("x y")),
        ] {
            assert!(
                plan(ns, bundle, None, None, &entries).is_err(),
                "{ns:?} {bundle:?}"
            );
        }
        assert!(plan("prod", None, None, None, &[]).is_err());
    }
}
