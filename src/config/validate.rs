//! Validation of a loaded configuration: ranges, formats, names, globs and schedules.

use std::net::SocketAddr;

use super::{Config, ConfigError};

impl Config {
    /// Checks ranges and formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "listen = {:?} is not an address such as 127.0.0.1:8200",
                self.listen
            ));
        }
        if !self.metrics.listen.is_empty() {
            match self.metrics.listen.parse::<SocketAddr>() {
                Err(_) => {
                    return bad(format!(
                        "metrics.listen = {:?} is not an address such as 127.0.0.1:9464",
                        self.metrics.listen
                    ));
                }
                Ok(a) if a.port() != 0 && self.listen.parse::<SocketAddr>().ok() == Some(a) => {
                    return bad("metrics.listen must differ from listen (leave it empty to serve /metrics on the API listener)".into());
                }
                Ok(_) => {}
            }
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
        if !(60..=30 * 86400).contains(&self.console.session_ttl_seconds) {
            return bad("console.session_ttl_seconds must be between 60 and 2592000".into());
        }
        let url = &self.console.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad(format!(
                "console.public_url = {url:?}: expected an http:// or https:// address"
            ));
        }
        if !(1..=4096).contains(&self.store.max_batch) {
            return bad("store.max_batch must be between 1 and 4096".into());
        }
        if self.store.backend == super::StoreBackend::Postgres && self.store.url.0.trim().is_empty()
        {
            return bad(
                "store.backend = \"postgres\" needs store.url (postgres://user:pass@host/db)"
                    .into(),
            );
        }
        if self.store.backend == super::StoreBackend::Redb && !self.store.url.0.is_empty() {
            return bad(
                "store.url is set but store.backend is \"redb\"; set store.backend = \"postgres\""
                    .into(),
            );
        }
        if !(1..=1024).contains(&self.store.pool_size) {
            return bad("store.pool_size must be between 1 and 1024".into());
        }
        if !(1..=3600).contains(&self.store.statement_timeout_seconds) {
            return bad("store.statement_timeout_seconds must be between 1 and 3600".into());
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
