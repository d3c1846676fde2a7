//! Secret values on the client side: read from a file or stdin (never argv), kept in
//! zeroizing buffers, and serialised into request bodies that are zeroized too.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Largest value the daemon accepts, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// Serialises a body holding a secret into a buffer that is zeroized when dropped. The
/// buffer is sized up front (JSON escaping grows a string at most sixfold) so growing it
/// leaves no stray copies behind.
pub fn secret_json<T: Serialize>(
    body: &T,
    value_bytes: usize,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(value_bytes * 6 + 4096));
    serde_json::to_writer(&mut *buf, body)?;
    Ok(buf)
}

/// Removes exactly one trailing `\n` or `\r\n`.
pub fn strip_one_newline(s: &mut String) {
    if s.ends_with("\r\n") {
        s.truncate(s.len() - 2);
    } else if s.ends_with('\n') {
        s.truncate(s.len() - 1);
    }
}

/// Turns bytes into UTF-8 text, scrubbing them when they are not.
fn into_text(bytes: Vec<u8>, what: &str) -> anyhow::Result<Zeroizing<String>> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            e.into_bytes().zeroize();
            bail!("{what} is not UTF-8 text (base64-encode binary values)")
        }
    }
}

/// Reads a whole file as text into a zeroizing buffer.
pub fn read_file(file: &Path) -> anyhow::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(file)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", file.display()))?;
    into_text(std::mem::take(&mut *bytes), &file.display().to_string())
}

/// Reads a secret value from a file (byte for byte) or stdin (one trailing newline
/// stripped); refuses empty and oversized values.
pub fn read_value(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let value = match file {
        Some(f) => read_file(f)?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "type the value, then Enter and Ctrl-D (it is echoed: prefer a pipe or --file)"
                );
            }
            let mut bytes = Zeroizing::new(Vec::new());
            stdin
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            let mut value = into_text(std::mem::take(&mut *bytes), "the value")?;
            strip_one_newline(&mut value);
            value
        }
    };
    if value.is_empty() {
        bail!("the value is empty: nothing stored (pipe it on stdin or use --file)");
    }
    if value.len() > MAX_VALUE_BYTES {
        bail!("the value is larger than {MAX_VALUE_BYTES} bytes");
    }
    Ok(value)
}

/// A value handed out by a lease (`POST /v1/leases/{id}/secret`), in zeroizing buffers.
pub enum Revealed {
    /// The value of a single secret.
    Value(Zeroizing<String>),
    /// The (allowed) entries of an env_bundle, sorted by key.
    Entries(Vec<(String, Zeroizing<String>)>),
}

#[derive(Deserialize)]
struct RevealBody {
    value: Option<String>,
    entries: Option<BTreeMap<String, String>>,
}

impl Revealed {
    /// Reads the daemon's answer; every string is moved (not copied) into a zeroizing buffer.
    pub fn parse(body: &[u8]) -> anyhow::Result<Revealed> {
        let parsed: RevealBody = serde_json::from_slice(body)
            .map_err(|_| anyhow::anyhow!("unexpected answer from the daemon: no value"))?;
        match (parsed.value, parsed.entries) {
            (Some(v), _) => Ok(Revealed::Value(Zeroizing::new(v))),
            (None, Some(entries)) => Ok(Revealed::Entries(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v)))
                    .collect(),
            )),
            (None, None) => bail!("unexpected answer from the daemon: no value"),
        }
    }

    /// Prints the value alone on stdout, followed by one newline (the mirror of
    /// `secret put`, which strips one); a bundle as `KEY=VALUE` lines, quoted for `.env`.
    pub fn print(&self) {
        match self {
            Revealed::Value(v) => super::write_stdout(format_args!("{}\n", v.as_str())),
            Revealed::Entries(entries) => {
                for (k, v) in entries {
                    let quoted = dotenv_quote(v);
                    super::write_stdout(format_args!("{k}={}\n", quoted.as_str()));
                }
            }
        }
    }
}

/// A value as written in a `.env` file: bare when it is made of safe characters only,
/// otherwise double-quoted with `\ " $` and line breaks and tabs escaped, so that
/// `latchkey import .env` (and docker compose, python-dotenv) read it back unchanged.
pub fn dotenv_quote(value: &str) -> Zeroizing<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:@%+,=-".contains(c);
    if value.chars().all(safe) {
        return Zeroizing::new(value.to_string());
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 2 + 2));
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_trailing_newline() {
        for (input, want) in [
            ("sk-1\n", "sk-1"),
            ("sk-1\r\n", "sk-1"),
            ("sk-1\n\n", "sk-1\n"),
            ("sk-1", "sk-1"),
            ("a\nb\n", "a\nb"),
            ("\n", ""),
            ("x\r", "x\r"),
        ] {
            let mut s = input.to_string();
            strip_one_newline(&mut s);
            assert_eq!(s, want, "{input:?}");
        }
    }

    #[test]
    fn files_are_read_as_is_and_checked() {
        let dir = std::env::temp_dir().join(format!("latchkey-cli-value-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("v");
        std::fs::write(&f, "line\n").unwrap();
        assert_eq!(read_value(Some(&f)).unwrap().as_str(), "line\n");
        std::fs::write(&f, "").unwrap();
        assert!(read_value(Some(&f)).is_err());
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_value(Some(&f)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotenv_quoting_round_trips() {
        for (value, want) in [
            ("sk-abc_1.2", "sk-abc_1.2"),
            ("", ""),
            (
                "postgres://u:p@h/db?x=1#frag",
                "\"postgres://u:p@h/db?x=1#frag\"",
            ),
            ("a b", "\"a b\""),
            ("k=v,w", "k=v,w"),
            ("line one\nline two", "\"line one\\nline two\""),
            ("q\"$HOME\\", "\"q\\\"\\$HOME\\\\\""),
        ] {
            assert_eq!(dotenv_quote(value).as_str(), want, "{value:?}");
            let parsed =
                crate::dotenv::parse(&format!("K={}\n", dotenv_quote(value).as_str())).unwrap();
            assert_eq!(parsed[0].value.as_str(), value, "{value:?} round-trips");
        }
    }

    #[test]
    fn revealed_values_parse() {
        let v = Revealed::parse(br#"{"value":"x","entries":null,"lease":{}}"#).unwrap();
        assert!(matches!(v, Revealed::Value(ref s) if s.as_str() == "x"));
        let e =
            Revealed::parse(br#"{"value":null,"entries":{"B":"2","A":"1"},"lease":{}}"#).unwrap();
        let Revealed::Entries(e) = e else {
            panic!("entries")
        };
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["A", "B"]);
        assert!(Revealed::parse(br#"{"lease":{}}"#).is_err());
    }
}
