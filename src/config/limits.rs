//! Limits and tuning: the HTTP server, scoped tokens and the store.

use serde::{Deserialize, Serialize};

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// A request taking longer than this is answered 408.
    pub request_timeout_seconds: u64,
    /// Take the client address from the first `X-Forwarded-For` entry (behind a proxy only).
    pub trust_forwarded_for: bool,
}

/// Scoped token settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// TTL of a scoped token when the request names none.
    pub default_ttl_seconds: u64,
    /// Longest TTL a scoped token may have.
    pub max_ttl_seconds: u64,
}

/// Storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Most writes grouped into one durable commit.
    pub max_batch: usize,
    /// `redb` (one file in the data directory; the default) or `postgres` (any number of
    /// daemons on one database).
    pub backend: StoreBackend,
    /// The PostgreSQL URL (`postgres://user:pass@host:5432/db`); a credential: never logged
    /// (`LATCHKEY_STORE_URL`, or `LATCHKEY_STORE_URL_FILE` for a file holding it).
    pub url: super::Credential,
    /// PostgreSQL connections per daemon.
    pub pool_size: usize,
    /// A PostgreSQL statement taking longer than this fails (503 `unavailable`).
    pub statement_timeout_seconds: u64,
}

/// Which store holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded redb file.
    #[default]
    Redb,
    /// A PostgreSQL database shared by every daemon.
    Postgres,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_seconds: 90,
            trust_forwarded_for: false,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            default_ttl_seconds: 600,
            max_ttl_seconds: 900,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_batch: 256,
            backend: StoreBackend::Redb,
            url: super::Credential(String::new()),
            pool_size: 16,
            statement_timeout_seconds: 5,
        }
    }
}
