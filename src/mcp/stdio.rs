//! `latchkey mcp`: the MCP server on stdin/stdout for a local MCP client (Claude Code, Claude
//! Desktop, Cursor), talking to a daemon over HTTP with `LATCHKEY_ADDR` and the agent key or
//! scoped token in `LATCHKEY_TOKEN`. Stdout is the protocol: logs go to stderr only.

use anyhow::Context;
use rmcp::ServiceExt;

use super::Server;

/// Serves MCP on stdio until the client closes it. Refuses, before serving, a credential that
/// is not an agent's (admin and approver tokens get no MCP tools) or that the daemon refuses.
pub async fn run(addr: &str, token: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let http = latchkey_client::http_client(
        latchkey_client::LONG_POLL_TIMEOUT,
        concat!("latchkey-mcp/", env!("CARGO_PKG_VERSION")),
    )?;
    let client = latchkey_client::Client::with_http(
        http,
        addr,
        Some(token),
        latchkey_client::LONG_POLL_TIMEOUT,
    )?;
    let me = client.whoami().await?;
    if !me.is_agent() {
        return Err(crate::cli::exit::fail(
            crate::cli::exit::Exit::Refused,
            format!(
                "`latchkey mcp` is for agents: LATCHKEY_TOKEN is an {} token; give it an agent key or a scoped token (admin and approver tokens get no MCP tools)",
                me.kind
            ),
        ));
    }
    tracing::info!(agent = ?me.agent.as_ref().map(|a| &a.name), "serving MCP on stdio");
    let running = Server::fixed(client)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialise")?;
    running.waiting().await.context("the MCP session failed")?;
    Ok(())
}
