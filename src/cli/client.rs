//! The CLI's side of the typed client (`latchkey-client`): builds a client from the global
//! options, refuses a missing token before any request, and turns the client's one error
//! type into `anyhow` errors whose class ([`super::exit::classify`]) picks the exit code.
//! URL building, bearer authentication, transport and the daemon's error shape live in the
//! client crate.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use zeroize::Zeroizing;

use super::GlobalOpts;
use super::exit::{Exit, fail};

pub use latchkey_client::{ApiError as HttpError, LONG_POLL_TIMEOUT, RESERVED, TIMEOUT};

/// A connection to one daemon with one credential.
pub struct Client {
    inner: latchkey_client::Client,
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
        Client::build(opts, Some(token), timeout)
    }

    /// A client without a credential, for `/readyz` and `/healthz`.
    pub fn anonymous(opts: &GlobalOpts, timeout: Duration) -> anyhow::Result<Client> {
        Client::build(opts, None, timeout)
    }

    fn build(opts: &GlobalOpts, token: Option<&str>, timeout: Duration) -> anyhow::Result<Client> {
        let http = latchkey_client::http_client(
            timeout,
            concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")),
        )?;
        let inner = latchkey_client::Client::with_http(http, &opts.addr, token, timeout)?;
        Ok(Client { inner })
    }

    /// The typed client underneath, for its typed calls.
    pub fn typed(&self) -> &latchkey_client::Client {
        &self.inner
    }

    /// The daemon's address, as requests use it.
    pub fn base(&self) -> &str {
        self.inner.base()
    }

    /// `GET path`, answering the status and JSON body whatever the status.
    pub async fn probe(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        Ok(self.inner.probe(path).await?)
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        Ok(self.inner.get(path, query).await?)
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.inner.post(path, body).await?)
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.inner.put(path, body).await?)
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.inner.patch(path, body).await?)
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.inner.delete(path).await?)
    }

    /// Sends one request; `body` is JSON bytes (the caller owns any zeroizing of its copy).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        Ok(self.inner.request(method, path, query, body).await?)
    }

    /// Sends one request whose answer holds a secret value (zeroized when dropped).
    pub async fn request_secret(
        &self,
        method: Method,
        path: &str,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(self.inner.request_secret(method, path).await?)
    }

    /// `POST path` with a JSON body, for an answer that holds secret values.
    pub async fn post_secret(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        Ok(self.inner.post_secret(path, body).await?)
    }
}

/// The daemon's refusal behind an error, if that is what it is.
pub fn http_error(e: &anyhow::Error) -> Option<&HttpError> {
    e.chain()
        .find_map(|c| c.downcast_ref::<latchkey_client::Error>())
        .and_then(latchkey_client::Error::api)
}

/// `/v1/secrets/{path}`, see [`latchkey_client::secret_url`].
pub fn secret_url(path: &str) -> anyhow::Result<String> {
    Ok(latchkey_client::secret_url(path)?)
}

/// `/v1/{collection}/{id}`, see [`latchkey_client::item_url`].
pub fn item_url(collection: &str, id: &str) -> anyhow::Result<String> {
    Ok(latchkey_client::item_url(collection, id)?)
}

/// `/v1/{collection}/{pattern}`, see [`latchkey_client::pattern_url`].
pub fn pattern_url(collection: &str, pattern: &str) -> anyhow::Result<String> {
    Ok(latchkey_client::pattern_url(collection, pattern)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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

    #[test]
    fn refusals_are_found_through_context() {
        let e: anyhow::Error = latchkey_client::Error::from(HttpError::new(
            409,
            br#"{"error":{"code":"already_decided","message":"already decided"}}"#,
        ))
        .into();
        let e = e.context("vote");
        assert_eq!(http_error(&e).map(|h| h.status), Some(409));
        let bad = secret_url("a/../b").unwrap_err();
        assert_eq!(super::super::exit::classify(&bad), Exit::Usage);
    }
}
