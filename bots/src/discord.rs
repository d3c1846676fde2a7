//! The Discord approval channel: cards posted over Discord's REST API, clicks received over HTTP.
//!
//! [`DiscordChannel`] posts each card to the configured channels as a message
//! with Approve and Deny buttons and edits every copy when the card changes.
//! Clicks arrive at the daemon's interactions endpoint (not through a gateway
//! connection); [`verify_interaction`], [`parse_interaction`] and the answer
//! builders in this module turn them into plain data. Nothing here decides who
//! may approve: the daemon authorises each [`Vote`]'s user on every click.
//!
//! serenity's own rate limiter is off: on a 429 it sleeps and retries without
//! bound, while here a 429 becomes [`ChannelError::RateLimited`] and the
//! daemon's bounded retries decide.

mod interaction;
mod message;

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use serde::Deserialize;
use serenity::http::{Http, HttpBuilder, HttpError, LightMethod, Request, Route, StatusCode};
use serenity::model::id::{ApplicationId, ChannelId, MessageId};

use crate::{ApprovalChannel, BoxFuture, Card, ChannelError, MessageRef, Vote, callback};

pub use ed25519_dalek::VerifyingKey;
pub use interaction::{
    Interaction, MAX_INTERACTION_SKEW_SECS, check_interaction_age, ephemeral, parse_interaction,
    parse_public_key, pong, update_message, verify_interaction, vote,
};
pub use message::MAX_CONTENT_CHARS;

/// The channel's name in [`Vote::platform`] and logs.
pub const PLATFORM: &str = "discord";
/// Seconds to wait after a 429 whose `retry_after` serenity does not pass on.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// Longest wait for one REST call, so a stuck connection cannot hang a post.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's error code for a message that no longer exists.
const UNKNOWN_MESSAGE: isize = 10008;

/// What the Discord channel needs; secrets are never shown by `Debug`.
#[derive(Clone)]
pub struct DiscordConfig {
    /// The bot's token (from the developer portal's Bot page).
    pub bot_token: String,
    /// The application's id.
    pub application_id: u64,
    /// The application's Ed25519 public key, 64 hex digits, for checking interactions.
    pub public_key_hex: String,
    /// Base URL to send REST calls to instead of `https://discord.com` (tests, API proxies).
    pub api_url: Option<String>,
    /// Channels every card is posted to.
    pub channels: Vec<u64>,
    /// Key for the MAC on button data, at least [`callback::MIN_KEY_LEN`] bytes.
    pub callback_key: Vec<u8>,
}

impl fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("bot_token", &"[redacted]")
            .field("application_id", &self.application_id)
            .field("public_key_hex", &self.public_key_hex)
            .field("api_url", &self.api_url)
            .field("channels", &self.channels)
            .field("callback_key", &"[redacted]")
            .finish()
    }
}

/// Posts and edits approval cards on Discord.
pub struct DiscordChannel {
    http: Http,
    application_id: u64,
    public_key: VerifyingKey,
    channels: Vec<ChannelId>,
    callback_key: Vec<u8>,
}

impl fmt::Debug for DiscordChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordChannel")
            .field("application_id", &self.application_id)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// The only field we read from Discord's message and user objects.
#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct CurrentUser {
    username: String,
}

impl DiscordChannel {
    /// Checks the configuration and builds the REST client; no network call.
    pub fn new(cfg: DiscordConfig) -> Result<Self, ChannelError> {
        let bad = |why: &str| Err(ChannelError::Misconfigured(why.into()));
        let token = cfg.bot_token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("the Discord bot token is empty or has spaces");
        }
        let Some(application_id) = NonZeroU64::new(cfg.application_id) else {
            return bad("the Discord application id is missing");
        };
        if cfg.channels.is_empty() {
            return bad("no Discord channel to post approvals to");
        }
        let Some(channels) = cfg
            .channels
            .iter()
            .map(|&id| NonZeroU64::new(id))
            .collect::<Option<Vec<_>>>()
        else {
            return bad("a Discord channel id is 0");
        };
        if cfg.callback_key.len() < callback::MIN_KEY_LEN {
            return bad("the callback key is shorter than 16 bytes");
        }
        let public_key = parse_public_key(&cfg.public_key_hex)?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ChannelError::Misconfigured(format!("HTTP client: {e}")))?;
        let mut builder = HttpBuilder::new(token)
            .client(client)
            .application_id(ApplicationId::from(application_id))
            .ratelimiter_disabled(true);
        if let Some(url) = &cfg.api_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad("the Discord API URL must start with http:// or https://");
            }
            builder = builder.proxy(url.trim_end_matches('/'));
        }
        Ok(Self {
            http: builder.build(),
            application_id: application_id.get(),
            public_key,
            channels: channels.into_iter().map(ChannelId::from).collect(),
            callback_key: cfg.callback_key,
        })
    }

    /// Asks Discord who the bot is; returns its username. For start-up checks.
    pub async fn check(&self) -> Result<String, ChannelError> {
        let user: CurrentUser = self
            .http
            .fire(Request::new(Route::UserMe, LightMethod::Get))
            .await
            .map_err(map_error)?;
        Ok(user.username)
    }

    /// The application's id, to compare with an interaction's `application_id`.
    pub fn application_id(&self) -> u64 {
        self.application_id
    }

    /// The key that checks interaction signatures (see [`verify_interaction`]).
    pub fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The vote a click carries, with this channel's callback key (see [`vote`]).
    pub fn vote(&self, interaction: &Interaction) -> Result<Vote, ChannelError> {
        vote(&self.callback_key, interaction)
    }

    /// The `UPDATE_MESSAGE` answer to a click, with this channel's callback key
    /// (see [`update_message`]).
    pub fn update_message(&self, card: &Card) -> Result<serde_json::Value, ChannelError> {
        update_message(card, &self.callback_key)
    }

    /// Posts a plain notice (no buttons, no mentions) to every configured channel: reminders,
    /// digests, failing webhooks.
    pub async fn send_text(&self, text: &str) -> Result<(), ChannelError> {
        let body = serde_json::json!({"content": message::plain_content(text), "allowed_mentions": message::no_mentions()});
        let body = serde_json::to_vec(&body).map_err(|e| ChannelError::Rejected(e.to_string()))?;
        for &channel_id in &self.channels {
            let route = Route::ChannelMessages { channel_id };
            let request = Request::new(route, LightMethod::Post).body(Some(body.clone()));
            self.http
                .fire::<Created>(request)
                .await
                .map_err(map_error)?;
        }
        Ok(())
    }

    fn body(&self, card: &Card) -> Result<Vec<u8>, ChannelError> {
        let body = message::message_body(card, &self.callback_key)?;
        serde_json::to_vec(&body).map_err(|e| ChannelError::Rejected(e.to_string()))
    }
}

impl ApprovalChannel for DiscordChannel {
    fn name(&self) -> &str {
        PLATFORM
    }

    /// Posts the card to every configured channel, in order. Stops at the
    /// first failure: copies already posted are not returned, so a retry may
    /// post them again (with one channel, the usual set-up, this cannot happen).
    fn post<'a>(&'a self, card: &'a Card) -> BoxFuture<'a, Result<Vec<MessageRef>, ChannelError>> {
        Box::pin(async move {
            let body = self.body(card)?;
            let mut refs = Vec::with_capacity(self.channels.len());
            for &channel_id in &self.channels {
                let route = Route::ChannelMessages { channel_id };
                let request = Request::new(route, LightMethod::Post).body(Some(body.clone()));
                match self.http.fire::<Created>(request).await {
                    Ok(created) => refs.push(MessageRef {
                        chat_id: channel_id.to_string(),
                        message_id: created.id,
                    }),
                    Err(e) => {
                        let err = map_error(e);
                        if !refs.is_empty() {
                            tracing::warn!(posted = refs.len(), %err, "Discord card posted to some channels only");
                        }
                        return Err(err);
                    }
                }
            }
            Ok(refs)
        })
    }

    /// Edits every copy. Stops at a retryable error (the edit is idempotent,
    /// so the daemon retries all of it); otherwise edits the rest and returns
    /// the first error, e.g. for a message someone deleted.
    fn update<'a>(
        &'a self,
        card: &'a Card,
        refs: &'a [MessageRef],
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let body = self.body(card)?;
            let mut first_error = None;
            for r in refs {
                let result = match parse_ref(r) {
                    Ok((channel_id, message_id)) => {
                        let route = Route::ChannelMessage {
                            channel_id,
                            message_id,
                        };
                        let request =
                            Request::new(route, LightMethod::Patch).body(Some(body.clone()));
                        self.http
                            .fire::<Created>(request)
                            .await
                            .map(drop)
                            .map_err(map_error)
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => {}
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

fn parse_ref(r: &MessageRef) -> Result<(ChannelId, MessageId), ChannelError> {
    let id = |s: &str| s.parse::<NonZeroU64>().ok();
    match (id(&r.chat_id), id(&r.message_id)) {
        (Some(c), Some(m)) => Ok((ChannelId::from(c), MessageId::from(m))),
        _ => Err(ChannelError::Rejected(format!(
            "not a Discord message: {}/{}",
            r.chat_id, r.message_id
        ))),
    }
}

/// Maps a serenity error to what the daemon can act on.
///
/// serenity drops a 429's `retry_after` (its error body type has no such
/// field), so [`DEFAULT_RETRY_AFTER_SECS`] stands in.
fn map_error(e: serenity::Error) -> ChannelError {
    let serenity::Error::Http(e) = e else {
        return ChannelError::Unavailable(format!("unexpected answer from Discord: {e}"));
    };
    let response = match e {
        HttpError::UnsuccessfulRequest(response) => response,
        HttpError::Request(e) => return ChannelError::Unavailable(format!("Discord: {e}")),
        other => return ChannelError::Misconfigured(format!("Discord request: {other}")),
    };
    let status = response.status_code;
    let detail = format!(
        "{} (Discord code {})",
        response.error.message, response.error.code
    );
    match status {
        StatusCode::TOO_MANY_REQUESTS => ChannelError::RateLimited {
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        },
        StatusCode::UNAUTHORIZED => {
            ChannelError::Misconfigured("the Discord bot token was refused".into())
        }
        StatusCode::FORBIDDEN => {
            ChannelError::Misconfigured(format!("the bot may not do this: {detail}"))
        }
        StatusCode::NOT_FOUND if response.error.code == UNKNOWN_MESSAGE => {
            ChannelError::Rejected(format!("the message is gone: {detail}"))
        }
        StatusCode::NOT_FOUND => ChannelError::Misconfigured(format!("unknown channel: {detail}")),
        s if s.is_server_error() => ChannelError::Unavailable(format!("Discord {s}: {detail}")),
        s => ChannelError::Rejected(format!("Discord {s}: {detail}")),
    }
}
