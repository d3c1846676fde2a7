//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.
//!
//! Signing is what the delivery worker does for every attempt; verification is
//! what a consumer (and our own test receiver) does. Several secrets may be
//! active at once during a rotation grace period: the sender signs with all of
//! them, the receiver accepts any match.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::VerifyError;

type HmacSha256 = Hmac<Sha256>;

/// Name of the header carrying the unique message id (also the idempotency key).
pub const HEADER_ID: &str = "webhook-id";
/// Name of the header carrying the send time in integer Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Name of the header carrying space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Shortest key the specification allows, in bytes.
pub const MIN_SECRET_LEN: usize = 24;
/// Longest key the specification allows, in bytes.
pub const MAX_SECRET_LEN: usize = 64;

const SECRET_PREFIX: &str = "whsec_";
pub(crate) const VERSION: &str = "v1";

/// A webhook signing key, written `whsec_<base64>`.
///
/// The key bytes are zeroized on drop and never appear in `Debug` output.
/// Keys must be 24–64 bytes long, as the specification requires.
#[derive(Clone)]
pub struct Secret {
    key: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Wraps raw key bytes (the daemon passes fresh random bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerifyError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Self {
            key: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Parses `whsec_<base64>`; the `whsec_` prefix is optional.
    pub fn parse(s: &str) -> Result<Self, VerifyError> {
        let s = s.trim();
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| VerifyError::InvalidSecret)?,
        );
        Self::from_bytes(&bytes)
    }

    /// The secret in its shareable `whsec_<base64>` form (show it once, then forget it).
    pub fn to_whsec_string(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(self.key.as_slice()))
    }

    /// An HMAC over `{id}.{timestamp}.{body}`, ready to finalize or verify.
    pub(crate) fn mac(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> HmacSha256 {
        #[allow(clippy::expect_used)]
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for Secret {
    type Err = VerifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Signs one message: returns `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_secs}.{body}">`.
pub fn sign(secret: &Secret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let tag = secret.mac(msg_id, timestamp_secs, body).finalize();
    format!("{VERSION},{}", STANDARD.encode(tag.into_bytes()))
}

/// The `webhook-signature` value: one `v1,…` per secret, separated by spaces.
pub fn signature_header(
    secrets: &[Secret],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// The vector shared by the Standard Webhooks reference libraries.
    pub(crate) const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    pub(crate) const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    pub(crate) const SPEC_TS: i64 = 1614265330;
    pub(crate) const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    pub(crate) const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn spec_test_vector() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(sign(&secret, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    }

    #[test]
    fn prefix_is_optional_and_round_trips() {
        let with = Secret::parse(SPEC_SECRET).unwrap();
        let without: Secret = SPEC_SECRET.trim_start_matches("whsec_").parse().unwrap();
        assert_eq!(with.to_whsec_string(), SPEC_SECRET);
        assert_eq!(without.to_whsec_string(), SPEC_SECRET);
    }

    #[test]
    fn from_bytes_round_trips_through_whsec() {
        let secret = Secret::from_bytes(&[7u8; 32]).unwrap();
        let again = Secret::parse(&secret.to_whsec_string()).unwrap();
        assert_eq!(sign(&secret, "m", 1, b"x"), sign(&again, "m", 1, b"x"));
    }

    #[test]
    fn rejects_bad_secrets() {
        for bad in ["whsec_!!!not base64", "whsec_", "", "whsec_AAAA"] {
            assert_eq!(
                Secret::parse(bad).unwrap_err(),
                VerifyError::InvalidSecret,
                "{bad}"
            );
        }
        assert!(Secret::from_bytes(&[1; MIN_SECRET_LEN - 1]).is_err());
        assert!(Secret::from_bytes(&[1; MIN_SECRET_LEN]).is_ok());
        assert!(Secret::from_bytes(&[1; MAX_SECRET_LEN]).is_ok());
        assert!(Secret::from_bytes(&[1; MAX_SECRET_LEN + 1]).is_err());
    }

    #[test]
    fn debug_hides_key() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Secret(<redacted>)");
        assert!(!shown.contains("MfKQ"));
    }

    #[test]
    fn signature_header_has_one_entry_per_secret() {
        let a = Secret::parse(SPEC_SECRET).unwrap();
        let b = Secret::from_bytes(&[9; 24]).unwrap();
        let header = signature_header(&[a.clone(), b.clone()], SPEC_ID, SPEC_TS, SPEC_BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [SPEC_SIG, sign(&b, SPEC_ID, SPEC_TS, SPEC_BODY).as_str()]
        );
        assert_eq!(signature_header(&[], SPEC_ID, SPEC_TS, SPEC_BODY), "");
    }
}
