//! The typed calls, one per route the CLI, the MCP server and the tests need. Each builds its
//! URL with [`crate::paths`] and reads its answer into [`crate::types`] (or a `Value` where the
//! answer is wide).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::types::{
    Decision, Lease, LeaseRequest, LeaseState, MintToken, MintedToken, PutSecret, ReadOutcome,
    SecretValue, WhoAmI,
};
use crate::{Client, Error, item_url, secret_url};

/// `PUT /v1/secrets/{path}`'s body, borrowing the values so the only serialised copy is the
/// zeroized buffer.
#[derive(Serialize)]
struct PutBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    secret_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    if_version: Option<u64>,
}

impl Client {
    /// `GET /v1/whoami`: the caller's credential.
    pub async fn whoami(&self) -> Result<WhoAmI, Error> {
        self.typed(Method::GET, "/v1/whoami", &[], None).await
    }

    /// `PUT /v1/secrets/{path}`: create or update (a value makes a new version).
    pub async fn put_secret(&self, path: &str, secret: &PutSecret) -> Result<Value, Error> {
        let body = PutBody {
            value: secret.value.as_ref().map(|v| v.expose_secret()),
            entries: secret.entries.as_ref().map(|e| {
                e.iter()
                    .map(|(k, v)| (k.as_str(), v.expose_secret()))
                    .collect()
            }),
            secret_type: secret.secret_type.as_deref(),
            sensitivity: secret.sensitivity.as_deref(),
            metadata: secret.metadata.as_ref(),
            if_version: secret.if_version,
        };
        // Sized up front (JSON escapes at most 6 bytes a byte) so no grown-out-of buffer
        // holding the value is left behind unzeroized.
        let len = secret.value.as_ref().map_or(0, |v| v.expose_secret().len())
            + secret.entries.as_ref().map_or(0, |e| {
                e.iter()
                    .map(|(k, v)| k.len() + v.expose_secret().len())
                    .sum()
            });
        let mut buf = Zeroizing::new(Vec::with_capacity(len * 6 + 4096));
        serde_json::to_writer(&mut *buf, &body)
            .map_err(|e| Error::Invalid(format!("cannot encode the secret: {e}")))?;
        self.request(Method::PUT, &secret_url(path)?, &[], Some(buf.to_vec()))
            .await
    }

    /// `GET /v1/secrets/{path}`: metadata, never the value.
    pub async fn describe_secret(&self, path: &str) -> Result<Value, Error> {
        self.get(&secret_url(path)?, &[]).await
    }

    /// `GET /v1/secrets?prefix=&after=&limit=`: one page (`secrets`, `next`).
    pub async fn list_secrets(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value, Error> {
        let mut q = Vec::new();
        if let Some(p) = prefix {
            q.push(("prefix", p.to_string()));
        }
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get("/v1/secrets", &q).await
    }

    /// `DELETE /v1/secrets/{path}`: soft delete.
    pub async fn delete_secret(&self, path: &str) -> Result<Value, Error> {
        self.delete(&secret_url(path)?).await
    }

    /// `POST /v1/secrets/{path}/restore`.
    pub async fn restore_secret(&self, path: &str) -> Result<Value, Error> {
        self.post(&format!("{}/restore", secret_url(path)?), &json!({}))
            .await
    }

    /// `GET /v1/secrets/{path}/versions`.
    pub async fn secret_versions(&self, path: &str) -> Result<Value, Error> {
        self.get(&format!("{}/versions", secret_url(path)?), &[])
            .await
    }

    /// `POST /v1/secrets/{path}/read`: a single-use read lease in one call; the value when
    /// the approval matrix lets it through at once, else the pending lease.
    pub async fn read_secret(
        &self,
        path: &str,
        reason: &str,
        keys: Option<&[String]>,
    ) -> Result<ReadOutcome, Error> {
        let mut body = json!({ "reason": reason });
        if let Some(k) = keys {
            body["keys"] = json!(k);
        }
        let url = format!("{}/read", secret_url(path)?);
        let (status, bytes) = self
            .send(Method::POST, &url, &[], Some(body.to_string().into_bytes()))
            .await?;
        if status == StatusCode::ACCEPTED {
            return Ok(ReadOutcome::Pending(self.parse(status, &bytes)?));
        }
        Ok(ReadOutcome::Value(self.parse(status, &bytes)?))
    }

    /// `POST /v1/leases`.
    pub async fn request_lease(&self, req: &LeaseRequest) -> Result<Lease, Error> {
        let body = serde_json::to_vec(req).map_err(|e| Error::Invalid(e.to_string()))?;
        self.typed(Method::POST, "/v1/leases", &[], Some(body))
            .await
    }

    /// `GET /v1/leases/{id}`; with `wait` (≤ 60 s) the daemon answers as soon as the lease is
    /// no longer in state `seen` (a long poll: give this client [`crate::LONG_POLL_TIMEOUT`]).
    pub async fn lease(&self, id: &str, wait: Option<(u64, LeaseState)>) -> Result<Lease, Error> {
        let mut q = Vec::new();
        if let Some((secs, seen)) = wait {
            q.push(("wait", secs.min(crate::MAX_LEASE_WAIT_SECONDS).to_string()));
            q.push(("seen", seen.as_str().to_string()));
        }
        self.typed(Method::GET, &item_url("leases", id)?, &q, None)
            .await
    }

    /// `POST /v1/leases/{id}/secret`: one use of a read lease.
    pub async fn use_lease(&self, id: &str) -> Result<SecretValue, Error> {
        let url = format!("{}/secret", item_url("leases", id)?);
        let (status, bytes) = self.send(Method::POST, &url, &[], None).await?;
        self.parse(status, &bytes)
    }

    /// `DELETE /v1/leases/{id}?reason=` (a pending lease's approval is cancelled).
    pub async fn revoke_lease(&self, id: &str, reason: Option<&str>) -> Result<Lease, Error> {
        let q: Vec<_> = reason
            .map(|r| ("reason", r.to_string()))
            .into_iter()
            .collect();
        self.typed(Method::DELETE, &item_url("leases", id)?, &q, None)
            .await
    }

    /// `GET /v1/leases?state=&limit=&before=`: a page, newest first.
    pub async fn list_leases(
        &self,
        state: Option<LeaseState>,
        limit: Option<usize>,
        before: Option<&str>,
    ) -> Result<Value, Error> {
        let mut q = Vec::new();
        if let Some(s) = state {
            q.push(("state", s.as_str().to_string()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        self.get("/v1/leases", &q).await
    }

    /// `POST /v1/tokens`: a scoped token covered by the caller's credential.
    pub async fn mint_token(&self, req: &MintToken) -> Result<MintedToken, Error> {
        let body = serde_json::to_vec(req).map_err(|e| Error::Invalid(e.to_string()))?;
        let (status, bytes) = self
            .send(Method::POST, "/v1/tokens", &[], Some(body))
            .await?;
        self.parse(status, &bytes)
    }

    /// `GET /v1/services`: the proxy services.
    pub async fn list_services(&self) -> Result<Value, Error> {
        self.get("/v1/services", &[]).await
    }

    /// `POST /v1/proxy/{service}/{endpoint}`: one use of a proxy lease; the daemon injects
    /// the credential and redacts any echo of it from the answer.
    pub async fn call_service(
        &self,
        service: &str,
        endpoint: &str,
        lease_id: &str,
        params: Map<String, Value>,
    ) -> Result<Value, Error> {
        let url = format!(
            "/v1/proxy/{}/{}",
            crate::encode_segment(service),
            crate::encode_segment(endpoint)
        );
        self.post(&url, &json!({"lease_id": lease_id, "params": params}))
            .await
    }

    /// `GET /v1/approvals?state=pending|all`.
    pub async fn list_approvals(&self, all: bool) -> Result<Value, Error> {
        let state = if all { "all" } else { "pending" };
        self.get("/v1/approvals", &[("state", state.into())]).await
    }

    /// `POST /v1/approvals/{id}/votes`.
    pub async fn vote(
        &self,
        approval_id: &str,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<Value, Error> {
        let mut body = json!({ "decision": decision.as_str() });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.post(
            &format!("{}/votes", item_url("approvals", approval_id)?),
            &body,
        )
        .await
    }

    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let (status, bytes) = self.send(method, path, query, body).await?;
        self.parse(status, &bytes)
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        status: StatusCode,
        bytes: &[u8],
    ) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|_| Error::Unexpected {
            base: self.base().to_string(),
            status: status.as_u16(),
        })
    }
}
