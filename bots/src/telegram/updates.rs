//! Incoming Telegram updates as plain data: button taps and bot commands.
//!
//! Nothing here is trusted or authorised: a [`Incoming::Tap`]'s `data` must be
//! checked with [`crate::callback::decode`] and its `user_id` against the
//! approver list. Anything that lacks a sender is dropped (fail closed).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use teloxide::types::{Update, UpdateKind, User};

use crate::ChannelError;

/// A tap or a command from Telegram, before any authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A tap on an inline button (a callback query). Answer it with
    /// [`super::TelegramChannel::answer_tap`].
    Tap {
        /// Id to answer the callback query with.
        callback_query_id: String,
        /// The tapping user's id (never the chat's id).
        user_id: i64,
        /// `@username` when the user has one, otherwise their full name.
        user_name: String,
        /// The button's callback data, unverified.
        data: String,
        /// Chat of the message that carried the button, if Telegram says.
        chat_id: Option<i64>,
        /// That message's id, if Telegram says.
        message_id: Option<i32>,
    },
    /// A `/command` typed in a chat the bot reads.
    Command {
        /// Where to reply.
        chat_id: i64,
        /// Who typed it.
        user_id: i64,
        /// `@username` when the user has one, otherwise their full name.
        user_name: String,
        /// Which command.
        command: Command,
        /// The bot named in `/cmd@name`, if any. In groups, ignore commands
        /// naming another bot (compare with [`super::TelegramChannel::check`]).
        mention: Option<String>,
    },
}

/// The bot commands Latchkey understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/pending`: list pending approvals.
    Pending,
    /// `/whoami`: tell the user their Telegram user id (to add them as an approver).
    Whoami,
    /// `/start`: sent when a user opens a private chat with the bot.
    Start,
    /// Any other command, by name (lower case, without `/` or `@bot`).
    Other(String),
}

/// Turns an update into a tap or a command; `None` for anything else.
pub fn parse_update(update: &Update) -> Option<Incoming> {
    match &update.kind {
        UpdateKind::CallbackQuery(q) => {
            let user_id = user_id(&q.from)?;
            let message = q.message.as_ref();
            Some(Incoming::Tap {
                callback_query_id: q.id.0.clone(),
                user_id,
                user_name: user_name(&q.from),
                data: q.data.clone()?,
                chat_id: message.map(|m| m.chat().id.0),
                message_id: message.map(|m| m.id().0),
            })
        }
        UpdateKind::Message(m) => {
            let from = m.from.as_ref()?;
            let (command, mention) = parse_command(m.text()?)?;
            Some(Incoming::Command {
                chat_id: m.chat.id.0,
                user_id: user_id(from)?,
                user_name: user_name(from),
                command,
                mention,
            })
        }
        _ => None,
    }
}

/// Parses a webhook body. Bad JSON is `Rejected`; an update of an unknown or
/// malformed kind (e.g. a tap without a sender) is `Ok(None)`.
pub fn parse_update_json(body: &[u8]) -> Result<Option<Incoming>, ChannelError> {
    let update: Update = serde_json::from_slice(body)
        .map_err(|_| ChannelError::Rejected("not a Telegram update".into()))?;
    Ok(parse_update(&update))
}

/// The offset for the next `get_updates` call: one past the newest update
/// seen, or `current` if there were none.
pub fn next_offset(updates: &[Update], current: i32) -> i32 {
    updates
        .iter()
        .filter_map(|u| i32::try_from(u.id.0).ok())
        .map(|id| id.saturating_add(1))
        .fold(current, i32::max)
}

/// Checks the `X-Telegram-Bot-Api-Secret-Token` header in constant time.
/// A missing header or an empty expected secret never matches.
pub fn webhook_secret_ok(expected: &str, header: Option<&str>) -> bool {
    let Some(header) = header else {
        return false;
    };
    if expected.is_empty() {
        return false;
    }
    // MAC both sides under a fixed key and compare the tags with the
    // constant-time `verify_slice`; this also hides the expected length.
    let tag = |s: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"latchkey telegram webhook secret")
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(s.as_bytes());
        mac
    };
    let expected_tag = tag(expected).finalize().into_bytes();
    tag(header).verify_slice(&expected_tag).is_ok()
}

/// `/cmd@bot args` → the command and the bot named, if the text is a command.
fn parse_command(text: &str) -> Option<(Command, Option<String>)> {
    let word = text.strip_prefix('/')?.split_whitespace().next()?;
    let (name, mention) = match word.split_once('@') {
        Some((name, bot)) => (name, Some(bot.to_owned())),
        None => (word, None),
    };
    if name.is_empty() {
        return None;
    }
    let command = match name.to_ascii_lowercase().as_str() {
        "pending" => Command::Pending,
        "whoami" => Command::Whoami,
        "start" => Command::Start,
        other => Command::Other(other.to_owned()),
    };
    Some((command, mention))
}

fn user_id(user: &User) -> Option<i64> {
    i64::try_from(user.id.0).ok()
}

fn user_name(user: &User) -> String {
    match &user.username {
        Some(name) if !name.is_empty() => format!("@{name}"),
        _ => user.full_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_parsed() {
        assert_eq!(parse_command("/whoami"), Some((Command::Whoami, None)));
        assert_eq!(
            parse_command("/Pending@latchkey_bot now"),
            Some((Command::Pending, Some("latchkey_bot".into())))
        );
        assert_eq!(parse_command("/start"), Some((Command::Start, None)));
        assert_eq!(
            parse_command("/help me"),
            Some((Command::Other("help".into()), None))
        );
        for text in ["hello", "/", "/@bot", " /whoami", ""] {
            assert_eq!(parse_command(text), None, "{text:?}");
        }
    }

    #[test]
    fn secret_check() {
        assert!(webhook_secret_ok("s3cr3t_-", Some("s3cr3t_-")));
        assert!(!webhook_secret_ok("s3cr3t_-", Some("s3cr3t_")));
        assert!(!webhook_secret_ok("s3cr3t_-", Some("")));
        assert!(!webhook_secret_ok("s3cr3t_-", None));
        assert!(!webhook_secret_ok("", Some("")));
        assert!(!webhook_secret_ok("", None));
    }
}
