//! Redaction of the injected credential from everything the proxy hands back. Each credential
//! is matched on the raw bytes, before any decoding or re-encoding, through the encodings an
//! upstream's echo can carry it in: JSON escapes (`\/`, `\u002b`, surrogate pairs, short
//! escapes), percent-encoding (`%2B`, `+` for a space) and base64 (at any alignment, standard
//! and URL-safe alphabets). At the edge of a cut answer, a prefix of a credential counts as
//! the credential.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Map, Value};

/// What a match is replaced by.
pub const MARK: &str = "[redacted]";
/// A prefix of a credential this long (or half of a shorter one) at the edge of a truncated
/// answer is redacted as if it were the whole credential.
pub const EDGE_PREFIX: usize = 8;
/// Credential forms shorter than this are not matched: they cannot be told from ordinary text.
const MIN_FORM: usize = 4;
/// Base64 fragments of a credential shorter than this are not matched.
const MIN_BASE64: usize = 8;
/// Bound on the matcher's work at one position, per byte of the needle (ambiguous escapes
/// branch; an unambiguous match takes one step per byte).
const BUDGET_PER_BYTE: usize = 4;

/// The credential forms of one proxied call.
pub struct Redactor {
    /// Byte strings to find, longest first.
    needles: Vec<Vec<u8>>,
    /// Bytes a match can start with.
    starts: [bool; 256],
}

impl Redactor {
    /// A redactor for `credentials`: each string that reached the upstream with the call (the
    /// secret, the header value built from it, a basic-auth pair, each entry of a bundle).
    pub fn new<'a>(credentials: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for c in credentials {
            let c = c.as_bytes();
            if c.len() < MIN_FORM {
                continue;
            }
            needles.push(c.to_vec());
            for engine in [STANDARD, URL_SAFE] {
                needles.push(engine.encode(c).into_bytes());
                for offset in 0..3 {
                    let fragment = base64_fragment(&engine, c, offset);
                    if fragment.len() >= MIN_BASE64 {
                        needles.push(fragment);
                    }
                }
            }
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        let mut starts = [false; 256];
        for n in &needles {
            starts[n[0] as usize] = true;
        }
        for b in [b'\\', b'%', b'+'] {
            starts[b as usize] = true;
        }
        Redactor { needles, starts }
    }
}

impl Drop for Redactor {
    fn drop(&mut self) {
        for n in &mut self.needles {
            zeroize::Zeroize::zeroize(n);
        }
    }
}

impl Redactor {
    /// `data` with every credential form replaced by [`MARK`]; when `truncated`, a prefix of a
    /// credential running to the end of `data` is replaced too.
    pub fn bytes(&self, data: &[u8], truncated: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            let mut end = None;
            if self.starts[data[i] as usize] {
                for n in &self.needles {
                    let reach = match match_at(data, i, n) {
                        Found::Whole(e) => Some(e),
                        Found::Edge(k)
                            if truncated && k >= EDGE_PREFIX.min(n.len().div_ceil(2)) =>
                        {
                            Some(data.len())
                        }
                        _ => None,
                    };
                    if reach > end {
                        end = reach;
                    }
                }
            }
            match end {
                Some(e) => {
                    out.extend_from_slice(MARK.as_bytes());
                    i = e;
                }
                None => {
                    out.push(data[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// `text` with every credential form replaced.
    pub fn text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.bytes(text.as_bytes(), false)).into_owned()
    }

    /// A parsed JSON value with every string and key redacted (a second pass over what the
    /// JSON escapes decoded to).
    pub fn json(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (self.text(&k), self.json(v)))
                    .collect::<Map<_, _>>(),
            ),
            other => other,
        }
    }
}

/// The base64 characters that depend only on `c` when it starts `offset` bytes into a longer
/// encoded stream (the ones a longer base64 echo holds whatever surrounds the credential).
fn base64_fragment(engine: &impl Engine, c: &[u8], offset: usize) -> Vec<u8> {
    let mut stream = vec![0u8; offset];
    stream.extend_from_slice(c);
    let encoded = engine.encode(&stream).into_bytes();
    let first = (8 * offset).div_ceil(6);
    let last = 8 * (offset + c.len()) / 6;
    encoded.get(first..last).unwrap_or_default().to_vec()
}

/// The outcome of matching one needle at one position.
#[derive(Debug, PartialEq)]
enum Found {
    /// The whole needle, ending (exclusive) here.
    Whole(usize),
    /// The data ended after this many of the needle's bytes.
    Edge(usize),
    /// No match.
    No,
}

/// Matches `needle` at `data[at..]`, each needle byte given literally or by an escape; the
/// escapes are ambiguous (`\` may be a literal or start an escape), so the alternatives are
/// searched depth-first, within [`BUDGET_PER_BYTE`] steps per needle byte.
fn match_at(data: &[u8], at: usize, needle: &[u8]) -> Found {
    // Most positions fail on their first byte: answer those without allocating.
    if data[at] != needle[0] && !matches!(data[at], b'\\' | b'%' | b'+') {
        return Found::No;
    }
    let mut stack = vec![(at, 0usize)];
    let mut edge = 0;
    let mut steps = 0;
    while let Some((i, k)) = stack.pop() {
        steps += 1;
        if steps > BUDGET_PER_BYTE * needle.len() + 64 {
            break;
        }
        if k == needle.len() {
            return Found::Whole(i);
        }
        if i >= data.len() {
            edge = edge.max(k);
            continue;
        }
        let want = needle[k];
        let b = data[i];
        match b {
            b'%' => match (data.get(i + 1), data.get(i + 2)) {
                (Some(&h), Some(&l)) => {
                    if let (Some(h), Some(l)) = (hex(h), hex(l))
                        && h << 4 | l == want
                    {
                        stack.push((i + 3, k + 1));
                    }
                }
                _ => edge = edge.max(k),
            },
            b'+' if want == b' ' => stack.push((i + 1, k + 1)),
            b'\\' => match json_escape(&data[i..]) {
                Escape::Bytes(len, bytes) => {
                    if needle[k..].starts_with(&bytes) {
                        stack.push((i + len, k + bytes.len()));
                    }
                }
                Escape::Cut => edge = edge.max(k),
                Escape::Not => {}
            },
            _ => {}
        }
        if b == want {
            stack.push((i + 1, k + 1));
        }
    }
    if edge > 0 {
        Found::Edge(edge)
    } else {
        Found::No
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A JSON escape at the start of a slice.
enum Escape {
    /// It spans this many bytes and decodes to these UTF-8 bytes.
    Bytes(usize, Vec<u8>),
    /// The data ends inside it.
    Cut,
    /// Not a JSON escape.
    Not,
}

fn json_escape(s: &[u8]) -> Escape {
    let Some(&c) = s.get(1) else {
        return Escape::Cut;
    };
    let short = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unicode_escape(s),
        _ => return Escape::Not,
    };
    Escape::Bytes(2, vec![short])
}

fn hex4(s: &[u8]) -> Option<u32> {
    let digits = s.get(..4)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | hex(d)? as u32))
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`.
fn unicode_escape(s: &[u8]) -> Escape {
    if s.len() < 6 {
        return if s[2..].iter().all(|&d| hex(d).is_some()) {
            Escape::Cut
        } else {
            Escape::Not
        };
    }
    let Some(hi) = hex4(&s[2..]) else {
        return Escape::Not;
    };
    let (len, code) = if (0xD800..0xDC00).contains(&hi) {
        if s.len() < 12 {
            return Escape::Cut;
        }
        match (&s[6..8], hex4(&s[8..])) {
            (b"\\u", Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                (12, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
            }
            _ => return Escape::Not,
        }
    } else {
        (6, hi)
    };
    match char::from_u32(code) {
        Some(ch) => {
            let mut buf = [0u8; 4];
            Escape::Bytes(len, ch.encode_utf8(&mut buf).as_bytes().to_vec())
        }
        None => Escape::Not,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "AKIA/wJal+rXU€tn😀FEMI";

    fn red(data: &str) -> String {
        Redactor::new([KEY]).text(data)
    }

    #[test]
    fn every_encoding_of_an_echo_is_redacted() {
        let json_escaped = serde_json::to_string(KEY).unwrap();
        let all_u: String = KEY.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
        let percent: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
        for echo in [
            KEY.to_string(),
            json_escaped.trim_matches('"').to_string(),
            KEY.replace('/', "\\/"),
            KEY.replace('+', "\\u002b"),
            KEY.replace('+', "\\u002B").replace('/', "%2f"),
            all_u,
            percent,
            STANDARD.encode(KEY),
            URL_SAFE.encode(KEY),
            STANDARD.encode(format!("user:{KEY}")),
        ] {
            let out = red(&format!("<{echo}>"));
            assert!(!out.contains("wJal"), "{echo} -> {out}");
            assert!(
                out.starts_with('<') && out.ends_with('>'),
                "{echo} -> {out}"
            );
        }
    }

    #[test]
    fn base64_at_any_alignment() {
        for pad in ["", "x", "xy", "xyz"] {
            let enc = STANDARD.encode(format!("{pad}{KEY}:tail"));
            let out = red(&enc);
            assert!(out.contains(MARK), "{pad:?}: {enc} -> {out}");
            // No long run of the credential's own base64 survives.
            let key_b64 = STANDARD.encode(KEY);
            assert!(!out.contains(&key_b64[4..14]), "{out}");
        }
    }

    #[test]
    fn text_without_the_credential_is_unchanged() {
        let text = r#"{"a":"b\/c\u0041 100% + %zz \u12"} AKIA/wJa"#;
        assert_eq!(red(text), text);
    }

    #[test]
    fn a_prefix_at_a_truncation_edge_counts() {
        let r = Redactor::new([KEY]);
        let cut = format!("{{\"echo\":\"{}", &KEY[..9]);
        assert_eq!(
            String::from_utf8(r.bytes(cut.as_bytes(), true)).unwrap(),
            "{\"echo\":\"[redacted]"
        );
        // Escaped, and cut inside an escape.
        let cut = "x AKIA\\/wJal\\u00".to_string();
        assert_eq!(
            String::from_utf8(r.bytes(cut.as_bytes(), true)).unwrap(),
            "x [redacted]"
        );
        // Not truncated: a prefix is ordinary text.
        assert_eq!(
            String::from_utf8(r.bytes(&KEY.as_bytes()[..9], false)).unwrap(),
            &KEY[..9]
        );
        // Too short a prefix is left.
        assert_eq!(
            String::from_utf8(r.bytes(b"AKIA/w", true)).unwrap(),
            "AKIA/w"
        );
    }

    #[test]
    fn json_values_and_keys_are_walked() {
        let r = Redactor::new([KEY]);
        let v = serde_json::json!({"inner": format!("{{\"k\":\"{}\"}}", KEY.replace('/', "\\/")), KEY: 1});
        let out = r.json(v).to_string();
        assert!(!out.contains("wJal"), "{out}");
    }

    #[test]
    fn pathological_escapes_stay_bounded() {
        let r = Redactor::new(["\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\x"]);
        let data = "\\".repeat(20_000);
        assert_eq!(r.bytes(data.as_bytes(), false).len(), data.len());
    }
}
