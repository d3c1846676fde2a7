//! Typed, layered configuration: built-in defaults, then `config.toml` (unknown fields are
//! errors, reported with file, line and field), then `LATCHKEY_*` environment variables
//! (one per field: `http.max_body_bytes` is `LATCHKEY_HTTP_MAX_BODY_BYTES`), then command-line
//! flags. Validated once at start.

mod approvals;
mod channels;
mod console;
mod jobs;
mod limits;
mod load;
mod mcp;
mod metrics;
mod validate;
mod webhooks;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use approvals::{ApprovalsConfig, ApproverConfig};
pub use channels::{
    ChannelsConfig, Credential, DiscordRoute, DiscordSettings, TelegramRoute, TelegramSettings,
};
pub use console::ConsoleConfig;
pub use jobs::{JobConfig, JobsConfig};
pub use limits::{HttpConfig, StoreBackend, StoreConfig, TokenConfig};
pub use mcp::McpConfig;
pub use metrics::MetricsConfig;
pub use webhooks::WebhooksConfig;

/// Everything the daemon can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Directory holding `latchkey.redb`, `keyring.json` and (when generated) `master.key`.
    pub data_dir: PathBuf,
    /// Log filter, e.g. `info` or `latchkey=debug,tower_http=info`.
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: String,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Scoped token limits.
    pub tokens: TokenConfig,
    /// Storage tuning.
    pub store: StoreConfig,
    /// Leases and approvals.
    pub approvals: ApprovalsConfig,
    /// People who may decide approvals.
    pub approvers: Vec<ApproverConfig>,
    /// Overrides of the approval matrix by path pattern (the API can add more).
    pub approval_policies: Vec<crate::policy::Override>,
    /// Audit webhook delivery.
    pub webhooks: WebhooksConfig,
    /// Chat channels for approval cards.
    pub channels: ChannelsConfig,
    /// Scheduled jobs.
    pub jobs: JobsConfig,
    /// The MCP endpoint `/mcp`.
    pub mcp: McpConfig,
    /// The web console `/ui`.
    pub console: ConsoleConfig,
    /// Prometheus metrics at `/metrics`.
    pub metrics: MetricsConfig,
    /// Directory of proxy service files (`NAME.toml`); default: `services/` next to the
    /// config file, none without one.
    pub services_dir: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8200".into(),
            data_dir: PathBuf::from("latchkey-data"),
            log_level: "info".into(),
            log_format: "text".into(),
            http: HttpConfig::default(),
            tokens: TokenConfig::default(),
            store: StoreConfig::default(),
            approvals: ApprovalsConfig::default(),
            approvers: Vec::new(),
            approval_policies: Vec::new(),
            webhooks: WebhooksConfig::default(),
            channels: ChannelsConfig::default(),
            jobs: JobsConfig::default(),
            mcp: McpConfig::default(),
            console: ConsoleConfig::default(),
            metrics: MetricsConfig::default(),
            services_dir: String::new(),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid (the message names line, column and field).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line and field.
        message: String,
    },
    /// An environment variable holds an unusable value.
    #[error("invalid environment variable {var}: {message}")]
    Env {
        /// Its name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod example_tests {
    use super::*;
    use std::path::Path;

    /// The shipped example must parse and equal the defaults it documents.
    #[test]
    fn example_file_is_valid_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml.example");
        let cfg = Config::load_with_env(Some(&path), |_| None).unwrap();
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&cfg).unwrap(),
            toml::to_string(&defaults).unwrap()
        );
    }
}
