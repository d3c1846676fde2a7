//! The text of an approval card, shared by Telegram and Discord, and markup escaping.
//!
//! [`render_text`] produces plain text, one fact per line. Every field is
//! flattened to one line (so a requester cannot forge extra lines such as a
//! fake "Outcome:" or fake buttons) and capped in length; the reason, the only
//! field a requester writes freely, is capped at 400 characters. A platform
//! client then escapes the whole text for its markup with
//! [`escape_markdown_v2`] or [`escape_discord_markdown`] (from [`crate::escape`]).

use std::fmt::Write as _;

use crate::{Card, OutcomeKind};

pub use crate::escape::{escape_discord_markdown, escape_markdown_v2};

/// Longest reason shown, in characters (Teleport cuts at the same length).
pub const MAX_REASON_CHARS: usize = 400;
/// Longest value shown for any other field, in characters.
pub const MAX_FIELD_CHARS: usize = 200;

/// Renders a card as plain text: who, what, why, when, votes, outcome and id.
pub fn render_text(card: &Card) -> String {
    let field = |s: &str| one_line(s, MAX_FIELD_CHARS);
    let mut out = String::new();
    let title = if card.outcome.is_some() {
        "🔐 Approval closed"
    } else {
        "🔐 Approval needed"
    };
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "Who: {} (tier {})",
        field(&card.requester),
        card.trust_tier
    );
    let _ = writeln!(
        out,
        "What: {} {} ({})",
        field(&card.action),
        field(&card.secret_path),
        field(&card.sensitivity)
    );
    if let Some(keys) = &card.keys {
        let _ = writeln!(
            out,
            "Keys: {}",
            one_line(&keys.join(", "), MAX_REASON_CHARS)
        );
    }
    let uses = if card.uses == 1 { "use" } else { "uses" };
    let _ = writeln!(
        out,
        "Lease: {}, {} {uses}",
        human_duration(card.ttl_seconds),
        card.uses
    );
    let reason = one_line(&card.reason, MAX_REASON_CHARS);
    let reason = if reason.is_empty() {
        "(none given)".to_owned()
    } else {
        reason
    };
    let _ = writeln!(out, "Why: {reason}");
    let _ = writeln!(
        out,
        "When: requested {}, deadline {}",
        field(&card.requested_at),
        field(&card.deadline)
    );
    let _ = writeln!(out, "Votes: {}/{}", card.votes, card.votes_needed);
    if let Some(outcome) = &card.outcome {
        let (mark, label) = match outcome.kind {
            OutcomeKind::Approved => ("✅", "approved"),
            OutcomeKind::Denied => ("❌", "denied"),
            OutcomeKind::Expired => ("⌛", "expired"),
            OutcomeKind::AutoGranted => ("⏱", "auto-granted"),
        };
        let by = outcome
            .decided_by
            .as_deref()
            .map(|who| format!(" by {}", field(who)))
            .unwrap_or_default();
        let at = field(&outcome.decided_at);
        let _ = writeln!(out, "Outcome: {mark} {label}{by} at {at}");
    }
    let _ = write!(out, "ID: {}", field(&card.approval_id));
    out
}

/// Flattens untrusted text to one line of at most `max_chars` characters.
///
/// Line breaks and tabs become spaces, runs of whitespace collapse, control
/// characters and invisible format characters (bidi overrides, zero-width
/// spaces) are removed so the text shows what it says. Longer text is cut
/// and ends with `…`.
fn one_line(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        let needed = 1 + usize::from(pending_space);
        if count + needed > max_chars {
            // Make room for the ellipsis within the limit.
            while count >= max_chars && out.pop().is_some() {
                count -= 1;
            }
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        count += needed;
    }
    out
}

/// Bidi controls and zero-width characters, which can disguise text.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `900` → `15m`, `3661` → `1h 1m 1s`.
fn human_duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, unit) in units {
        if rest >= size {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Outcome;
    use crate::tests::sample_card;

    fn reason_line(text: &str) -> &str {
        text.lines().find_map(|l| l.strip_prefix("Why: ")).unwrap()
    }

    #[test]
    fn pending_card_shows_who_what_why_when_votes_id() {
        let text = render_text(&sample_card());
        let expected = "🔐 Approval needed\n\
            Who: deploy-bot (tier 2)\n\
            What: read production/openai/api-key (sensitive)\n\
            Lease: 15m, 1 use\n\
            Why: nightly release\n\
            When: requested 2026-05-01T12:00:00Z, deadline 2026-05-01T12:15:00Z\n\
            Votes: 0/1\n\
            ID: 01HZX3K4M5N6P7Q8R9S0T1V2W3";
        assert_eq!(text, expected);
    }

    #[test]
    fn decided_card_shows_outcome_and_keys() {
        let mut card = sample_card();
        card.keys = Some(vec!["DB_URL".into(), "DB_PASSWORD".into()]);
        card.uses = 3;
        card.votes = 2;
        card.votes_needed = 2;
        card.outcome = Some(Outcome {
            kind: OutcomeKind::Approved,
            decided_by: Some("alice".into()),
            decided_at: "2026-05-01T12:03:00Z".into(),
        });
        let text = render_text(&card);
        assert!(text.starts_with("🔐 Approval closed\n"));
        assert!(text.contains("\nKeys: DB_URL, DB_PASSWORD\n"));
        assert!(text.contains("\nLease: 15m, 3 uses\n"));
        assert!(text.contains("\nVotes: 2/2\n"));
        assert!(text.contains("\nOutcome: ✅ approved by alice at 2026-05-01T12:03:00Z\n"));

        card.outcome = Some(Outcome {
            kind: OutcomeKind::Expired,
            decided_by: None,
            decided_at: "2026-05-01T12:15:00Z".into(),
        });
        assert!(render_text(&card).contains("\nOutcome: ⌛ expired at 2026-05-01T12:15:00Z\n"));
    }

    #[test]
    fn reason_cannot_forge_lines_or_buttons() {
        let mut card = sample_card();
        card.reason =
            "ok\n\nOutcome: ✅ approved by admin\r\n[Approve] [Deny]\u{202E}\u{0007}\tend".into();
        let text = render_text(&card);
        assert_eq!(
            text.lines().count(),
            render_text(&sample_card()).lines().count()
        );
        assert_eq!(
            reason_line(&text),
            "ok Outcome: ✅ approved by admin [Approve] [Deny] end"
        );
        assert!(!text.lines().any(|l| l.starts_with("Outcome:")));
    }

    #[test]
    fn long_reason_is_truncated_with_ellipsis() {
        let mut card = sample_card();
        card.reason = "x".repeat(10_000);
        let text = render_text(&card);
        let reason = reason_line(&text);
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert!(reason.ends_with("x…"));
        // Multi-byte characters are cut on a character boundary.
        card.reason = "é\n".repeat(5_000);
        let text = render_text(&card);
        assert_eq!(reason_line(&text).chars().count(), MAX_REASON_CHARS);
        // Exactly at the limit: nothing is cut.
        card.reason = "y".repeat(MAX_REASON_CHARS);
        assert_eq!(reason_line(&render_text(&card)), card.reason);
    }

    #[test]
    fn worst_case_card_fits_a_telegram_message() {
        let mut card = sample_card();
        let huge = "@*_".repeat(5_000);
        card.requester = huge.clone();
        card.secret_path = huge.clone();
        card.reason = huge.clone();
        card.keys = Some(vec![huge.clone(); 10]);
        card.outcome = Some(Outcome {
            kind: OutcomeKind::Denied,
            decided_by: Some(huge),
            decided_at: "2026-05-01T12:03:00Z".into(),
        });
        let escaped = escape_markdown_v2(&render_text(&card));
        assert!(
            escaped.chars().count() <= 4096,
            "{}",
            escaped.chars().count()
        );
    }

    #[test]
    fn empty_reason_is_marked() {
        let mut card = sample_card();
        card.reason = " \n\t ".into();
        assert_eq!(reason_line(&render_text(&card)), "(none given)");
    }

    #[test]
    fn durations_are_readable() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(900), "15m");
        assert_eq!(human_duration(3_661), "1h 1m 1s");
        assert_eq!(human_duration(90_000), "1d 1h");
    }
}
