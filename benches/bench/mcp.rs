//! The MCP phase: `get_secret` through Streamable HTTP at `/mcp` on an instant lease, beside
//! the REST call it makes (`POST /v1/secrets/{path}/read`), so the price of the MCP layer
//! (JSON-RPC, a fresh stateless handler per request, the loopback call with the caller's
//! credential) shows as the difference.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

use crate::api::Api;
use crate::stats::{Goal, drive, endless};

const REST: &str = "rest    (POST /v1/secrets/{path}/read: one-call instant read):";
const MCP: &str = "mcp     (tools/call get_secret over Streamable HTTP, same read):";

/// Both phases, `clients` tasks each (one MCP session per task). Returns the successful
/// reads (each is at least one audited event).
pub async fn get_secret(
    api: &Api,
    agent: &str,
    clients: usize,
    dur: Duration,
) -> anyhow::Result<u64> {
    api.put_secret("bench/mcp-secret", "v").await?;
    let url = format!("{}/v1/secrets//bench/mcp-secret/read", api.base);
    let (http, key) = (api.http.clone(), agent.to_string());
    let rest = drive(clients, dur, endless, move |_, _| {
        let (http, key, url) = (http.clone(), key.clone(), url.clone());
        async move {
            let resp = http
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({}))
                .send()
                .await?;
            let ok = resp.status() == reqwest::StatusCode::OK;
            resp.bytes().await?;
            Ok(ok)
        }
    })
    .await?;
    rest.print(REST, Goal::default());

    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        let cfg = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", api.base))
            .auth_header(agent.to_string());
        let session = ClientConfig::default()
            .serve(StreamableHttpClientTransport::from_config(cfg))
            .await
            .context("MCP initialisation")?;
        sessions.push(Arc::new(session));
    }
    let args = json!({"path": "/bench/mcp-secret"});
    let args = args.as_object().cloned().unwrap_or_default();
    let sessions = Arc::new(sessions);
    let stats = drive(clients, dur, endless, move |task, _| {
        let (sessions, args) = (sessions.clone(), args.clone());
        async move {
            let r = sessions[task]
                .call_tool(CallToolRequestParams::new("get_secret").with_arguments(args))
                .await?;
            Ok(r.structured_content.is_some_and(|v| v["value"] == "v"))
        }
    })
    .await?;
    stats.print(MCP, Goal::default());
    Ok(rest.ok() + stats.ok())
}
