//! Chat channel settings: Telegram and Discord (bot credentials, modes, routes of cards to
//! chats), and the redacted [`Credential`] string they keep their secrets in.

use serde::{Deserialize, Serialize};

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
