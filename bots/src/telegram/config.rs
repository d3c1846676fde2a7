//! The Telegram channel's configuration: checked once, then turned into HTTP clients.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use teloxide::Bot;

use super::MAX_POLL_SECS;
use crate::{ChannelError, callback};

/// Every request but long polling gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(17);
/// Extra time a long poll may take beyond the wait asked of Telegram.
const POLL_MARGIN: Duration = Duration::from_secs(10);
const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// How to reach Telegram and where cards go. `Debug` never shows the token or key.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The bot token from @BotFather (secret: it is part of every request URL).
    pub token: SecretString,
    /// Base URL of the Bot API; `None` means `https://api.telegram.org`.
    /// Tests and self-hosted Bot API servers set it.
    pub api_url: Option<String>,
    /// Chats that [`crate::ApprovalChannel::post`] sends every card to.
    pub chats: Vec<i64>,
    /// Key for the MAC in button callback data, at least
    /// [`callback::MIN_KEY_LEN`] bytes; the daemon checks taps with the same key.
    pub callback_key: SecretSlice<u8>,
}

impl TelegramConfig {
    /// Validates the configuration and builds the client for ordinary
    /// requests and the one for long polling (a longer timeout).
    pub(super) fn clients(&self) -> Result<(Bot, Bot), ChannelError> {
        let token = self.token.expose_secret();
        if token.is_empty() || !token.contains(':') || token.chars().any(invalid_token_char) {
            return Err(misconfigured(
                "the Telegram bot token is not of the form <id>:<secret>",
            ));
        }
        if self.callback_key.expose_secret().len() < callback::MIN_KEY_LEN {
            return Err(misconfigured(format!(
                "the callback key must be at least {} bytes",
                callback::MIN_KEY_LEN
            )));
        }
        let api_url = parse_api_url(self.api_url.as_deref().unwrap_or(DEFAULT_API_URL))?;
        let poll_timeout = Duration::from_secs(MAX_POLL_SECS.into()) + POLL_MARGIN;
        Ok((
            build_bot(token, &api_url, REQUEST_TIMEOUT)?,
            build_bot(token, &api_url, poll_timeout)?,
        ))
    }
}

fn build_bot(token: &str, api_url: &reqwest::Url, timeout: Duration) -> Result<Bot, ChannelError> {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(timeout)
        .build()
        .map_err(|_| misconfigured("cannot build the HTTP client for Telegram"))?;
    Ok(Bot::with_client(token, client).set_api_url(api_url.clone()))
}

fn parse_api_url(raw: &str) -> Result<reqwest::Url, ChannelError> {
    let bad = || misconfigured("the Telegram API URL must be an http(s) URL without query");
    let url = reqwest::Url::parse(raw.trim_end_matches('/')).map_err(|_| bad())?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && !url.cannot_be_a_base()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if ok { Ok(url) } else { Err(bad()) }
}

/// The token goes into URL paths: no separators, whitespace or controls.
fn invalid_token_char(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
}

pub(super) fn misconfigured(msg: impl Into<String>) -> ChannelError {
    ChannelError::Misconfigured(msg.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::TelegramChannel;
    use super::*;

    fn config() -> TelegramConfig {
        TelegramConfig {
            token: "123456:ABC-def_ghi".into(),
            api_url: Some("http://127.0.0.1:9/".into()),
            chats: vec![-100],
            callback_key: vec![7u8; 32].into(),
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(TelegramChannel::new(config()).is_ok());
        for token in ["", "nocolon", "1:a/b", "1:a b", "1:a\n"] {
            let cfg = TelegramConfig {
                token: token.into(),
                ..config()
            };
            assert!(TelegramChannel::new(cfg).is_err(), "{token:?}");
        }
        for url in [
            "ftp://x",
            "not a url",
            "http://x/?q=1",
            "http://u:p@x",
            "mailto:a@b",
        ] {
            let cfg = TelegramConfig {
                api_url: Some(url.into()),
                ..config()
            };
            assert!(TelegramChannel::new(cfg).is_err(), "{url:?}");
        }
        let cfg = TelegramConfig {
            callback_key: vec![1u8; 15].into(),
            ..config()
        };
        assert!(matches!(
            TelegramChannel::new(cfg),
            Err(ChannelError::Misconfigured(_))
        ));
    }

    #[test]
    fn debug_hides_token_and_key() {
        let cfg = config();
        let channel = TelegramChannel::new(cfg.clone()).unwrap();
        for text in [format!("{cfg:?}"), format!("{channel:?}")] {
            assert!(!text.contains("ABC-def_ghi"), "{text}");
            assert!(!text.contains("7, 7"), "{text}");
        }
    }
}
