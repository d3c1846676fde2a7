//! Discord interactions (button clicks) received over HTTP: check, parse, answer.
//!
//! Discord POSTs every click to the daemon's interactions endpoint, signed with
//! Ed25519 over the `X-Signature-Timestamp` header followed by the raw body.
//! [`verify_interaction`] must pass before [`parse_interaction`] looks at the
//! body; requests that fail it are answered 401, which Discord also uses to
//! test the endpoint. The first answer is due within 3 seconds: [`pong`] for
//! a PING, [`update_message`] to show the card's new state on the clicked
//! message, or [`ephemeral`] for a note only the clicker sees.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};

use super::message;
use crate::{Card, ChannelError, Vote, callback};

/// Interaction type of Discord's endpoint check.
const PING: u64 = 1;
/// Interaction type of a click on a component.
const MESSAGE_COMPONENT: u64 = 3;
/// Component type of a button.
const BUTTON: u64 = 2;
/// Message flag: only the clicker sees the message.
const EPHEMERAL: u64 = 1 << 6;

/// Parses the application's public key (64 hex digits, from the developer portal).
pub fn parse_public_key(hex: &str) -> Result<VerifyingKey, ChannelError> {
    let bad = || ChannelError::Misconfigured("the Discord public key is not 64 hex digits".into());
    let bytes: [u8; 32] = decode_hex(hex.trim()).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| ChannelError::Misconfigured("the Discord public key is invalid".into()))
}

/// Checks an interaction's signature: Ed25519 by `public_key` over the
/// timestamp's bytes followed by the body, from the `X-Signature-Ed25519` and
/// `X-Signature-Timestamp` headers. Anything missing or wrong is `Rejected`.
pub fn verify_interaction(
    public_key: &VerifyingKey,
    signature_hex: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
) -> Result<(), ChannelError> {
    let rejected = |why: &str| ChannelError::Rejected(format!("interaction signature {why}"));
    let (Some(signature_hex), Some(timestamp)) = (signature_hex, timestamp) else {
        return Err(rejected("headers missing"));
    };
    if timestamp.is_empty() {
        return Err(rejected("timestamp empty"));
    }
    let bytes: [u8; 64] = decode_hex(signature_hex).ok_or_else(|| rejected("malformed"))?;
    let signature = Signature::from_bytes(&bytes);
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    public_key
        .verify_strict(&signed, &signature)
        .map_err(|_| rejected("does not match"))
}

/// How far an interaction's signed timestamp may be from our clock: Discord sends a click
/// within seconds, so an older (or future) one is a replay of a captured request.
pub const MAX_INTERACTION_SKEW_SECS: i64 = 300;

/// Checks that a (verified) interaction's `X-Signature-Timestamp`, unix seconds, is within
/// [`MAX_INTERACTION_SKEW_SECS`] of `now_unix`; a replayed old request is `Rejected`.
pub fn check_interaction_age(timestamp: Option<&str>, now_unix: i64) -> Result<(), ChannelError> {
    let sent: i64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            ChannelError::Rejected("interaction timestamp is not unix seconds".into())
        })?;
    if sent.abs_diff(now_unix) > MAX_INTERACTION_SKEW_SECS.unsigned_abs() {
        return Err(ChannelError::Rejected(format!(
            "interaction timestamp is {}s away from now (at most {MAX_INTERACTION_SKEW_SECS}s)",
            sent.abs_diff(now_unix)
        )));
    }
    Ok(())
}

/// A verified interaction, reduced to what the daemon needs.
#[derive(Clone, PartialEq, Eq)]
pub enum Interaction {
    /// Discord checking the endpoint: answer with [`pong`].
    Ping,
    /// A click on a button of one of our messages. Not yet authorised.
    Button {
        /// The interaction's id.
        id: String,
        /// Token for answering later (valid 15 minutes); a credential, never logged.
        token: String,
        /// The button's data: MAC-protected [`callback`] data for our cards.
        custom_id: String,
        /// The clicker's user id (from `member.user` in a server, `user` in a DM).
        user_id: String,
        /// The clicker's unique username (not the free-form display name,
        /// which anyone can set to look like an approver).
        user_name: String,
        /// Channel of the clicked message.
        channel_id: Option<String>,
        /// The clicked message.
        message_id: Option<String>,
    },
    /// Any other interaction (slash command, select menu, modal…): not ours.
    Other,
}

impl fmt::Debug for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ping => f.write_str("Ping"),
            Self::Other => f.write_str("Other"),
            Self::Button {
                id,
                custom_id,
                user_id,
                user_name,
                channel_id,
                message_id,
                token: _,
            } => f
                .debug_struct("Button")
                .field("id", id)
                .field("token", &"[redacted]")
                .field("custom_id", custom_id)
                .field("user_id", user_id)
                .field("user_name", user_name)
                .field("channel_id", channel_id)
                .field("message_id", message_id)
                .finish(),
        }
    }
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: u64,
    id: Option<String>,
    token: Option<String>,
    data: Option<RawData>,
    guild_id: Option<String>,
    member: Option<RawMember>,
    user: Option<RawUser>,
    channel_id: Option<String>,
    channel: Option<RawId>,
    message: Option<RawMessage>,
}

#[derive(Deserialize)]
struct RawData {
    custom_id: Option<String>,
    component_type: Option<u64>,
}

#[derive(Deserialize)]
struct RawMember {
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    username: Option<String>,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    channel_id: Option<String>,
}

/// Parses a verified interaction body. A click without an identifiable
/// clicker is `Rejected` (fail closed), never attributed to nobody.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, ChannelError> {
    let raw: RawInteraction = serde_json::from_slice(body)
        .map_err(|e| ChannelError::Rejected(format!("malformed interaction: {e}")))?;
    match raw.kind {
        PING => return Ok(Interaction::Ping),
        MESSAGE_COMPONENT => {}
        _ => return Ok(Interaction::Other),
    }
    let rejected = |what: &str| ChannelError::Rejected(format!("interaction without {what}"));
    let data = raw.data.ok_or_else(|| rejected("data"))?;
    if data.component_type != Some(BUTTON) {
        return Ok(Interaction::Other);
    }
    // In a server the clicker is `member.user`; `user` is only for DMs.
    let user = if raw.guild_id.is_some() || raw.member.is_some() {
        raw.member.and_then(|m| m.user)
    } else {
        raw.user
    };
    let user = user.ok_or_else(|| rejected("a user"))?;
    if user.id.is_empty() || !user.id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rejected("a valid user id"));
    }
    let message_channel = raw.message.as_ref().and_then(|m| m.channel_id.clone());
    Ok(Interaction::Button {
        id: raw.id.ok_or_else(|| rejected("an id"))?,
        token: raw.token.ok_or_else(|| rejected("a token"))?,
        custom_id: data.custom_id.ok_or_else(|| rejected("a custom_id"))?,
        user_name: user.username.unwrap_or_else(|| user.id.clone()),
        user_id: user.id,
        channel_id: raw
            .channel_id
            .or(raw.channel.map(|c| c.id))
            .or(message_channel),
        message_id: raw.message.map(|m| m.id),
    })
}

/// The vote a button click carries, after checking its MAC with `key`.
/// Still unauthorised: the daemon checks `platform_user_id` against the approvers.
pub fn vote(key: &[u8], interaction: &Interaction) -> Result<Vote, ChannelError> {
    let Interaction::Button {
        custom_id,
        user_id,
        user_name,
        ..
    } = interaction
    else {
        return Err(ChannelError::Rejected("not a button click".into()));
    };
    let (approval_id, decision) = callback::decode(key, custom_id)
        .map_err(|e| ChannelError::Rejected(format!("button data: {e}")))?;
    Ok(Vote {
        approval_id,
        decision,
        platform: super::PLATFORM.into(),
        platform_user_id: user_id.clone(),
        display_name: user_name.clone(),
    })
}

/// Answer to a PING: `{"type":1}`.
pub fn pong() -> Value {
    json!({ "type": PING })
}

/// Answer to a click that replaces the clicked message with the card's current
/// state (type 7, `UPDATE_MESSAGE`): new votes, or the outcome without buttons.
pub fn update_message(card: &Card, key: &[u8]) -> Result<Value, ChannelError> {
    Ok(json!({ "type": 7, "data": message::message_body(card, key)? }))
}

/// Answer only the clicker sees (type 4 with the ephemeral flag), such as
/// "you are not an approver for …". The text is shown literally: markup is
/// escaped and nobody is mentioned.
pub fn ephemeral(text: &str) -> Value {
    json!({
        "type": 4,
        "data": {
            "content": message::plain_content(text),
            "flags": EPHEMERAL,
            "allowed_mentions": message::no_mentions(),
        },
    })
}

/// Decodes exactly `N` bytes of hex, upper or lower case.
fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(decode_hex::<2>("0aF"), None);
        assert_eq!(decode_hex::<2>("0aFg"), None);
        assert_eq!(decode_hex::<1>("+1"), None);
        assert!(parse_public_key("zz").is_err());
    }

    #[test]
    fn old_or_future_interactions_are_refused() {
        let now = 1_777_636_800;
        assert!(check_interaction_age(Some("1777636800"), now).is_ok());
        assert!(check_interaction_age(Some("1777636500"), now).is_ok());
        assert!(check_interaction_age(Some("1777636499"), now).is_err());
        assert!(check_interaction_age(Some("1777637101"), now).is_err());
        assert!(check_interaction_age(Some("yesterday"), now).is_err());
        assert!(check_interaction_age(None, now).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let click = Interaction::Button {
            id: "1".into(),
            token: "secret-token".into(),
            custom_id: "c".into(),
            user_id: "2".into(),
            user_name: "ada".into(),
            channel_id: None,
            message_id: None,
        };
        assert!(!format!("{click:?}").contains("secret-token"));
    }
}
