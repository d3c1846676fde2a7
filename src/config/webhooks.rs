//! Audit webhook delivery settings: allowed destinations, timeouts, retries, backoff.

use serde::{Deserialize, Serialize};

/// Audit webhook delivery settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow loopback destinations (127.0.0.0/8, ::1); `serve --dev` turns it on.
    pub allow_loopback: bool,
    /// Allow private, link-local and other non-public destinations.
    pub allow_private: bool,
    /// Timeout of one delivery attempt.
    pub timeout_seconds: u64,
    /// How long an event is retried before the subscription is marked failing.
    pub retry_for_seconds: u64,
    /// Wait before the first retry, in milliseconds (doubling after, with jitter).
    pub min_backoff_ms: u64,
    /// Longest wait between two retries.
    pub max_backoff_seconds: u64,
    /// How long a rotated-out secret keeps signing.
    pub rotation_grace_seconds: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_loopback: false,
            allow_private: false,
            timeout_seconds: 10,
            retry_for_seconds: 24 * 3600,
            min_backoff_ms: 1000,
            max_backoff_seconds: 3600,
            rotation_grace_seconds: 24 * 3600,
        }
    }
}
