//! Small shared helpers: time formatting, hashing, random tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a time as RFC 3339 (UTC).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time as RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// SHA-256 of a string, hex-encoded: how credentials are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// A random credential with a recognisable prefix, e.g. `lk_admin_…`.
pub fn random_token(prefix: &str) -> String {
    let bytes = crate::crypto::random_bytes::<32>();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// A new ULID as a lowercase string.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// Makes `path` a file only its owner can read and write (0600), whatever the umask: creates
/// it empty when missing, and tightens the mode of one an older version created.
pub fn make_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Whether to colour output for a stream: never when `NO_COLOR` is set to anything but the
/// empty string (<https://no-color.org>), otherwise only on a terminal.
pub fn color_wanted(no_color: Option<&std::ffi::OsStr>, is_terminal: bool) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && is_terminal
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_color_turns_colour_off() {
        use super::color_wanted;
        use std::ffi::OsStr;
        assert!(color_wanted(None, true));
        assert!(!color_wanted(None, false));
        assert!(!color_wanted(Some(OsStr::new("1")), true));
        assert!(
            color_wanted(Some(OsStr::new("")), true),
            "empty means unset"
        );
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
