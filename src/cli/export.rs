//! `latchkey export PATH… [--format dotenv|json] [--output FILE]` (admin): the values of
//! secrets, for migration to another store. The daemon audits every exported secret
//! (`secret.exported`).
//!
//! dotenv: one `KEY=VALUE` line per plain secret, KEY being the last path segment upper-cased
//! with every character outside `[A-Z0-9_]` turned into `_`; an env_bundle's entries under
//! their own keys; values quoted as `latchkey import .env` reads them back. Two secrets that
//! would share a key are refused rather than one silently dropped.
//!
//! `--output` creates the file with mode 0600 and refuses an existing one unless `--force`
//! (which replaces it atomically with a new 0600 file). The values pass through zeroizing
//! buffers only.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::GlobalOpts;
use super::client::Client;
use super::run::is_bundle_key;
use super::value::dotenv_quote;

/// Arguments of `export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Full paths of the secrets (at most 1000); one ending in `/` exports everything below it.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// `dotenv` (KEY=VALUE lines) or `json` (the daemon's answer: {"secrets": {PATH: VALUE}}).
    #[arg(long, value_parser = ["dotenv", "json"], default_value = "dotenv")]
    pub format: String,
    /// Write to FILE (created with mode 0600) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE when it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

/// Runs `export`.
pub async fn run(opts: &GlobalOpts, a: ExportArgs) -> anyhow::Result<()> {
    let json = a.format == "json" || opts.json;
    // Refuse what would fail before the daemon audits an export nobody receives.
    if let Some(out) = &a.output {
        check_output(out, a.force)?;
    }
    let client = Client::new(opts)?;
    let body = serde_json::to_vec(&json!({ "paths": a.paths }))?;
    let answer = client.post_secret("/v1/export", body).await?;
    let secrets = parse(&answer)?;
    let count = secrets.len();
    let content = if json {
        let mut buf = Zeroizing::new(Vec::with_capacity(answer.len() + 1));
        buf.extend_from_slice(&answer);
        buf.push(b'\n');
        buf
    } else {
        dotenv(&secrets)?
    };
    drop(secrets);
    drop(answer);
    let to = match &a.output {
        Some(out) => {
            write_file(out, &content, a.force)?;
            out.display().to_string()
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&content)
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
            "stdout".into()
        }
    };
    eprintln!("exported {count} secret(s) to {to}; the export is audited");
    Ok(())
}

/// One exported secret.
enum Exported {
    Value(Zeroizing<String>),
    Entries(Vec<(String, Zeroizing<String>)>),
}

/// Reads `{"secrets": {PATH: "value" | {KEY: VALUE}}}`; every string moved into a
/// zeroizing buffer.
fn parse(body: &[u8]) -> anyhow::Result<BTreeMap<String, Exported>> {
    let bad = || anyhow!("unexpected answer from the daemon: no secrets");
    let parsed: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let Value::Object(mut top) = parsed else {
        return Err(bad());
    };
    let Some(Value::Object(secrets)) = top.remove("secrets") else {
        return Err(bad());
    };
    let mut out = BTreeMap::new();
    for (path, v) in secrets {
        let e = match v {
            Value::String(s) => Exported::Value(Zeroizing::new(s)),
            Value::Object(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let Value::String(s) = v else {
                        bail!("unexpected answer from the daemon: {path}: {k} is not text");
                    };
                    entries.push((k, Zeroizing::new(s)));
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Exported::Entries(entries)
            }
            _ => bail!("unexpected answer from the daemon: {path} has no value"),
        };
        out.insert(path, e);
    }
    Ok(out)
}

/// The dotenv key of a plain secret: its last path segment, upper-cased, every character
/// outside `[A-Z0-9_]` as `_`, and a leading `_` when it would start with a digit.
pub fn dotenv_key(path: &str) -> String {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut key: String = last
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        key.insert(0, '_');
    }
    key
}

/// The dotenv text, in a buffer sized up front so that no partial copy is left behind.
fn dotenv(secrets: &BTreeMap<String, Exported>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut lines: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut from: BTreeMap<String, &str> = BTreeMap::new();
    for (path, e) in secrets {
        let pairs: Vec<(String, &str)> = match e {
            Exported::Value(v) => vec![(dotenv_key(path), v.as_str())],
            Exported::Entries(entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str()))
                .collect(),
        };
        for (key, value) in pairs {
            if matches!(e, Exported::Entries(_)) && !is_bundle_key(&key) {
                bail!("{path}: entry {key:?} is not a valid dotenv key");
            }
            if let Some(other) = from.insert(key.clone(), path) {
                bail!(
                    "{other} and {path} would both be written as {key}: export them separately or use --format json"
                );
            }
            lines.push((key, dotenv_quote(value)));
        }
    }
    let size = lines.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut buf = Zeroizing::new(Vec::with_capacity(size));
    for (k, v) in &lines {
        buf.extend_from_slice(k.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(v.as_bytes());
        buf.push(b'\n');
    }
    Ok(buf)
}

fn check_output(out: &Path, force: bool) -> anyhow::Result<()> {
    if !force && std::fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} exists: nothing exported (add --force to replace it)",
            out.display()
        );
    }
    let dir = parent(out);
    if !dir.is_dir() {
        bail!("{} is not a directory: nothing exported", dir.display());
    }
    Ok(())
}

fn parent(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `content` to a new 0600 file. Without `force` the file must not exist (checked
/// atomically by `O_EXCL`); with it, a temporary 0600 file beside it is renamed over it.
fn write_file(out: &Path, content: &[u8], force: bool) -> anyhow::Result<()> {
    let target = if force {
        let name = out
            .file_name()
            .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
        parent(out).join(format!(".{name}.latchkey-{}.tmp", std::process::id()))
    } else {
        out.to_path_buf()
    };
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .and_then(|mut f| {
            f.write_all(content)?;
            f.sync_all()
        });
    if let Err(e) = written {
        // Leave no partial file; an `AlreadyExists` file is not ours to remove.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&target);
        }
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    if force && let Err(e) = std::fs::rename(&target, out) {
        let _ = std::fs::remove_file(&target);
        return Err(e).with_context(|| format!("cannot replace {}", out.display()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_paths() {
        assert_eq!(dotenv_key("apps/openai"), "OPENAI");
        assert_eq!(dotenv_key("/apps/api-key.v2"), "API_KEY_V2");
        assert_eq!(dotenv_key("x/2fa"), "_2FA");
        assert_eq!(dotenv_key("solo"), "SOLO");
    }

    #[test]
    fn dotenv_lines_and_collisions() {
        let body =
            br#"{"secrets":{"apps/openai":"sk-1","apps/stripe":{"STRIPE_KEY":"a b","A":"x"}}}"#;
        let s = parse(body).unwrap();
        let text = dotenv(&s).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text),
            "OPENAI=sk-1\nA=x\nSTRIPE_KEY=\"a b\"\n"
        );
        let parsed = crate::dotenv::parse(&String::from_utf8_lossy(&text)).unwrap();
        assert_eq!(parsed[2].value.as_str(), "a b");
        let clash = parse(br#"{"secrets":{"a/key":"1","b/key":"2"}}"#).unwrap();
        let e = dotenv(&clash).unwrap_err().to_string();
        assert!(e.contains("a/key and b/key") && e.contains("KEY"), "{e}");
        let clash = parse(br#"{"secrets":{"a/openai":"1","b":{"OPENAI":"2"}}}"#).unwrap();
        assert!(dotenv(&clash).is_err());
        assert!(parse(br#"{"secrets":{"a":1}}"#).is_err());
        assert!(parse(br#"{"nope":{}}"#).is_err());
    }

    #[test]
    fn files_are_0600_and_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out.env");
        check_output(&f, false).unwrap();
        write_file(&f, b"A=1\n", false).unwrap();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(check_output(&f, false).is_err());
        assert!(write_file(&f, b"A=2\n", false).is_err());
        assert_eq!(std::fs::read(&f).unwrap(), b"A=1\n", "untouched");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&f, b"A=3\n", true).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"A=3\n");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a replaced file is a new 0600 file");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        assert!(check_output(&dir.path().join("no/such/dir/f"), true).is_err());
    }
}
