//! A strict, pure parser for `.env` files, used by `latchkey import .env FILE`.
//!
//! The accepted syntax follows docker compose and python-dotenv where they agree:
//!
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - `KEY=VALUE`, optionally prefixed by `export `, with blanks allowed around the key and `=`;
//!   keys match `[A-Za-z_][A-Za-z0-9_.]*`;
//! - unquoted values are trimmed, and an inline comment starts at a blank followed by `#`
//!   (so `KEY=a#b` keeps `a#b`, `KEY=a #b` gives `a`);
//! - `'single quoted'` values are literal; `"double quoted"` values understand the escapes
//!   `\n \r \t \" \\ \$` (any other backslash is kept as written); both may span lines, and
//!   only blanks or a `# comment` may follow the closing quote;
//! - there is **no variable interpolation**: `$VAR` and `${VAR}` are kept literally;
//! - a UTF-8 byte-order mark at the start and CRLF line endings are accepted.
//!
//! Parsing is all or nothing: any malformed line, unterminated quote or duplicate key is an
//! error, so the caller imports nothing. Error messages carry line numbers and key names but
//! never a value, and values are zeroized when dropped.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

/// One `KEY=VALUE` assignment read from a `.env` file.
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// The value, with quotes removed and escapes applied.
    pub value: Zeroizing<String>,
    /// The 1-based line on which the assignment starts.
    pub line: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value", &format_args!("[redacted]"))
            .field("line", &self.line)
            .finish()
    }
}

/// Why a `.env` file was refused. The message never contains a value.
#[derive(Debug, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The 1-based line the problem was found on.
    pub line: usize,
    /// What is wrong, in words.
    pub message: String,
}

const INVALID_KEY: &str = "invalid key: keys must match [A-Za-z_][A-Za-z0-9_.]*";

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a whole `.env` file; see the module documentation for the accepted syntax.
pub fn parse(input: &str) -> Result<Vec<Entry>, ParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut entries = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut pos = 0;
    let mut line = 0;
    while pos < input.len() {
        line += 1;
        let (current, next) = line_at(input, pos);
        let text = current.trim_start();
        if text.is_empty() || text.starts_with('#') {
            pos = next;
            continue;
        }
        let Some((key, raw)) = strip_export(text).split_once('=') else {
            return Err(error(line, "expected KEY=VALUE"));
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(error(line, INVALID_KEY));
        }
        if let Some(first) = seen.get(key) {
            return Err(error(
                line,
                format!("duplicate key {key}, first defined on line {first}"),
            ));
        }
        let start_line = line;
        let body = raw.trim_start();
        let value = match body.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                // `body` is a suffix of `current`, which starts at `pos`.
                let open = pos + current.len() - body.len();
                let Some((value, after)) = quoted(input, open + 1, quote) else {
                    let kind = if quote == '"' { "double" } else { "single" };
                    return Err(error(line, format!("unterminated {kind}-quoted value")));
                };
                line += input[open..after].matches('\n').count();
                let (trailing, next) = line_at(input, after);
                let trailing = trailing.trim_start();
                if !trailing.is_empty() && !trailing.starts_with('#') {
                    return Err(error(line, "unexpected text after the closing quote"));
                }
                pos = next;
                value
            }
            _ => {
                pos = next;
                Zeroizing::new(strip_inline_comment(raw).trim().to_owned())
            }
        };
        seen.insert(key, start_line);
        entries.push(Entry {
            key: key.to_owned(),
            value,
            line: start_line,
        });
    }
    Ok(entries)
}

/// Returns the rest of the line starting at byte `pos` (without its `\n` or `\r\n`) and the
/// position where the next line starts.
fn line_at(input: &str, pos: usize) -> (&str, usize) {
    let rest = &input[pos..];
    let (current, next) = match rest.find('\n') {
        Some(i) => (&rest[..i], pos + i + 1),
        None => (rest, input.len()),
    };
    (current.strip_suffix('\r').unwrap_or(current), next)
}

/// Removes a leading `export` keyword followed by blanks (a key named `export` is kept).
fn strip_export(text: &str) -> &str {
    match text.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => text,
    }
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Cuts an unquoted value at the first `#` that follows a blank.
fn strip_inline_comment(raw: &str) -> &str {
    let mut previous_blank = false;
    for (i, c) in raw.char_indices() {
        if c == '#' && previous_blank {
            return &raw[..i];
        }
        previous_blank = c == ' ' || c == '\t';
    }
    raw
}

/// Reads a quoted value whose content starts at byte `start` of `input`. Returns the value and
/// the position just after the closing quote, or `None` if the quote is never closed.
fn quoted(input: &str, start: usize, quote: char) -> Option<(Zeroizing<String>, usize)> {
    let text = &input[start..];
    let close = if quote == '"' {
        find_closing_double(text)?
    } else {
        text.find('\'')?
    };
    let content = &text[..close];
    // Reserved up front so the buffer never reallocates and leaves unzeroized copies behind.
    let mut value = Zeroizing::new(String::with_capacity(content.len()));
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\\' if quote == '"' => match chars.peek().copied() {
                Some(e @ ('n' | 'r' | 't' | '"' | '\\' | '$')) => {
                    chars.next();
                    value.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => other,
                    });
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    Some((value, start + close + quote.len_utf8()))
}

/// Finds the closing `"`, skipping any character escaped by a backslash.
fn find_closing_double(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Renders the parsed entries as `KEY=value|KEY=value` for compact assertions.
    fn show(input: &str) -> String {
        let entries = parse(input).unwrap();
        let shown: Vec<String> = entries
            .iter()
            .map(|e| format!("{}={}", e.key, *e.value))
            .collect();
        shown.join("|")
    }

    fn fails(input: &str) -> String {
        parse(input).unwrap_err().to_string()
    }

    #[test]
    fn assignments_whitespace_and_line_numbers() {
        assert_eq!(show("A=1\n  B = two \n\tC\t=\tthree"), "A=1|B=two|C=three");
        assert_eq!(show("_A=1\na.b_C9=2"), "_A=1|a.b_C9=2");
        let entries = parse("# header\n\nA=1\n\nB=\"x\ny\"\nC=3").unwrap();
        let lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 5, 7]);
    }

    #[test]
    fn quotes() {
        assert_eq!(
            show("A='one value'\nB=\"two values\""),
            "A=one value|B=two values"
        );
        assert_eq!(show("A='  padded  '\nB=  \"x\"  "), "A=  padded  |B=x");
        assert_eq!(show("A='say \"hi\"'\nB=\"it's\""), "A=say \"hi\"|B=it's");
        assert_eq!(show("A=a\"b'c"), "A=a\"b'c");
    }

    #[test]
    fn export_prefix() {
        assert_eq!(
            show("export A=1\nexport\tB=2\n  export  C = 3"),
            "A=1|B=2|C=3"
        );
        assert_eq!(show("export=1\nexported=2"), "export=1|exported=2");
        assert_eq!(fails("export A"), "line 1: expected KEY=VALUE");
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(show("# comment\n   # indented\n\n   \nA=1\n#B=2\n"), "A=1");
        assert_eq!(show("\n\n# only comments\n"), "");
        assert_eq!(show(""), "");
    }

    #[test]
    fn inline_comments_and_hashes() {
        assert_eq!(show("A=val # comment\nB=val\t# comment"), "A=val|B=val");
        assert_eq!(
            show("A=val#no-comment\nB=#hash"),
            "A=val#no-comment|B=#hash"
        );
        assert_eq!(show("A= # only a comment"), "A=");
        assert_eq!(show("A='x' # comment\nB=\"y\"# comment"), "A=x|B=y");
        // Inside quotes a `#` is part of the value.
        assert_eq!(show("A='a # b'\nB=\"#1 # two\""), "A=a # b|B=#1 # two");
    }

    #[test]
    fn multi_line_quoted_values() {
        let pem = "K=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT=1\n";
        let want = "K=-----BEGIN KEY-----\nabc\n-----END KEY-----|NEXT=1";
        assert_eq!(show(pem), want);
        assert_eq!(show("K='line 1\n\nline 3' # note"), "K=line 1\n\nline 3");
        let entries = parse("A='x\ny'\nB=2").unwrap();
        assert_eq!((entries[1].key.as_str(), entries[1].line), ("B", 3));
    }

    #[test]
    fn escapes_and_no_interpolation() {
        assert_eq!(show(r#"K="a\nb\rc\td""#), "K=a\nb\rc\td");
        assert_eq!(show(r#"K="q \" b \\ d \$""#), "K=q \" b \\ d $");
        assert_eq!(show(r#"K="C:\Users\x""#), "K=C:\\Users\\x");
        assert_eq!(show(r#"K="ends with \\""#), "K=ends with \\");
        // No escapes in single quotes or unquoted values.
        assert_eq!(show(r"A='a\nb\\'"), r"A=a\nb\\");
        assert_eq!(show(r"A=a\nb"), r"A=a\nb");
        assert_eq!(
            show("A=$HOME/${USER}\nB=\"$HOME\""),
            "A=$HOME/${USER}|B=$HOME"
        );
    }

    #[test]
    fn crlf_line_endings_and_byte_order_mark() {
        let input = "A=1\r\nB = two # c\r\n\r\nC=\"x\r\ny\"\r\nD='p\r\nq'\r\n";
        assert_eq!(show(input), "A=1|B=two|C=x\ny|D=p\nq");
        assert_eq!(fails("A=1\r\nbad\r\n"), "line 2: expected KEY=VALUE");
        assert_eq!(show("\u{feff}A=1"), "A=1");
        assert_eq!(show("\u{feff}# c\nA=1"), "A=1");
    }

    #[test]
    fn malformed_lines_report_their_line() {
        let e = parse("A=1\n\n# c\nnot an assignment\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (4, "expected KEY=VALUE"));
        let invalid = "invalid key: keys must match [A-Za-z_][A-Za-z0-9_.]*";
        assert_eq!(fails("A=1\n1BAD=2"), format!("line 2: {invalid}"));
        for bad in ["MY-KEY=1", "A B=1", "=1", "KÉ=1"] {
            assert_eq!(fails(bad), format!("line 1: {invalid}"), "{bad}");
        }
    }

    #[test]
    fn unterminated_quotes_name_the_opening_line() {
        let double = "line 2: unterminated double-quoted value";
        assert_eq!(fails("A=1\nB=\"open\nstill open\n"), double);
        assert_eq!(fails("A=1\nB=\"escaped close \\\""), double);
        let single = "line 3: unterminated single-quoted value";
        assert_eq!(fails("A=1\n\nB='open"), single);
    }

    #[test]
    fn text_after_closing_quote_is_refused() {
        let message = "unexpected text after the closing quote";
        assert_eq!(fails("A=\"x\"y"), format!("line 1: {message}"));
        assert_eq!(fails("A='x' y"), format!("line 1: {message}"));
        assert_eq!(fails("A=1\nB='x\ny'z"), format!("line 3: {message}"));
    }

    #[test]
    fn duplicates_are_refused() {
        let e = fails("A=1\nB=2\n\nexport A=3");
        assert_eq!(e, "line 4: duplicate key A, first defined on line 1");
    }

    #[test]
    fn empty_unicode_and_equals_values() {
        assert_eq!(show("A=\nB=  \nC=''\nD=\"\"\nE= # c"), "A=|B=|C=|D=|E=");
        assert_eq!(show("A=héllo wörld ✓\nB='ünï'"), "A=héllo wörld ✓|B=ünï");
        assert_eq!(show("A=\"日本語\\n🔑\""), "A=日本語\n🔑");
        assert_eq!(show("A=a=b==c\nB=\"x=y\""), "A=a=b==c|B=x=y");
        let url = "URL=postgres://u:p@h/db?sslmode=require";
        assert_eq!(show(url), url);
    }

    #[test]
    fn debug_and_errors_never_show_values() {
        let entries = parse("TOKEN=sk-secret").unwrap();
        let want = "Entry { key: \"TOKEN\", value: [redacted], line: 1 }";
        assert_eq!(format!("{:?}", entries[0]), want);
        for bad in [
            "sk-secret",
            "A=\"sk-secret",
            "A='sk-secret' x",
            "sk-secret=1",
        ] {
            assert!(!fails(bad).contains("sk-secret"), "{bad}");
        }
    }
}
