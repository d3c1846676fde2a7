//! Set-up calls to the daemon's API (admin and agent), and a local HTTP server for the
//! phases that need a counterpart (webhook receiver, proxy upstream).

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The daemon, its admin token and the shared client.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub admin: String,
}

impl Api {
    /// The typed client crate (`latchkey-client`, what the CLI uses) as `token`, over the shared
    /// connection pool: every set-up call goes through it; the measured loops send bare
    /// requests so that the figures are the daemon's, not the client's.
    pub fn client(&self, token: &str) -> anyhow::Result<latchkey_client::Client> {
        Ok(latchkey_client::Client::with_http(
            self.http.clone(),
            &self.base,
            Some(token),
            std::time::Duration::from_secs(60),
        )?)
    }

    /// Sends a JSON request as `token` and insists on a 2xx answer; returns its JSON body.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.client(token)?
            .request(method.clone(), path, &[], body)
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// As admin.
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        self.ok(method, path, &self.admin, Some(body)).await
    }

    /// Stores a secret (as admin), through the client crate's typed call.
    pub async fn put_secret(&self, path: &str, value: &str) -> anyhow::Result<()> {
        let secret = latchkey_client::PutSecret {
            value: Some(secrecy::SecretString::from(value)),
            ..Default::default()
        };
        self.client(&self.admin)?
            .put_secret(path, &secret)
            .await
            .with_context(|| format!("PUT /v1/secrets/{path}"))?;
        Ok(())
    }

    /// Requests a lease as `agent` and checks its state; returns the lease.
    pub async fn lease(&self, agent: &str, body: Value, state: &str) -> anyhow::Result<Value> {
        let lease = self
            .ok(Method::POST, "/v1/leases", agent, Some(body))
            .await?;
        ensure!(lease["state"] == state, "lease not {state}: {lease}");
        Ok(lease)
    }
}

/// Registers the agent of the new phases (tier 5, so standard secrets lease at once) and
/// grants every agent `read` and `proxy` on `bench/**`; returns the agent's key.
pub async fn agent(api: &Api) -> anyhow::Result<String> {
    let grant = json!({"subject": {"kind": "namespace", "value": "entities"},
        "pattern": "bench/**", "actions": ["read", "proxy"]});
    api.admin(Method::POST, "/v1/grants", grant).await?;
    let body = json!({"name": "bench-agent", "trust_tier": 5});
    let agent = api.admin(Method::POST, "/v1/agents", body).await?;
    let key = agent["api_key"].as_str().context("no api_key")?;
    Ok(key.to_string())
}

/// Serves `app` on 127.0.0.1 (an ephemeral port) on the current runtime.
pub async fn serve(app: axum::Router) -> anyhow::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("local server stopped: {e}");
        }
    });
    Ok((base, server))
}
