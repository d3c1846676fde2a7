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

/// Unix seconds as RFC 3339 (UTC); `None` outside RFC 3339's years.
pub fn rfc3339_of(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix).ok().map(rfc3339)
}

/// Unix seconds as RFC 3339 (UTC) for a JSON document; the integer when out of range.
pub fn unix_rfc3339(t: i64) -> serde_json::Value {
    rfc3339_of(t).map_or_else(|| serde_json::Value::from(t), serde_json::Value::String)
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

/// Unix seconds in memory, RFC 3339 on the wire and in storage: `#[serde(with =
/// "crate::util::unix_time")]` (and `unix_time::option`). Integers written by older versions
/// still read; a time outside RFC 3339's years is written as its integer.
pub mod unix_time {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Unix(i64),
        Text(String),
    }

    fn parse<E: serde::de::Error>(e: Either) -> Result<i64, E> {
        match e {
            Either::Unix(t) => Ok(t),
            Either::Text(s) => {
                time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .map_err(|_| E::custom(format!("{s:?} is not an RFC 3339 time")))
            }
        }
    }

    /// Writes `t` as RFC 3339 (UTC).
    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        match super::rfc3339_of(*t) {
            Some(text) => s.serialize_str(&text),
            None => s.serialize_i64(*t),
        }
    }

    /// Reads RFC 3339 or unix seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        parse(Either::deserialize(d)?)
    }

    /// The same for an optional time.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes `t` as RFC 3339, or null.
        pub fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        /// Reads RFC 3339, unix seconds or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Option::<super::Either>::deserialize(d)?
                .map(super::parse)
                .transpose()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod time_tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct At {
        #[serde(with = "super::unix_time")]
        at: i64,
        #[serde(default, with = "super::unix_time::option")]
        maybe: Option<i64>,
    }

    #[test]
    fn times_are_rfc3339_and_old_integers_still_read() {
        let v = At {
            at: 1_800_000_000,
            maybe: None,
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"at":"2027-01-15T08:00:00Z","maybe":null}"#);
        assert_eq!(serde_json::from_str::<At>(&json).unwrap(), v);
        let old: At = serde_json::from_str(r#"{"at":1800000000,"maybe":5}"#).unwrap();
        assert_eq!((old.at, old.maybe), (1_800_000_000, Some(5)));
        let absent: At = serde_json::from_str(r#"{"at":"2027-01-15T09:00:00+01:00"}"#).unwrap();
        assert_eq!((absent.at, absent.maybe), (1_800_000_000, None));
        assert!(serde_json::from_str::<At>(r#"{"at":"soon"}"#).is_err());
        let far = At {
            at: i64::MAX,
            maybe: None,
        };
        let back: At = serde_json::from_str(&serde_json::to_string(&far).unwrap()).unwrap();
        assert_eq!(back, far, "out of RFC 3339's range: kept as an integer");
    }
}
