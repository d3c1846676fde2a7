//! A typed async client for the Latchkey daemon's `/v1` API, over reqwest.
//!
//! It knows nothing of the daemon's crate: the answers it needs are its own serde types
//! ([`types`]), wide ones are `serde_json::Value`. Secret values come back wrapped
//! (`secrecy::SecretString`, bodies in `zeroize` buffers). Every failure is one [`Error`]:
//! the daemon's refusal with its status, stable code and message, a transport failure, or
//! input refused before sending. The CLI, the MCP server, the benchmark and the tests use it.
//!
//! ```no_run
//! # async fn f() -> Result<(), latchkey_client::Error> {
//! let lk = latchkey_client::Client::new("http://127.0.0.1:8200", "lk_agent_…")?;
//! let me = lk.whoami().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod api;
mod error;
pub mod paths;
pub mod types;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zeroize::Zeroizing;

pub use error::{ApiError, Error};
pub use paths::{RESERVED, encode_segment, item_url, normalise_addr, pattern_url, secret_url};
pub use types::*;

/// Timeout of an ordinary request.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a long poll (the daemon holds those for up to a minute).
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(70);
/// The longest `wait` the daemon accepts on `GET /v1/leases/{id}`.
pub const MAX_LEASE_WAIT_SECONDS: u64 = 60;

/// A connection to one daemon with one credential (or none, for `/readyz` and `/healthz`).
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Builds the reqwest client every [`Client`] uses: one timeout for every request (long polls
/// included, so give at least [`LONG_POLL_TIMEOUT`] to a client that waits) and a user agent.
pub fn http_client(timeout: Duration, user_agent: &str) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {e}")))
}

impl Client {
    /// A client for `addr` with `token` and the ordinary timeout.
    pub fn new(addr: &str, token: &str) -> Result<Client, Error> {
        let http = http_client(
            TIMEOUT,
            concat!("latchkey-client/", env!("CARGO_PKG_VERSION")),
        )?;
        Client::with_http(http, addr, Some(token), TIMEOUT)
    }

    /// A client over an existing reqwest client (sharing its pool), with `token` (None to
    /// reach only the unauthenticated endpoints). `timeout` is the one `http` was built with,
    /// for error messages.
    pub fn with_http(
        http: reqwest::Client,
        addr: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Client, Error> {
        Ok(Client {
            http,
            base: normalise_addr(addr)?,
            token: token.map(SecretString::from),
            timeout,
        })
    }

    /// The same daemon and pool with another credential.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(SecretString::from(token)),
            ..self.clone()
        }
    }

    /// The daemon's address, as requests use it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`, answering the status and JSON body whatever the status (for `/readyz`,
    /// whose 503 carries the checks that failed).
    pub async fn probe(&self, path: &str) -> Result<(u16, Value), Error> {
        let (status, bytes) = self.exchange(Method::GET, path, &[], None).await?;
        let body = serde_json::from_slice(&bytes).map_err(|_| self.unexpected(status))?;
        Ok((status.as_u16(), body))
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        self.request(Method::GET, path, query, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.request(Method::POST, path, &[], Some(json_bytes(body)))
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.request(Method::PUT, path, &[], Some(json_bytes(body)))
            .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.request(Method::PATCH, path, &[], Some(json_bytes(body)))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, Error> {
        self.request(Method::DELETE, path, &[], None).await
    }

    /// Sends one request and reads its JSON answer (Null when empty); `body` is JSON bytes
    /// (the caller owns any zeroizing of its copy).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Value, Error> {
        let (status, bytes) = self.send(method, path, query, body).await?;
        self.json(status, &bytes)
    }

    /// Sends one request whose answer holds a secret value: the successful body is returned
    /// as bytes in a buffer that is zeroized when dropped.
    pub async fn request_secret(
        &self,
        method: Method,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        Ok(self.send(method, path, &[], None).await?.1)
    }

    /// `POST path` with a JSON body, for an answer that holds secret values: the successful
    /// body is returned as bytes in a buffer that is zeroized when dropped.
    pub async fn post_secret(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        Ok(self.send(Method::POST, path, &[], Some(body)).await?.1)
    }

    /// Sends one request; a non-2xx answer is an [`Error::Api`]. The successful status and body
    /// (zeroized on drop) are returned.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), Error> {
        let (status, bytes) = self.exchange(method, path, query, body).await?;
        if !status.is_success() {
            return Err(ApiError::new(status.as_u16(), &bytes).into());
        }
        Ok((status, bytes))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), Error> {
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
        // `Vec::from` takes over the buffer when it is not shared, leaving no second copy.
        Ok((status, Zeroizing::new(Vec::from(bytes))))
    }

    fn json<T: serde::de::DeserializeOwned + Default>(
        &self,
        status: StatusCode,
        bytes: &[u8],
    ) -> Result<T, Error> {
        if bytes.is_empty() {
            return Ok(T::default());
        }
        serde_json::from_slice(bytes).map_err(|_| self.unexpected(status))
    }

    fn unexpected(&self, status: StatusCode) -> Error {
        Error::Unexpected {
            base: self.base.clone(),
            status: status.as_u16(),
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> Error {
        let base = self.base.clone();
        if e.is_connect() {
            Error::Unreachable { base }
        } else if e.is_timeout() {
            Error::Timeout {
                base,
                seconds: self.timeout.as_secs(),
            }
        } else {
            Error::Transport {
                base,
                cause: root_cause(e),
            }
        }
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    // Serialising a Value cannot fail (its keys are strings).
    serde_json::to_vec(v).unwrap_or_default()
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
