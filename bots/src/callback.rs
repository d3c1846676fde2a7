//! Callback data carried by Approve / Deny buttons: `a:<approval_id>:<y|n>:<mac>`.
//!
//! Any client can send arbitrary callback data, and Telegram allows at most 64
//! bytes of it, so a button carries only the approval id and the decision plus
//! a truncated HMAC-SHA256 tag (8 bytes, base64url without padding). The MAC
//! stops forged or altered buttons from naming other approvals; it does not
//! say who tapped. The daemon must still check the tapping user against the
//! approver list on every tap, and re-delivered taps are harmless because a
//! vote counts once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Decision;

/// Telegram's limit on callback data, in bytes.
pub const MAX_LEN: usize = 64;
/// Shortest MAC key accepted, in bytes; shorter keys are a configuration mistake.
pub const MIN_KEY_LEN: usize = 16;
/// Longest approval id that still fits: 64 − `a:` − `:y:` − 11 tag characters.
pub const MAX_ID_LEN: usize = MAX_LEN - 2 - 3 - TAG_B64_LEN;

const PREFIX: &str = "a";
const TAG_LEN: usize = 8;
const TAG_B64_LEN: usize = 11;

/// Why callback data was refused (or could not be made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Longer than Telegram's 64 bytes.
    #[error("callback data longer than {MAX_LEN} bytes")]
    TooLong,
    /// Not `a:<id>:<y|n>:<tag>`.
    #[error("malformed callback data")]
    Malformed,
    /// The approval id is empty, too long or has characters other than `[A-Za-z0-9_-]`.
    #[error("invalid approval id in callback data")]
    InvalidId,
    /// The tag does not match: forged or altered data, or a different key.
    #[error("callback data failed authentication")]
    BadMac,
    /// The MAC key is shorter than [`MIN_KEY_LEN`].
    #[error("callback key too short")]
    KeyTooShort,
}

/// Builds the callback data for one button of one approval.
pub fn encode(key: &[u8], approval_id: &str, decision: Decision) -> Result<String, CallbackError> {
    check_id(approval_id)?;
    let d = decision_char(decision);
    let tag = mac(key, approval_id, d)?.finalize().into_bytes();
    let tag = URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]);
    let data = format!("{PREFIX}:{approval_id}:{d}:{tag}");
    if data.len() > MAX_LEN {
        return Err(CallbackError::TooLong);
    }
    Ok(data)
}

/// Checks callback data and returns the approval id and decision it carries.
pub fn decode(key: &[u8], data: &str) -> Result<(String, Decision), CallbackError> {
    if data.len() > MAX_LEN {
        return Err(CallbackError::TooLong);
    }
    let mut parts = data.split(':');
    let (Some(PREFIX), Some(id), Some(d), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CallbackError::Malformed);
    };
    check_id(id)?;
    let decision = match d {
        "y" => Decision::Approve,
        "n" => Decision::Deny,
        _ => return Err(CallbackError::Malformed),
    };
    // Canonical encoding only: base64 rejects non-zero trailing bits, so an
    // 11-character tag maps to exactly one 8-byte value.
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| CallbackError::BadMac)?;
    if tag.len() != TAG_LEN {
        return Err(CallbackError::BadMac);
    }
    mac(key, id, decision_char(decision))?
        .verify_truncated_left(&tag)
        .map_err(|_| CallbackError::BadMac)?;
    Ok((id.to_owned(), decision))
}

fn decision_char(decision: Decision) -> char {
    match decision {
        Decision::Approve => 'y',
        Decision::Deny => 'n',
    }
}

fn check_id(id: &str) -> Result<(), CallbackError> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(ok_char) {
        return Err(CallbackError::InvalidId);
    }
    Ok(())
}

/// HMAC-SHA256 over `"{approval_id}|{d}"`.
fn mac(key: &[u8], approval_id: &str, d: char) -> Result<Hmac<Sha256>, CallbackError> {
    if key.len() < MIN_KEY_LEN {
        return Err(CallbackError::KeyTooShort);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| CallbackError::KeyTooShort)?;
    mac.update(approval_id.as_bytes());
    mac.update(b"|");
    mac.update(d.encode_utf8(&mut [0; 4]).as_bytes());
    Ok(mac)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const ULID: &str = "01HZX3K4M5N6P7Q8R9S0T1V2W3";

    #[test]
    fn round_trip_fits_telegram_limit() {
        assert_eq!(ULID.len(), 26);
        for decision in [Decision::Approve, Decision::Deny] {
            let data = encode(KEY, ULID, decision).unwrap();
            assert!(data.len() <= MAX_LEN, "{} bytes", data.len());
            assert_eq!(decode(KEY, &data).unwrap(), (ULID.to_owned(), decision));
        }
        let data = encode(KEY, ULID, Decision::Approve).unwrap();
        assert!(data.starts_with(&format!("a:{ULID}:y:")));
        assert_eq!(data.len(), 2 + 26 + 3 + TAG_B64_LEN);
    }

    #[test]
    fn longest_id_fits_exactly() {
        let id = "A".repeat(MAX_ID_LEN);
        let data = encode(KEY, &id, Decision::Deny).unwrap();
        assert_eq!(data.len(), MAX_LEN);
        assert_eq!(decode(KEY, &data).unwrap().0, id);
        let too_long = "A".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            encode(KEY, &too_long, Decision::Deny),
            Err(CallbackError::InvalidId)
        );
    }

    #[test]
    fn flipped_decision_is_rejected() {
        let yes = encode(KEY, ULID, Decision::Approve).unwrap();
        let forged = yes.replacen(":y:", ":n:", 1);
        assert_eq!(decode(KEY, &forged), Err(CallbackError::BadMac));
        let no = encode(KEY, ULID, Decision::Deny).unwrap();
        let forged = no.replacen(":n:", ":y:", 1);
        assert_eq!(decode(KEY, &forged), Err(CallbackError::BadMac));
    }

    #[test]
    fn altered_id_or_tag_is_rejected() {
        let data = encode(KEY, ULID, Decision::Approve).unwrap();
        let other_id = data.replacen(ULID, "01HZX3K4M5N6P7Q8R9S0T1V2W4", 1);
        assert_eq!(decode(KEY, &other_id), Err(CallbackError::BadMac));
        // Change each tag character in turn.
        let tag_start = data.len() - TAG_B64_LEN;
        for i in tag_start..data.len() {
            let mut bytes = data.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                decode(KEY, &altered),
                Err(CallbackError::BadMac),
                "{altered}"
            );
        }
        let short_tag = &data[..data.len() - 1];
        assert_eq!(decode(KEY, short_tag), Err(CallbackError::BadMac));
        let empty_tag = &data[..tag_start];
        assert_eq!(decode(KEY, empty_tag), Err(CallbackError::BadMac));
    }

    #[test]
    fn other_key_is_rejected() {
        let data = encode(KEY, ULID, Decision::Approve).unwrap();
        let other = b"fedcba9876543210fedcba9876543210";
        assert_eq!(decode(other, &data), Err(CallbackError::BadMac));
    }

    #[test]
    fn malformed_data_is_rejected() {
        let data = encode(KEY, ULID, Decision::Approve).unwrap();
        let tag = &data[data.len() - TAG_B64_LEN..];
        let cases = [
            String::new(),
            "a".into(),
            format!("b:{ULID}:y:{tag}"),
            format!("a:{ULID}:yes:{tag}"),
            format!("a:{ULID}:Y:{tag}"),
            format!("a:{ULID}:y:{tag}:extra"),
            format!("a:{ULID}:y"),
        ];
        for case in cases {
            assert_eq!(
                decode(KEY, &case),
                Err(CallbackError::Malformed),
                "{case:?}"
            );
        }
        for bad_id in ["", "01HZX 3K4", "id/../x", "ü"] {
            let case = format!("a:{bad_id}:y:{tag}");
            assert_eq!(
                decode(KEY, &case),
                Err(CallbackError::InvalidId),
                "{case:?}"
            );
            assert_eq!(
                encode(KEY, bad_id, Decision::Approve),
                Err(CallbackError::InvalidId)
            );
        }
        let long = format!("{data}{}", "A".repeat(MAX_LEN));
        assert_eq!(decode(KEY, &long), Err(CallbackError::TooLong));
    }

    #[test]
    fn short_keys_are_refused() {
        let short = &KEY[..MIN_KEY_LEN - 1];
        assert_eq!(
            encode(short, ULID, Decision::Approve),
            Err(CallbackError::KeyTooShort)
        );
        let data = encode(KEY, ULID, Decision::Approve).unwrap();
        assert_eq!(decode(&[], &data), Err(CallbackError::KeyTooShort));
    }
}
