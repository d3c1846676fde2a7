//! Typed, layered configuration: built-in defaults, then `config.toml` (unknown fields are
//! errors, reported with file, line and field), then `LATCHKEY_*` environment variables
//! (one per field: `http.max_body_bytes` is `LATCHKEY_HTTP_MAX_BODY_BYTES`), then command-line
//! flags. Validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Directory of proxy service files (`NAME.toml`); default: `services/` next to the
    /// config file, none without one.
    pub services_dir: String,
}

/// One scheduled job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
    pub schedule: String,
    /// Run it at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// audit_retention: drop events older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// digest: the period summarised, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_hours: Option<u32>,
}

fn yes() -> bool {
    true
}

fn job(schedule: &str, enabled: bool) -> JobConfig {
    JobConfig {
        schedule: schedule.into(),
        enabled,
        retention_days: None,
        period_hours: None,
    }
}

/// The daemon's housekeeping jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Mark secrets past `expires_at` expired (audited) and revoke their leases.
    pub expire_secrets: JobConfig,
    /// Drop audit events older than `retention_days`, keeping a signed checkpoint.
    pub audit_retention: JobConfig,
    /// Remind approvers of secrets whose metadata `rotate_every` has passed.
    pub rotation_reminders: JobConfig,
    /// Post a digest (pending approvals, denials, most-read secrets) to the chats.
    pub digest: JobConfig,
    /// Re-wrap every data key under the newest key-encryption key.
    pub rewrap: JobConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            expire_secrets: job("0 * * * * *", true),
            audit_retention: JobConfig {
                retention_days: Some(365),
                ..job("0 0 3 * * *", true)
            },
            rotation_reminders: job("0 0 9 * * *", true),
            digest: JobConfig {
                period_hours: Some(168),
                ..job("0 0 8 * * Mon", true)
            },
            rewrap: job("0 0 4 * * Sun", true),
        }
    }
}

impl JobsConfig {
    /// Every job by name.
    pub fn all(&self) -> [(&'static str, &JobConfig); 5] {
        [
            ("expire_secrets", &self.expire_secrets),
            ("audit_retention", &self.audit_retention),
            ("rotation_reminders", &self.rotation_reminders),
            ("digest", &self.digest),
            ("rewrap", &self.rewrap),
        ]
    }
}

/// A configuration string that is a credential: `Debug` never prints it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Credential(pub String);

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

/// Telegram and Discord approval channels.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Telegram.
    pub telegram: TelegramSettings,
    /// Discord.
    pub discord: DiscordSettings,
}

/// Where cards for matching paths go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramRoute {
    /// Full-path glob, e.g. `production/**` (`**` for everything).
    pub pattern: String,
    /// The chat (group, channel or user) id.
    pub chat_id: i64,
}

/// Telegram settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSettings {
    /// Turn the channel on.
    pub enabled: bool,
    /// Bot token from BotFather (`LATCHKEY_CHANNELS_TELEGRAM_TOKEN` or `…_TOKEN_FILE`).
    pub token: Credential,
    /// Bot API base URL (tests point it at a fake server).
    pub api_url: String,
    /// `polling` (getUpdates; one daemon per bot) or `webhook` (several daemons may share it).
    pub mode: String,
    /// Webhook mode: the public URL of this daemon's `/bots/telegram/webhook`.
    pub webhook_url: String,
    /// Webhook mode: the secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Credential,
    /// Which chats get which cards.
    pub routes: Vec<TelegramRoute>,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        TelegramSettings {
            enabled: false,
            token: Credential::default(),
            api_url: "https://api.telegram.org".into(),
            mode: "polling".into(),
            webhook_url: String::new(),
            webhook_secret: Credential::default(),
            routes: Vec::new(),
        }
    }
}

/// Where cards for matching paths go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordRoute {
    /// Full-path glob.
    pub pattern: String,
    /// The channel id.
    pub channel_id: u64,
}

/// Discord settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// Turn the channel on.
    pub enabled: bool,
    /// Bot token (`LATCHKEY_CHANNELS_DISCORD_BOT_TOKEN` or `…_FILE`).
    pub bot_token: Credential,
    /// The application id.
    pub application_id: u64,
    /// The application's public key (hex), to verify interactions.
    pub public_key: String,
    /// REST base URL; empty for Discord itself (tests point it at a fake server).
    pub api_url: String,
    /// Which channels get which cards.
    pub routes: Vec<DiscordRoute>,
}

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

/// Lease and approval settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long a pending approval waits before its deadline rule applies.
    pub default_deadline_seconds: u64,
    /// Lease lifetime when the request names none.
    pub default_lease_ttl_seconds: u64,
    /// Longest lease lifetime (grants may lower it).
    pub max_lease_ttl_seconds: u64,
    /// Most uses one lease may carry.
    pub max_lease_uses: u32,
    /// The admin token also counts as an approver for every path (`serve --dev` sets it).
    pub admin_is_approver: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            default_deadline_seconds: 3600,
            default_lease_ttl_seconds: 300,
            max_lease_ttl_seconds: 3600,
            max_lease_uses: 1000,
            admin_is_approver: false,
        }
    }
}

/// One approver: a person who may decide approvals for some paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverConfig {
    /// Unique name, shown on cards and in the audit log.
    pub name: String,
    /// Full-path globs this approver may decide (`production/**`); default: everything.
    #[serde(default = "everything")]
    pub patterns: Vec<String>,
    /// Telegram user id, for taps on Telegram cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_user_id: Option<i64>,
    /// Discord user id, for clicks on Discord cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_user_id: Option<String>,
}

fn everything() -> Vec<String> {
    vec!["**".into()]
}

impl ApproverConfig {
    /// May this approver decide for the full path?
    pub fn may_decide(&self, full_path: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| crate::scope::Glob::parse(p).is_ok_and(|g| g.matches(full_path)))
    }
}

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
            services_dir: String::new(),
        }
    }
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
        StoreConfig { max_batch: 256 }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
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

impl Config {
    /// Loads defaults, the file (if any) and the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, |k| std::env::var(k).ok())
    }

    /// As [`Config::load`], reading variables through `env` (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let base = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                // Parsing the text directly keeps toml's line/column spans in the errors.
                toml::from_str::<Config>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().to_string(),
                })?
            }
            None => Config::default(),
        };
        let mut table =
            toml::Table::try_from(&base).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        apply_env(&mut table, "LATCHKEY", &env)?;
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "listen = {:?} is not an address such as 127.0.0.1:8200",
                self.listen
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad(format!(
                "log_format = {:?}: expected \"text\" or \"json\"",
                self.log_format
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return bad("http.max_body_bytes must be at least 1024".into());
        }
        if self.http.request_timeout_seconds == 0 {
            return bad("http.request_timeout_seconds must be at least 1".into());
        }
        let t = &self.tokens;
        if t.max_ttl_seconds == 0
            || t.default_ttl_seconds == 0
            || t.default_ttl_seconds > t.max_ttl_seconds
        {
            return bad("tokens: need 0 < default_ttl_seconds <= max_ttl_seconds".into());
        }
        if !(1..=4096).contains(&self.store.max_batch) {
            return bad("store.max_batch must be between 1 and 4096".into());
        }
        let a = &self.approvals;
        if a.default_deadline_seconds == 0
            || a.default_lease_ttl_seconds == 0
            || a.default_lease_ttl_seconds > a.max_lease_ttl_seconds
            || a.max_lease_uses == 0
        {
            return bad("approvals: need positive deadline, 0 < default_lease_ttl_seconds <= max_lease_ttl_seconds, max_lease_uses > 0".into());
        }
        let mut names = std::collections::HashSet::new();
        for ap in &self.approvers {
            let name_ok = !ap.name.is_empty()
                && ap.name.len() <= 64
                && ap
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !name_ok || ap.name == "admin" || ap.name == "deadline" {
                return bad(format!(
                    "approvers: {:?} is not a valid approver name (letters, digits, . _ -; not admin or deadline)",
                    ap.name
                ));
            }
            if !names.insert(ap.name.clone()) {
                return bad(format!("approvers: {:?} is listed twice", ap.name));
            }
            for p in &ap.patterns {
                crate::scope::Glob::parse(p)
                    .map_err(|e| ConfigError::Invalid(format!("approver {}: {e}", ap.name)))?;
            }
        }
        let w = &self.webhooks;
        if w.timeout_seconds == 0 || w.retry_for_seconds == 0 || w.max_backoff_seconds == 0 {
            return bad("webhooks: timeout_seconds, retry_for_seconds and max_backoff_seconds must be positive".into());
        }
        let tg = &self.channels.telegram;
        if tg.enabled {
            if tg.token.0.is_empty() {
                return bad("channels.telegram: token is empty (set LATCHKEY_CHANNELS_TELEGRAM_TOKEN or …_TOKEN_FILE)".into());
            }
            match tg.mode.as_str() {
                "polling" => {}
                "webhook" if !tg.webhook_url.is_empty() && !tg.webhook_secret.0.is_empty() => {}
                "webhook" => {
                    return bad(
                        "channels.telegram: webhook mode needs webhook_url and webhook_secret"
                            .into(),
                    );
                }
                m => {
                    return bad(format!(
                        "channels.telegram.mode = {m:?}: expected \"polling\" or \"webhook\""
                    ));
                }
            }
            for r in &tg.routes {
                crate::scope::Glob::parse(&r.pattern)
                    .map_err(|e| ConfigError::Invalid(format!("channels.telegram.routes: {e}")))?;
            }
        }
        let dc = &self.channels.discord;
        if dc.enabled {
            if dc.bot_token.0.is_empty() || dc.application_id == 0 || dc.public_key.len() != 64 {
                return bad("channels.discord: needs bot_token, application_id and the 64-hex-digit public_key".into());
            }
            for r in &dc.routes {
                crate::scope::Glob::parse(&r.pattern)
                    .map_err(|e| ConfigError::Invalid(format!("channels.discord.routes: {e}")))?;
            }
        }
        for (name, j) in self.jobs.all() {
            j.schedule.parse::<cron::Schedule>().map_err(|e| {
                ConfigError::Invalid(format!("jobs.{name}.schedule = {:?}: {e}", j.schedule))
            })?;
        }
        if self.jobs.audit_retention.retention_days == Some(0) {
            return bad("jobs.audit_retention.retention_days must be at least 1".into());
        }
        for p in &self.approval_policies {
            p.validate().map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }
}

/// Overrides each leaf of `table` from `PREFIX_KEY` variables, parsed as the leaf's type.
fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let var = format!("{prefix}_{}", key.to_uppercase());
        if let toml::Value::Table(inner) = value {
            apply_env(inner, &var, env)?;
            continue;
        }
        let from_file = match (&value, env(&format!("{var}_FILE"))) {
            (toml::Value::String(_), Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map(|t| t.trim_end().to_string())
                    .map_err(|e| ConfigError::Env {
                        var: format!("{var}_FILE"),
                        message: format!("cannot read {path}: {e}"),
                    })?,
            ),
            _ => None,
        };
        let Some(raw) = env(&var).or(from_file) else {
            continue;
        };
        let err = |message: String| ConfigError::Env {
            var: var.clone(),
            message,
        };
        *value = match value {
            toml::Value::String(_) => toml::Value::String(raw),
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| err(format!("{raw:?} is not an integer")))?,
            ),
            toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(err(format!("{raw:?} is not true or false"))),
            }),
            _ => {
                let parsed: toml::Table =
                    toml::from_str(&format!("v = {raw}")).map_err(|e| err(e.to_string()))?;
                parsed
                    .get("v")
                    .cloned()
                    .ok_or_else(|| err("no value".into()))?
            }
        };
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_file_env_layering() {
        let f = file("listen = \"127.0.0.1:9000\"\n[tokens]\nmax_ttl_seconds = 1200\n");
        let env = |k: &str| match k {
            "LATCHKEY_TOKENS_DEFAULT_TTL_SECONDS" => Some("300".to_string()),
            "LATCHKEY_HTTP_TRUST_FORWARDED_FOR" => Some("true".to_string()),
            _ => None,
        };
        let cfg = Config::load_with_env(Some(f.path()), env).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9000");
        assert_eq!(cfg.tokens.max_ttl_seconds, 1200);
        assert_eq!(cfg.tokens.default_ttl_seconds, 300);
        assert!(cfg.http.trust_forwarded_for);
        assert_eq!(cfg.store.max_batch, 256);
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let f = file("listen = \"127.0.0.1:9000\"\n\n[http]\nmax_body = 5\n");
        let msg = Config::load_with_env(Some(f.path()), |_| None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("max_body"), "{msg}");
    }

    #[test]
    fn bad_values_are_refused() {
        let f = file("listen = 5\n");
        assert!(Config::load_with_env(Some(f.path()), |_| None).is_err());
        let env = |k: &str| (k == "LATCHKEY_HTTP_MAX_BODY_BYTES").then(|| "lots".to_string());
        let msg = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(msg.contains("LATCHKEY_HTTP_MAX_BODY_BYTES"), "{msg}");
        let env = |k: &str| (k == "LATCHKEY_LISTEN").then(|| "nowhere".to_string());
        assert!(Config::load_with_env(None, env).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod example_tests {
    use super::*;

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
