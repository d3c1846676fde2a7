//! The JSON body of a card message: escaped text, Approve/Deny buttons and no mentions.
//!
//! One body serves the three places a card appears: a new message, an edited
//! message, and the `UPDATE_MESSAGE` answer to a click, so every copy looks the same.

use serde_json::{Value, json};

use crate::escape::escape_discord_markdown;
use crate::{Card, ChannelError, Decision, callback, card};

/// Discord's limit on a message's content, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;

/// Component type of an action row.
const ACTION_ROW: u8 = 1;
/// Component type of a button.
const BUTTON: u8 = 2;
/// Green button.
const STYLE_SUCCESS: u8 = 3;
/// Red button.
const STYLE_DANGER: u8 = 4;

/// `content`, `components` and `allowed_mentions` for a card.
///
/// A pending card gets one action row with Approve and Deny, whose
/// `custom_id`s are MAC-protected [`callback`] data; a decided card gets an
/// empty component list, which removes the buttons when a message is edited.
pub fn message_body(card: &Card, key: &[u8]) -> Result<Value, ChannelError> {
    let components = if card.outcome.is_some() {
        Vec::new()
    } else {
        vec![json!({
            "type": ACTION_ROW,
            "components": [
                button(key, card, "Approve", STYLE_SUCCESS, Decision::Approve)?,
                button(key, card, "Deny", STYLE_DANGER, Decision::Deny)?,
            ],
        })]
    };
    Ok(json!({
        "content": card_content(card),
        "components": components,
        "allowed_mentions": no_mentions(),
    }))
}

/// `allowed_mentions` that allows nothing: no `@everyone`, user or role ping,
/// whatever the text says.
pub fn no_mentions() -> Value {
    json!({ "parse": [] })
}

/// The card's text, escaped for Discord markdown and fitted to one message.
pub fn card_content(card: &Card) -> String {
    fit_card(&escape_discord_markdown(&card::render_text(card)))
}

/// Escapes free text for Discord and cuts it to one message.
pub fn plain_content(text: &str) -> String {
    let escaped = escape_discord_markdown(text);
    if escaped.chars().count() <= MAX_CONTENT_CHARS {
        return escaped;
    }
    let mut out = cut(&escaped, MAX_CONTENT_CHARS - 1);
    out.push('…');
    out
}

fn button(
    key: &[u8],
    card: &Card,
    label: &str,
    style: u8,
    decision: Decision,
) -> Result<Value, ChannelError> {
    let custom_id = callback::encode(key, &card.approval_id, decision).map_err(|e| match e {
        callback::CallbackError::KeyTooShort => ChannelError::Misconfigured(e.to_string()),
        _ => ChannelError::Rejected(e.to_string()),
    })?;
    Ok(json!({ "type": BUTTON, "style": style, "label": label, "custom_id": custom_id }))
}

/// Fits escaped card text into [`MAX_CONTENT_CHARS`].
///
/// Escaping can double the text, so a card with very long fields may not fit.
/// The end of the card (votes, outcome and id) matters most once it is
/// decided, so the text before the `Votes:` line is shortened first.
fn fit_card(text: &str) -> String {
    if text.chars().count() <= MAX_CONTENT_CHARS {
        return text.to_owned();
    }
    // Fields are flattened to one line each, so only the real line starts here.
    if let Some(at) = text.rfind("\nVotes: ") {
        let (head, tail) = text.split_at(at);
        let tail_chars = tail.chars().count();
        if tail_chars + 1 < MAX_CONTENT_CHARS {
            let mut out = cut(head, MAX_CONTENT_CHARS - tail_chars - 1);
            out.push('…');
            out.push_str(tail);
            return out;
        }
    }
    let mut out = cut(text, MAX_CONTENT_CHARS - 1);
    out.push('…');
    out
}

/// The first `max_chars` characters of escaped text, without a dangling
/// escape: an odd run of trailing backslashes would escape what follows.
fn cut(escaped: &str, max_chars: usize) -> String {
    let mut out: String = escaped.chars().take(max_chars).collect();
    let trailing = out.chars().rev().take_while(|&c| c == '\\').count();
    if trailing % 2 == 1 {
        out.pop();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tests::sample_card;
    use crate::{Outcome, OutcomeKind};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn pending_card_has_two_buttons_decided_card_none() {
        let mut card = sample_card();
        let body = message_body(&card, KEY).unwrap();
        let buttons = body["components"][0]["components"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["style"], STYLE_SUCCESS);
        assert_eq!(buttons[1]["label"], "Deny");
        assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));
        card.outcome = Some(Outcome {
            kind: OutcomeKind::Approved,
            decided_by: Some("ada".into()),
            decided_at: "2026-05-01T12:01:00Z".into(),
        });
        let body = message_body(&card, KEY).unwrap();
        assert_eq!(body["components"], json!([]));
    }

    #[test]
    fn bad_key_or_id_is_an_error() {
        let card = sample_card();
        assert!(matches!(
            message_body(&card, b"short"),
            Err(ChannelError::Misconfigured(_))
        ));
        let mut card = sample_card();
        card.approval_id = "../x".into();
        assert!(matches!(
            message_body(&card, KEY),
            Err(ChannelError::Rejected(_))
        ));
    }

    #[test]
    fn huge_card_fits_and_keeps_its_end() {
        let mut card = sample_card();
        let huge = "*\\".repeat(5_000);
        card.requester = huge.clone();
        card.secret_path = huge.clone();
        card.reason = huge.clone();
        card.keys = Some(vec![huge; 10]);
        card.outcome = Some(Outcome {
            kind: OutcomeKind::Denied,
            decided_by: Some("ada".into()),
            decided_at: "2026-05-01T12:03:00Z".into(),
        });
        let text = card_content(&card);
        assert!(text.chars().count() <= MAX_CONTENT_CHARS);
        assert!(text.contains("…\nVotes: 0/1\nOutcome: ❌ denied by ada"));
        assert!(text.ends_with(&format!("ID: {}", card.approval_id)));
    }

    #[test]
    fn cut_never_leaves_a_dangling_escape() {
        assert_eq!(cut("ab\\*", 3), "ab");
        assert_eq!(cut("a\\\\b", 3), "a\\\\");
        assert_eq!(plain_content("@x").chars().count(), 3);
        let long = plain_content(&"*".repeat(3_000));
        assert_eq!(long.chars().count(), MAX_CONTENT_CHARS - 1);
        assert!(long.ends_with("\\*…"));
    }
}
