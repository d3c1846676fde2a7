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
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
