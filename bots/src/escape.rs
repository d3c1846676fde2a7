//! Escaping untrusted text for chat markup: Telegram MarkdownV2 and Discord markdown.
//!
//! Applied by the platform clients to the whole text of a card (see
//! [`crate::card::render_text`]), so nothing in it is read as markup, a link
//! or a mention.

/// Escapes text for Telegram's MarkdownV2: every character that MarkdownV2
/// treats specially, and the backslash itself, gets a backslash.
pub fn escape_markdown_v2(s: &str) -> String {
    const SPECIAL: &str = "_*[]()~`>#+-=|{}.!\\";
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text for Discord markdown and neutralises mentions.
///
/// Markup characters get a backslash (including `[` and `]`, which would
/// otherwise allow masked links). A zero-width space after every `@` defuses
/// `@everyone`, `@here` and `<@id>` mentions. This is defence in depth: the
/// Discord client must also send `allowed_mentions` with nothing allowed.
pub fn escape_discord_markdown(s: &str) -> String {
    const SPECIAL: &str = "\\*_~`|>#[]";
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
        if c == '@' {
            out.push('\u{200B}');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::render_text;
    use crate::tests::sample_card;

    /// True if every MarkdownV2 special character is preceded by a backslash.
    fn fully_escaped_v2(s: &str) -> bool {
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if chars.next().is_none() {
                    return false;
                }
            } else if "_*[]()~`>#+-=|{}.!".contains(c) {
                return false;
            }
        }
        true
    }

    #[test]
    fn markdown_v2_escapes_everything_special() {
        assert_eq!(escape_markdown_v2("a_b*c"), "a\\_b\\*c");
        assert_eq!(escape_markdown_v2("\\"), "\\\\");
        let all = "_*[]()~`>#+-=|{}.!\\";
        assert_eq!(
            escape_markdown_v2(all).chars().count(),
            all.chars().count() * 2
        );
        let mut card = sample_card();
        card.reason = "*bold* [✅ Approve](tg://resolve?domain=evil) `x` ||s|| \\".into();
        let escaped = escape_markdown_v2(&render_text(&card));
        assert!(fully_escaped_v2(&escaped), "{escaped}");
        assert!(escaped.contains("\\[✅ Approve\\]\\(tg://resolve?domain\\=evil\\)"));
    }

    #[test]
    fn discord_escapes_markup_and_mentions() {
        assert_eq!(
            escape_discord_markdown("**b** _i_ ~~s~~"),
            "\\*\\*b\\*\\* \\_i\\_ \\~\\~s\\~\\~"
        );
        assert_eq!(
            escape_discord_markdown("`c` ||x|| > q # h \\"),
            "\\`c\\` \\|\\|x\\|\\| \\> q \\# h \\\\"
        );
        assert_eq!(
            escape_discord_markdown("[Approve](https://e.x)"),
            "\\[Approve\\](https://e.x)"
        );
        let zw = '\u{200B}';
        assert_eq!(
            escape_discord_markdown("@everyone"),
            format!("@{zw}everyone")
        );
        assert_eq!(escape_discord_markdown("hi @here"), format!("hi @{zw}here"));
        assert_eq!(
            escape_discord_markdown("<@123> <@&9>"),
            format!("<@{zw}123\\> <@{zw}&9\\>")
        );
        assert!(!escape_discord_markdown("@everyone @here").contains("@everyone"));
    }

    #[test]
    fn discord_card_reason_cannot_ping_or_link() {
        let mut card = sample_card();
        card.reason = "@everyone **APPROVED** [Approve](https://evil.example)\n> quote".into();
        let escaped = escape_discord_markdown(&render_text(&card));
        assert!(!escaped.contains("@everyone"));
        assert!(escaped.contains("\\*\\*APPROVED\\*\\* \\[Approve\\](https://evil.example)"));
        assert!(escaped.contains(" \\> quote"));
    }
}
