//! The metrics settings (`[metrics]`): whether `GET /metrics` is served, on which listener,
//! and the Bearer token a scraper must show.

use serde::{Deserialize, Serialize};

use super::Credential;

/// Prometheus metrics at `GET /metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (Prometheus text format).
    pub enabled: bool,
    /// A separate address for `/metrics` (e.g. `127.0.0.1:9464`); the API listener then does
    /// not serve it. Empty: `/metrics` is on the API listener.
    pub listen: String,
    /// When set, a scrape must send `Authorization: Bearer <token>` (on either listener).
    /// Prefer `LATCHKEY_METRICS_BEARER_TOKEN_FILE`.
    pub bearer_token: Credential,
}
