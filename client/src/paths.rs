//! Building the daemon's URLs: the address checked, each path segment percent-encoded, and
//! the inputs URL normalisation would silently change (`.`/`..` segments) refused first.

use crate::Error;

/// Last path segments the daemon reserves for its actions (`…/versions`, `…/restore`, …).
pub const RESERVED: &[&str] = &["versions", "rollback", "restore", "read"];

/// Checks a daemon address (`http://127.0.0.1:8200/`) and drops trailing slashes.
pub fn normalise_addr(addr: &str) -> Result<String, Error> {
    let addr = addr.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(addr).map_err(|e| {
        Error::Invalid(format!(
            "LATCHKEY_ADDR {addr:?} is not a URL ({e}); e.g. http://127.0.0.1:8200"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Invalid(format!(
            "LATCHKEY_ADDR {addr:?} must be an http:// or https:// URL"
        )));
    }
    Ok(addr.to_string())
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/v1/secrets/{path}` with each segment percent-encoded and the `/`s kept, so that an
/// agent's absolute path `/production/x` becomes `/v1/secrets//production/x`.
///
/// `.` and `..` segments are refused here: URL normalisation would otherwise silently turn
/// `a/../b` into another secret's address before the daemon could refuse it. So is a
/// reserved last segment, which the daemon would read as an action on the parent path.
pub fn secret_url(path: &str) -> Result<String, Error> {
    if path.is_empty() || path == "/" {
        return Err(Error::Invalid(
            "give a secret path, e.g. production/openai/api-key".into(),
        ));
    }
    let mut url = String::from("/v1/secrets/");
    for (i, seg) in path.split('/').enumerate() {
        if seg == "." || seg == ".." {
            return Err(Error::Invalid(format!(
                "invalid_path: path may not contain `.` or `..` segments: {path}"
            )));
        }
        if i > 0 {
            url.push('/');
        }
        url.push_str(&encode_segment(seg));
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    if RESERVED.contains(&last) {
        return Err(Error::Invalid(format!(
            "invalid_path: {path}: the last segment may not be one of {RESERVED:?}"
        )));
    }
    Ok(url)
}

/// `/v1/{collection}/{id}` with the id percent-encoded.
pub fn item_url(collection: &str, id: &str) -> Result<String, Error> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(Error::Invalid("give an id".into()));
    }
    Ok(format!("/v1/{collection}/{}", encode_segment(id)))
}

/// `/v1/{collection}/{pattern}` for a path glob (`production/**`): each segment
/// percent-encoded, the `/`s kept; `.` and `..` segments refused as in [`secret_url`].
pub fn pattern_url(collection: &str, pattern: &str) -> Result<String, Error> {
    if pattern.is_empty() {
        return Err(Error::Invalid("give a pattern, e.g. production/**".into()));
    }
    let mut url = format!("/v1/{collection}/");
    for (i, seg) in pattern.split('/').enumerate() {
        if seg == "." || seg == ".." {
            return Err(Error::Invalid(format!(
                "invalid pattern {pattern:?}: no `.` or `..` segments"
            )));
        }
        if i > 0 {
            url.push('/');
        }
        url.push_str(&encode_segment(seg));
    }
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_urls_keep_slashes_and_encode_segments() {
        assert_eq!(
            secret_url("production/openai/api-key").unwrap(),
            "/v1/secrets/production/openai/api-key"
        );
        assert_eq!(
            secret_url("/production/x").unwrap(),
            "/v1/secrets//production/x"
        );
        assert_eq!(
            secret_url("a/b c/d@e+f=g:h?#%").unwrap(),
            "/v1/secrets/a/b%20c/d%40e%2Bf%3Dg%3Ah%3F%23%25"
        );
        assert_eq!(secret_url("é").unwrap(), "/v1/secrets/%C3%A9");
        for bad in ["", "/", "a/../b", "..", "./a", "a/.", "a/versions", "read"] {
            assert!(secret_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(item_url("agents", "01AB").unwrap(), "/v1/agents/01AB");
        assert_eq!(item_url("agents", "a/b").unwrap(), "/v1/agents/a%2Fb");
        assert!(item_url("agents", "..").is_err());
        assert_eq!(
            pattern_url("approval-policies", "prod/**").unwrap(),
            "/v1/approval-policies/prod/%2A%2A"
        );
        assert!(pattern_url("approval-policies", "a/../b").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalise_addr("http://127.0.0.1:8200/").unwrap(),
            "http://127.0.0.1:8200"
        );
        assert!(normalise_addr("127.0.0.1:8200").is_err());
        assert!(normalise_addr("ftp://x").is_err());
    }
}
