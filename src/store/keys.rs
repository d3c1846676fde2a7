//! Order-preserving key encoding for the table seam (docs/STORAGE.md): a key becomes bytes
//! whose byte order equals the order of the typed key, so ordered range scans mean the same
//! on every backend (redb's `&[u8]` tables, PostgreSQL's `bytea` primary keys).
//!
//! - a string: its UTF-8 with `0x00` escaped as `0x00 0xFF`, ended by `0x00 0x00` (so `"a"`
//!   sorts before `"a\0"` and `"ab"`, and a tuple's next part cannot bleed into it);
//! - an unsigned integer: 8 bytes big-endian; a signed one: the same with the sign bit flipped;
//! - a tuple: its parts one after the other.

/// A typed key that encodes to order-preserving bytes.
pub trait Key {
    /// Appends the encoding of `self` to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);

    /// The encoding of `self`.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl Key for str {
    fn encode_into(&self, out: &mut Vec<u8>) {
        for &b in self.as_bytes() {
            out.push(b);
            if b == 0 {
                out.push(0xFF);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
}

impl Key for String {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.as_str().encode_into(out);
    }
}

impl<K: Key + ?Sized> Key for &K {
    fn encode_into(&self, out: &mut Vec<u8>) {
        (**self).encode_into(out);
    }
}

impl Key for u64 {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl Key for i64 {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((*self as u64) ^ (1 << 63)).to_be_bytes());
    }
}

impl<A: Key, B: Key> Key for (A, B) {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.0.encode_into(out);
        self.1.encode_into(out);
    }
}

/// Reads keys back from their encoding, part by part.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over an encoded key.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// The next part as a string.
    pub fn string(&mut self) -> Option<String> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match (self.bytes.get(i)?, self.bytes.get(i + 1)) {
                (0, Some(0)) => {
                    self.bytes = &self.bytes[i + 2..];
                    return String::from_utf8(out).ok();
                }
                (0, Some(0xFF)) => {
                    out.push(0);
                    i += 2;
                }
                (0, _) => return None,
                (&b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
    }

    /// The next part as an unsigned integer.
    pub fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.bytes.split_first_chunk::<8>()?;
        self.bytes = rest;
        Some(u64::from_be_bytes(*head))
    }

    /// The next part as a signed integer.
    pub fn i64(&mut self) -> Option<i64> {
        self.u64().map(|u| (u ^ (1 << 63)) as i64)
    }

    /// Nothing is left.
    pub fn is_done(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The smallest key greater than every key that starts with `prefix` (for a prefix range's
/// exclusive end); `None` when no such key exists (all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The encoded prefix shared by every `(first, _)` key: for ranges over a tuple's first part.
pub fn tuple_prefix<A: Key + ?Sized>(first: &A) -> Vec<u8> {
    first.encode()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency needed for an ordering check).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn string(&mut self) -> String {
            let alphabet = ['\0', 'a', 'b', 'z', '/', '-', 'é', '\u{ff}', '0'];
            let n = self.next() % 5;
            (0..n)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }

        fn int(&mut self) -> i64 {
            let picks = [i64::MIN, -1, 0, 1, i64::MAX, 1_796_000_000];
            match self.next() % 3 {
                0 => picks[(self.next() % picks.len() as u64) as usize],
                _ => (self.next() as i64) - (1 << 30),
            }
        }
    }

    #[test]
    fn byte_order_is_the_typed_order() {
        let mut g = Lcg(7);
        let keys: Vec<(String, i64)> = (0..400).map(|_| (g.string(), g.int())).collect();
        for a in &keys {
            for b in keys.iter().take(60) {
                let typed = a.cmp(b);
                let bytes = (a.0.as_str(), a.1)
                    .encode()
                    .cmp(&(b.0.as_str(), b.1).encode());
                assert_eq!(typed, bytes, "{a:?} vs {b:?}");
            }
        }
        let mut g = Lcg(11);
        for _ in 0..2000 {
            let (a, b) = (g.next() << 20 ^ g.next(), g.next() << 20 ^ g.next());
            assert_eq!(a.cmp(&b), a.encode().cmp(&b.encode()));
        }
    }

    #[test]
    fn keys_read_back() {
        let k = (("a\0b/c", 42u64), -7i64).encode();
        let mut r = Reader::new(&k);
        assert_eq!(r.string().as_deref(), Some("a\0b/c"));
        assert_eq!(r.u64(), Some(42));
        assert_eq!(r.i64(), Some(-7));
        assert!(r.is_done());
        assert_eq!(Reader::new(b"ab").string(), None, "unterminated");
        assert_eq!(Reader::new(&[0, 1]).string(), None, "bad escape");
    }

    #[test]
    fn prefixes_bound_ranges() {
        let agent = tuple_prefix("agent-1");
        let end = prefix_end(&agent).unwrap();
        for inside in [("agent-1", "01a"), ("agent-1", ""), ("agent-1", "\u{ff}")] {
            let k = inside.encode();
            assert!(k >= agent && k < end, "{inside:?}");
        }
        for outside in [("agent-10", "x"), ("agent-", "x"), ("agent-2", "")] {
            let k = outside.encode();
            assert!(!(k >= agent && k < end), "{outside:?}");
        }
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
