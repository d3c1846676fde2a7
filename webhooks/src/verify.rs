//! Verification of received webhooks, and the header set a sender attaches.
//!
//! Used by consumers and by our own test receiver. The HTTP layer stays outside:
//! headers come in as plain `(name, value)` pairs.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;

use crate::sign::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret, VERSION, signature_header,
};

/// Tolerance the specification recommends between the timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a webhook (or a secret) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent (the payload is its lower-case name).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a non-negative integer number of seconds.
    #[error("invalid webhook timestamp")]
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows (possible replay).
    #[error("webhook timestamp too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook timestamp too new")]
    TimestampTooNew,
    /// No `v1` signature in the header matches any of the secrets.
    #[error("no matching signature")]
    NoMatchingSignature,
    /// A secret is not valid base64 or its key length is outside 24–64 bytes.
    #[error("invalid webhook secret")]
    InvalidSecret,
}

/// The three Standard Webhooks header values, independent of any HTTP library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `webhook-id`: the unique message id.
    pub id: String,
    /// `webhook-timestamp`: integer Unix seconds, as sent.
    pub timestamp: String,
    /// `webhook-signature`: space-separated `v1,<base64>` entries.
    pub signature: String,
}

impl WebhookHeaders {
    /// Picks the three headers out of `(name, value)` pairs, matching names
    /// case-insensitively. The first occurrence of a name wins; that is safe
    /// because the signature covers the id and timestamp that are used.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, VerifyError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (mut id, mut timestamp, mut signature) = (None, None, None);
        for (name, value) in pairs {
            let name = name.as_ref();
            let slot = if name.eq_ignore_ascii_case(HEADER_ID) {
                &mut id
            } else if name.eq_ignore_ascii_case(HEADER_TIMESTAMP) {
                &mut timestamp
            } else if name.eq_ignore_ascii_case(HEADER_SIGNATURE) {
                &mut signature
            } else {
                continue;
            };
            slot.get_or_insert_with(|| value.as_ref().to_owned());
        }
        Ok(Self {
            id: id.ok_or(VerifyError::MissingHeader(HEADER_ID))?,
            timestamp: timestamp.ok_or(VerifyError::MissingHeader(HEADER_TIMESTAMP))?,
            signature: signature.ok_or(VerifyError::MissingHeader(HEADER_SIGNATURE))?,
        })
    }

    /// The headers a sender attaches to one delivery, signed with every secret.
    pub fn signed(secrets: &[Secret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> Self {
        Self {
            id: msg_id.to_owned(),
            timestamp: timestamp_secs.to_string(),
            signature: signature_header(secrets, msg_id, timestamp_secs, body),
        }
    }

    /// `(name, value)` pairs in a fixed order, for whatever HTTP client sends them.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_ID, self.id.as_str()),
            (HEADER_TIMESTAMP, self.timestamp.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }
}

/// Verifies a received webhook against the secrets in force.
///
/// `now_secs` is the receiver's clock in Unix seconds (a parameter, so tests
/// need no clock). The timestamp is checked first, so stale or future messages
/// are refused without touching the MAC. Any `v1` entry matching any secret is
/// accepted; entries with other versions or bad base64 are skipped. Tags are
/// compared in constant time.
pub fn verify(
    secrets: &[Secret],
    headers: &WebhookHeaders,
    body: &[u8],
    tolerance: Duration,
    now_secs: i64,
) -> Result<(), VerifyError> {
    let ts = parse_timestamp(&headers.timestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now_secs.saturating_sub(ts) > tolerance {
        return Err(VerifyError::TimestampTooOld);
    }
    if ts.saturating_sub(now_secs) > tolerance {
        return Err(VerifyError::TimestampTooNew);
    }

    let candidates: Vec<Vec<u8>> = headers
        .signature
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, b64)| STANDARD.decode(b64).ok())
        .collect();
    for secret in secrets {
        let mac = secret.mac(&headers.id, ts, body);
        if candidates
            .iter()
            .any(|tag| mac.clone().verify_slice(tag).is_ok())
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

/// Strict integer seconds: ASCII digits only (Rust's parser would also take a `+`).
fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    s.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sign::tests::{SPEC_BODY, SPEC_ID, SPEC_SECRET, SPEC_SIG, SPEC_TS};

    fn spec_secret() -> Secret {
        Secret::parse(SPEC_SECRET).unwrap()
    }

    fn spec_headers() -> WebhookHeaders {
        WebhookHeaders {
            id: SPEC_ID.into(),
            timestamp: SPEC_TS.to_string(),
            signature: SPEC_SIG.into(),
        }
    }

    fn check(secrets: &[Secret], h: &WebhookHeaders, body: &[u8]) -> Result<(), VerifyError> {
        verify(secrets, h, body, DEFAULT_TOLERANCE, SPEC_TS)
    }

    #[test]
    fn accepts_spec_vector() {
        assert_eq!(check(&[spec_secret()], &spec_headers(), SPEC_BODY), Ok(()));
    }

    #[test]
    fn round_trip() {
        let secret = Secret::from_bytes(&[42; 32]).unwrap();
        let h = WebhookHeaders::signed(std::slice::from_ref(&secret), "msg_1", SPEC_TS, b"{}");
        assert_eq!(check(&[secret], &h, b"{}"), Ok(()));
    }

    #[test]
    fn rejects_tampering() {
        let s = [spec_secret()];
        let no = Err(VerifyError::NoMatchingSignature);
        assert_eq!(check(&s, &spec_headers(), br#"{"test": 2432232315}"#), no);
        let mut h = spec_headers();
        h.id.push('x');
        assert_eq!(check(&s, &h, SPEC_BODY), no);
        let mut h = spec_headers();
        h.timestamp = (SPEC_TS + 1).to_string();
        assert_eq!(check(&s, &h, SPEC_BODY), no);
        let mut h = spec_headers();
        h.signature = SPEC_SIG.replace("v1,", "v1a,");
        assert_eq!(check(&s, &h, SPEC_BODY), no);
        h.signature = SPEC_SIG.replace('g', "G");
        assert_eq!(check(&s, &h, SPEC_BODY), no);
        h.signature = "v1,g0hM9SsE".into();
        assert_eq!(check(&s, &h, SPEC_BODY), no);
        h.signature = String::new();
        assert_eq!(check(&s, &h, SPEC_BODY), no);
    }

    #[test]
    fn rejects_wrong_secret_and_no_secrets() {
        let other = Secret::from_bytes(&[1; 24]).unwrap();
        let no = Err(VerifyError::NoMatchingSignature);
        assert_eq!(check(&[other], &spec_headers(), SPEC_BODY), no);
        assert_eq!(check(&[], &spec_headers(), SPEC_BODY), no);
    }

    #[test]
    fn any_signature_matching_any_secret_passes() {
        let old = spec_secret();
        let new = Secret::from_bytes(&[5; 40]).unwrap();
        let both = WebhookHeaders::signed(&[old.clone(), new.clone()], SPEC_ID, SPEC_TS, SPEC_BODY);
        // A receiver that already rotated, or not yet, accepts a sender in grace period.
        assert_eq!(check(std::slice::from_ref(&new), &both, SPEC_BODY), Ok(()));
        assert_eq!(check(std::slice::from_ref(&old), &both, SPEC_BODY), Ok(()));
        // A receiver in grace period accepts a sender signing with one key only.
        assert_eq!(check(&[new, old], &spec_headers(), SPEC_BODY), Ok(()));
        // Unknown versions and junk entries are skipped, not fatal.
        let mut h = spec_headers();
        h.signature = format!("v2,abc junk v1,%%% {SPEC_SIG}");
        assert_eq!(check(&[spec_secret()], &h, SPEC_BODY), Ok(()));
    }

    #[test]
    fn timestamp_window() {
        let (s, h, tol) = ([spec_secret()], spec_headers(), Duration::from_secs(300));
        assert_eq!(verify(&s, &h, SPEC_BODY, tol, SPEC_TS + 300), Ok(()));
        assert_eq!(verify(&s, &h, SPEC_BODY, tol, SPEC_TS - 300), Ok(()));
        let too_old = verify(&s, &h, SPEC_BODY, tol, SPEC_TS + 301);
        assert_eq!(too_old, Err(VerifyError::TimestampTooOld));
        let too_new = verify(&s, &h, SPEC_BODY, tol, SPEC_TS - 301);
        assert_eq!(too_new, Err(VerifyError::TimestampTooNew));
        // Extreme clocks and tolerances must not overflow.
        assert!(verify(&s, &h, SPEC_BODY, tol, i64::MIN).is_err());
        assert!(verify(&s, &h, SPEC_BODY, Duration::MAX, i64::MAX).is_ok());
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "abc",
            "-1614265330",
            "+1614265330",
            " 1614265330",
            "1.5",
            "99999999999999999999",
        ] {
            let mut h = spec_headers();
            h.timestamp = bad.into();
            let got = check(&[spec_secret()], &h, SPEC_BODY);
            assert_eq!(got, Err(VerifyError::InvalidTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let ts = SPEC_TS.to_string();
        let pairs = [
            ("Content-Type", "application/json"),
            ("Webhook-ID", SPEC_ID),
            ("WEBHOOK-TIMESTAMP", ts.as_str()),
            ("webhook-Signature", SPEC_SIG),
        ];
        let h = WebhookHeaders::from_pairs(pairs).unwrap();
        assert_eq!(h, spec_headers());
        assert_eq!(check(&[spec_secret()], &h, SPEC_BODY), Ok(()));
    }

    #[test]
    fn first_occurrence_wins_and_pairs_round_trip() {
        let h = spec_headers();
        let mut pairs: Vec<(String, String)> = h
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.push((HEADER_ID.into(), "msg_other".into()));
        assert_eq!(WebhookHeaders::from_pairs(pairs).unwrap(), h);
    }

    #[test]
    fn missing_headers_are_named() {
        let ts = SPEC_TS.to_string();
        let cases = [
            (
                vec![
                    (HEADER_TIMESTAMP, ts.as_str()),
                    (HEADER_SIGNATURE, SPEC_SIG),
                ],
                HEADER_ID,
            ),
            (
                vec![(HEADER_ID, SPEC_ID), (HEADER_SIGNATURE, SPEC_SIG)],
                HEADER_TIMESTAMP,
            ),
            (
                vec![(HEADER_ID, SPEC_ID), (HEADER_TIMESTAMP, ts.as_str())],
                HEADER_SIGNATURE,
            ),
        ];
        for (pairs, missing) in cases {
            let err = WebhookHeaders::from_pairs(pairs).unwrap_err();
            assert_eq!(err, VerifyError::MissingHeader(missing));
        }
    }
}
