//! A small HTTP client for the daemon: bearer authentication, path building, and one clear
//! line for every failure (daemon unreachable, token refused, or the API's `code: message`).

use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zeroize::Zeroizing;

use super::GlobalOpts;
use super::exit::{Exit, bail_as, fail};

/// Last path segments the daemon reserves for its actions (`…/versions`, `…/restore`, …).
pub const RESERVED: &[&str] = &["versions", "rollback", "restore", "read"];

/// Timeout of an ordinary request.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a long poll (the daemon holds those for up to a minute).
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(70);

/// A connection to one daemon with one credential.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// None only for [`Client::anonymous`], which reaches the unauthenticated endpoints.
    token: Option<SecretString>,
    timeout: Duration,
}

impl Client {
    /// A client with the ordinary timeout. Fails before any request when no token is set.
    pub fn new(opts: &GlobalOpts) -> anyhow::Result<Client> {
        Client::with_timeout(opts, TIMEOUT)
    }

    /// A client with the given request timeout.
    pub fn with_timeout(opts: &GlobalOpts, timeout: Duration) -> anyhow::Result<Client> {
        let token = opts
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                fail(
                    Exit::Refused,
                    "no token: set LATCHKEY_TOKEN (or --token) to an admin token, agent key, scoped token or approver token",
                )
            })?;
        let mut client = Client::anonymous(opts, timeout)?;
        client.token = Some(SecretString::from(token));
        Ok(client)
    }

    /// A client without a credential, for `/readyz` and `/healthz`.
    pub fn anonymous(opts: &GlobalOpts, timeout: Duration) -> anyhow::Result<Client> {
        let base = normalise_addr(&opts.addr)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base,
            token: None,
            timeout,
        })
    }

    /// The daemon's address, as requests use it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, answering the status and JSON body whatever the status (for `/readyz`,
    /// whose 503 carries the checks that failed).
    pub async fn probe(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        let body = serde_json::from_slice(&bytes).map_err(|_| {
            anyhow!(
                "unexpected answer from {}: HTTP {status} without a JSON body (is this a Latchkey daemon?)",
                self.base
            )
        })?;
        Ok((status, body))
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.request(Method::GET, path, query, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(Method::POST, path, &[], Some(serde_json::to_vec(body)?))
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(Method::PUT, path, &[], Some(serde_json::to_vec(body)?))
            .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(Method::PATCH, path, &[], Some(serde_json::to_vec(body)?))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::DELETE, path, &[], None).await
    }

    /// Sends one request; `body` is JSON bytes (the caller owns any zeroizing of its copy).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let (status, bytes) = self.send(method, path, query, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|_| {
            anyhow!(
                "unexpected answer from {}: HTTP {status} without a JSON body (is this a Latchkey daemon?)",
                self.base
            )
        })
    }

    /// Sends one request whose answer holds a secret value: the successful body is returned
    /// as bytes in a buffer that is zeroized when dropped.
    pub async fn request_secret(
        &self,
        method: Method,
        path: &str,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(self.send(method, path, &[], None).await?.1)
    }

    /// `POST path` with a JSON body, for an answer that holds secret values: the successful
    /// body is returned as bytes in a buffer that is zeroized when dropped.
    pub async fn post_secret(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(self.send(Method::POST, path, &[], Some(body)).await?.1)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(reqwest::StatusCode, Zeroizing<Vec<u8>>)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(HttpError::new(status.as_u16(), &bytes).into());
        }
        // `Vec::from` takes over the buffer when it is not shared, leaving no second copy.
        Ok((status, Zeroizing::new(Vec::from(bytes))))
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let line = if e.is_connect() {
            format!(
                "cannot reach the Latchkey daemon at {}: is it running? (set LATCHKEY_ADDR)",
                self.base
            )
        } else if e.is_timeout() {
            format!(
                "the Latchkey daemon at {} did not answer within {} s",
                self.base,
                self.timeout.as_secs()
            )
        } else {
            format!("request to {} failed: {}", self.base, root_cause(e))
        };
        fail(Exit::Unreachable, line)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Checks `--addr` and drops trailing slashes.
pub fn normalise_addr(addr: &str) -> anyhow::Result<String> {
    let addr = addr.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(addr).map_err(|e| {
        fail(
            Exit::Usage,
            format!("LATCHKEY_ADDR {addr:?} is not a URL ({e}); e.g. http://127.0.0.1:8200"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail_as!(
            Exit::Usage,
            "LATCHKEY_ADDR {addr:?} must be an http:// or https:// URL"
        );
    }
    Ok(addr.to_string())
}

/// A failed response: its HTTP status, the API's error code and message, and the one line
/// shown for it. Callers find it with [`http_error`] to react to a status or code.
#[derive(Debug)]
pub struct HttpError {
    /// HTTP status.
    pub status: u16,
    /// The API's stable error code (`already_decided`, `access_denied`, …), when given.
    pub code: Option<String>,
    /// The API's message on one line, when given.
    pub message: Option<String>,
    line: String,
}

impl HttpError {
    /// Reads a failed response's body.
    pub fn new(status: u16, body: &[u8]) -> HttpError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let field = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str);
        let code = field("code").map(str::to_string);
        let message = field("message").map(one_line);
        let line = if status == 401 {
            "the daemon refused the token (set LATCHKEY_TOKEN to an admin token, agent key or scoped token)".into()
        } else {
            match (&code, &message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                _ => {
                    let snippet = one_line(&String::from_utf8_lossy(body));
                    if snippet.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!(
                            "HTTP {status}: {}",
                            snippet.chars().take(200).collect::<String>()
                        )
                    }
                }
            }
        };
        HttpError {
            status,
            code,
            message,
            line,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for HttpError {}

/// The failed response behind an error, if that is what it is.
pub fn http_error(e: &anyhow::Error) -> Option<&HttpError> {
    e.downcast_ref::<HttpError>()
}

/// The one line shown for a failed response.
pub fn error_line(status: u16, body: &[u8]) -> String {
    HttpError::new(status, body).to_string()
}

/// Collapses whitespace and control characters so an error stays on one line.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
pub fn secret_url(path: &str) -> anyhow::Result<String> {
    if path.is_empty() || path == "/" {
        bail_as!(
            Exit::Usage,
            "give a secret path, e.g. production/openai/api-key"
        );
    }
    let mut url = String::from("/v1/secrets/");
    for (i, seg) in path.split('/').enumerate() {
        if seg == "." || seg == ".." {
            bail_as!(
                Exit::Usage,
                "invalid_path: path may not contain `.` or `..` segments: {path}"
            );
        }
        if i > 0 {
            url.push('/');
        }
        url.push_str(&encode_segment(seg));
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    if RESERVED.contains(&last) {
        bail_as!(
            Exit::Usage,
            "invalid_path: {path}: the last segment may not be one of {RESERVED:?}"
        );
    }
    Ok(url)
}

/// `/v1/{collection}/{id}` with the id percent-encoded.
pub fn item_url(collection: &str, id: &str) -> anyhow::Result<String> {
    if id.is_empty() || id == "." || id == ".." {
        bail_as!(Exit::Usage, "give an id");
    }
    Ok(format!("/v1/{collection}/{}", encode_segment(id)))
}

/// `/v1/{collection}/{pattern}` for a path glob (`production/**`): each segment
/// percent-encoded, the `/`s kept; `.` and `..` segments refused as in [`secret_url`].
pub fn pattern_url(collection: &str, pattern: &str) -> anyhow::Result<String> {
    if pattern.is_empty() {
        bail_as!(Exit::Usage, "give a pattern, e.g. production/**");
    }
    let mut url = format!("/v1/{collection}/");
    for (i, seg) in pattern.split('/').enumerate() {
        if seg == "." || seg == ".." {
            bail_as!(
                Exit::Usage,
                "invalid pattern {pattern:?}: no `.` or `..` segments"
            );
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
    fn error_lines() {
        let body = br#"{"error":{"code":"version_conflict","message":"version conflict: expected version 1, current is 2"}}"#;
        assert_eq!(
            error_line(409, body),
            "version_conflict: version conflict: expected version 1, current is 2"
        );
        assert!(error_line(401, body).starts_with("the daemon refused the token"));
        assert_eq!(
            error_line(
                400,
                br#"{"error":{"code":"bad_request","message":"two\nlines"}}"#
            ),
            "bad_request: two lines"
        );
        assert_eq!(error_line(502, b"Bad gateway\n"), "HTTP 502: Bad gateway");
        assert_eq!(error_line(500, b""), "HTTP 500");
        let e = HttpError::new(
            409,
            br#"{"error":{"code":"already_decided","message":"already decided"}}"#,
        );
        assert_eq!(
            (e.status, e.code.as_deref(), e.message.as_deref()),
            (409, Some("already_decided"), Some("already decided"))
        );
        let any: anyhow::Error = e.into();
        assert_eq!(http_error(&any).map(|e| e.status), Some(409));
        assert_eq!(any.to_string(), "already_decided: already decided");
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

    #[test]
    fn missing_token_fails_before_any_request() {
        let opts = GlobalOpts {
            addr: "http://127.0.0.1:1".into(),
            token: Some("  ".into()),
            json: false,
        };
        let err = Client::new(&opts).err().unwrap().to_string();
        assert!(err.contains("LATCHKEY_TOKEN"), "{err}");
    }
}
