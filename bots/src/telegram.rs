//! The Telegram approval channel: posts cards with Approve / Deny buttons and reads taps.
//!
//! Cards are sent as plain text (no `parse_mode`), so nothing a requester
//! writes in a reason can become markup, a link or a fake button; link
//! previews are turned off. Buttons carry MAC-protected callback data from
//! [`crate::callback`]. Incoming updates (long polling with
//! [`TelegramChannel::get_updates`] or a webhook body with
//! [`parse_update_json`]) become plain [`Incoming`] data; the daemon decides
//! what a tap or a command means and authorises the tapping user itself.
//!
//! Tests point the client at a fake Bot API with [`TelegramConfig::api_url`].

mod config;
mod errors;
mod updates;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use teloxide::Bot;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, DeleteWebhookSetters, EditMessageTextSetters, GetUpdatesSetters,
    SendMessageSetters, SetWebhookSetters,
};
use teloxide::requests::Requester;
use teloxide::types::{
    AllowedUpdate, CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup,
    LinkPreviewOptions, Message, MessageId, Update,
};

use crate::card::render_text;
use crate::{ApprovalChannel, BoxFuture, Card, ChannelError, Decision, MessageRef, callback};

pub use config::TelegramConfig;
use config::misconfigured;
pub use updates::{
    Command, Incoming, next_offset, parse_update, parse_update_json, webhook_secret_ok,
};

/// Telegram's limit on a message's text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Telegram's limit on the text of a callback-query answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 200;
/// Longest long-polling wait accepted by [`TelegramChannel::get_updates`], in seconds.
pub const MAX_POLL_SECS: u32 = 50;

/// A Telegram bot used as an [`ApprovalChannel`].
#[derive(Clone)]
pub struct TelegramChannel {
    /// For every request except long polling.
    bot: Bot,
    /// The same bot with a client timeout long enough for long polling.
    poll_bot: Bot,
    chats: Vec<i64>,
    callback_key: SecretSlice<u8>,
    token: SecretString,
}

impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("api_url", &self.bot.api_url().as_str())
            .field("chats", &self.chats)
            .finish_non_exhaustive()
    }
}

impl TelegramChannel {
    /// Checks the configuration and builds the client; makes no request.
    pub fn new(cfg: TelegramConfig) -> Result<Self, ChannelError> {
        let (bot, poll_bot) = cfg.clients()?;
        Ok(Self {
            bot,
            poll_bot,
            chats: cfg.chats,
            callback_key: cfg.callback_key,
            token: cfg.token,
        })
    }

    /// Calls `getMe` and returns the bot's username (without `@`).
    ///
    /// Use it at start-up and from readiness checks: a refused token becomes
    /// `Misconfigured("the Telegram bot token was refused")`.
    pub async fn check(&self) -> Result<String, ChannelError> {
        let me = self.bot.get_me().await.map_err(|e| self.map(e))?;
        Ok(me.user.username.unwrap_or_default())
    }

    /// Posts one card to one chat, with buttons unless the card is decided.
    pub async fn post_to(&self, chat_id: i64, card: &Card) -> Result<MessageRef, ChannelError> {
        let mut request = self
            .bot
            .send_message(ChatId(chat_id), render_text(card))
            .link_preview_options(no_preview());
        if let Some(keyboard) = self.keyboard(card)? {
            request = request.reply_markup(keyboard);
        }
        let message = request.await.map_err(|e| self.map(e))?;
        Ok(message_ref(&message))
    }

    /// Edits one posted copy of a card; "message is not modified" counts as success.
    pub async fn edit(&self, card: &Card, at: &MessageRef) -> Result<(), ChannelError> {
        let chat_id: i64 = at.chat_id.parse().map_err(|_| {
            ChannelError::Rejected(format!("bad Telegram chat id {:?}", at.chat_id))
        })?;
        let message_id: i32 = at.message_id.parse().map_err(|_| {
            ChannelError::Rejected(format!("bad Telegram message id {:?}", at.message_id))
        })?;
        // An empty keyboard removes the buttons of a decided card.
        let keyboard = self.keyboard(card)?.unwrap_or_default();
        let result = self
            .bot
            .edit_message_text(ChatId(chat_id), MessageId(message_id), render_text(card))
            .link_preview_options(no_preview())
            .reply_markup(keyboard)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if errors::is_not_modified(&e) => Ok(()),
            Err(e) => Err(self.map(e)),
        }
    }

    /// Long-polls for updates after `offset` (see [`next_offset`]), waiting at
    /// most `timeout_secs` (capped at [`MAX_POLL_SECS`]). Only messages and
    /// callback queries are asked for. Only one poller may run per bot token;
    /// a second one, or a webhook, yields `Misconfigured`.
    pub async fn get_updates(
        &self,
        offset: i32,
        timeout_secs: u32,
    ) -> Result<Vec<Update>, ChannelError> {
        self.poll_bot
            .get_updates()
            .offset(offset)
            .timeout(timeout_secs.min(MAX_POLL_SECS))
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .await
            .map_err(|e| self.map(e))
    }

    /// Answers a tap (`answerCallbackQuery`) so the client stops its spinner;
    /// `alert` shows a dialog instead of a toast. `text` is cut to 200 characters.
    pub async fn answer_tap(
        &self,
        callback_query_id: &str,
        text: &str,
        alert: bool,
    ) -> Result<(), ChannelError> {
        self.bot
            .answer_callback_query(CallbackQueryId(callback_query_id.to_owned()))
            .text(truncate(text, MAX_ANSWER_CHARS))
            .show_alert(alert)
            .await
            .map_err(|e| self.map(e))?;
        Ok(())
    }

    /// Sends plain text (replies to `/whoami`, `/pending`), cut to 4096 characters.
    pub async fn send_text(&self, chat_id: i64, text: &str) -> Result<MessageRef, ChannelError> {
        let message = self
            .bot
            .send_message(ChatId(chat_id), truncate(text, MAX_MESSAGE_CHARS))
            .link_preview_options(no_preview())
            .await
            .map_err(|e| self.map(e))?;
        Ok(message_ref(&message))
    }

    /// Registers a webhook. Telegram will send `secret_token` (1–256 characters
    /// of `A-Za-z0-9_-`) in `X-Telegram-Bot-Api-Secret-Token` with every update;
    /// check it with [`webhook_secret_ok`].
    pub async fn set_webhook(&self, url: &str, secret_token: &str) -> Result<(), ChannelError> {
        let url = reqwest::Url::parse(url)
            .map_err(|_| misconfigured("the Telegram webhook URL is not a valid URL"))?;
        let secret_ok = (1..=256).contains(&secret_token.len())
            && secret_token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !secret_ok {
            return Err(misconfigured(
                "the Telegram webhook secret must be 1-256 characters of A-Za-z0-9_-",
            ));
        }
        self.bot
            .set_webhook(url)
            .secret_token(secret_token)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .await
            .map_err(|e| self.map(e))?;
        Ok(())
    }

    /// Removes the webhook (needed before long polling works); pending updates are kept.
    pub async fn delete_webhook(&self) -> Result<(), ChannelError> {
        self.bot
            .delete_webhook()
            .drop_pending_updates(false)
            .await
            .map_err(|e| self.map(e))?;
        Ok(())
    }

    /// Approve / Deny buttons for a pending card; `None` once it is decided.
    fn keyboard(&self, card: &Card) -> Result<Option<InlineKeyboardMarkup>, ChannelError> {
        if card.outcome.is_some() {
            return Ok(None);
        }
        let key = self.callback_key.expose_secret();
        let data = |d| {
            callback::encode(key, &card.approval_id, d)
                .map_err(|e| ChannelError::Rejected(format!("cannot build buttons: {e}")))
        };
        Ok(Some(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("✅ Approve", data(Decision::Approve)?),
            InlineKeyboardButton::callback("❌ Deny", data(Decision::Deny)?),
        ]])))
    }

    fn map(&self, err: teloxide::RequestError) -> ChannelError {
        errors::map_error(&err, self.token.expose_secret())
    }
}

impl ApprovalChannel for TelegramChannel {
    fn name(&self) -> &str {
        "telegram"
    }

    /// Posts to every configured chat, one after the other. Succeeds if at
    /// least one chat got the card (failures are logged); otherwise returns
    /// the first error. Use [`TelegramChannel::post_to`] for per-chat control.
    fn post<'a>(&'a self, card: &'a Card) -> BoxFuture<'a, Result<Vec<MessageRef>, ChannelError>> {
        Box::pin(async move {
            if self.chats.is_empty() {
                return Err(misconfigured("no Telegram chats are configured"));
            }
            let mut refs = Vec::with_capacity(self.chats.len());
            let mut first_error = None;
            for &chat in &self.chats {
                match self.post_to(chat, card).await {
                    Ok(r) => refs.push(r),
                    Err(e) => {
                        tracing::warn!(chat, approval = %card.approval_id, error = %e,
                            "could not post the approval card to a Telegram chat");
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) if refs.is_empty() => Err(e),
                _ => Ok(refs),
            }
        })
    }

    /// Edits every copy. Stops at a rate limit (the rest would fail too);
    /// otherwise tries every copy and returns the first error, if any.
    fn update<'a>(
        &'a self,
        card: &'a Card,
        refs: &'a [MessageRef],
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let mut first_error = None;
            for at in refs {
                match self.edit(card, at).await {
                    Ok(()) => {}
                    Err(e @ ChannelError::RateLimited { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!(chat = %at.chat_id, message = %at.message_id,
                            approval = %card.approval_id, error = %e,
                            "could not update an approval card in Telegram");
                        first_error.get_or_insert(e);
                    }
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

fn message_ref(message: &Message) -> MessageRef {
    MessageRef {
        chat_id: message.chat.id.0.to_string(),
        message_id: message.id.0.to_string(),
    }
}

/// Cuts `s` to at most `max` characters, ending with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate(&"é".repeat(300), 200).chars().count(), 200);
    }
}
