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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::Config;

    #[test]
    fn environment_and_validation() {
        let env = |k: &str| match k {
            "LATCHKEY_METRICS_ENABLED" => Some("true".to_string()),
            "LATCHKEY_METRICS_LISTEN" => Some("127.0.0.1:9464".to_string()),
            "LATCHKEY_METRICS_BEARER_TOKEN" => Some("t0ken".to_string()),
            _ => None,
        };
        let cfg = Config::load_with_env(None, env).unwrap();
        assert!(cfg.metrics.enabled);
        assert_eq!(cfg.metrics.listen, "127.0.0.1:9464");
        assert_eq!(cfg.metrics.bearer_token.0, "t0ken");
        assert!(!format!("{:?}", cfg.metrics).contains("t0ken"));
        let env = |k: &str| (k == "LATCHKEY_METRICS_LISTEN").then(|| "nowhere".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("set by LATCHKEY_METRICS_LISTEN"), "{msg}");
        let env = |k: &str| (k == "LATCHKEY_METRICS_LISTEN").then(|| "127.0.0.1:8200".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("must differ from listen"), "{msg}");
    }
}
