//! Secret values on the client side: read from a file or stdin (never argv), kept in
//! zeroizing buffers, and serialised into request bodies that are zeroized too.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
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
}
