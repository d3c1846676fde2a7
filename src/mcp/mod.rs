//! The MCP server: Latchkey's agent API as Model Context Protocol tools (rmcp), served two
//! ways — `latchkey mcp` over stdio ([`stdio`]) and Streamable HTTP at `/mcp` on the daemon
//! itself ([`http`]).
//!
//! Both run the same tools ([`tools`]) on the typed client (`latchkey-client`): over stdio
//! against `LATCHKEY_ADDR` with `LATCHKEY_TOKEN`; over HTTP against the daemon's own listener
//! with the Bearer credential of each MCP request. So every tool call is an ordinary `/v1`
//! request with the caller's own credential, and who may do what is decided where it is for
//! every other request (`crate::access` and the handlers), never here. Which tools a
//! credential is *shown* follows its scopes (`GET /v1/whoami`); that is a courtesy to the
//! model, not a check. Reads and proxy calls that need a human's approval wait a bounded time
//! ([`wait`]) and then answer a normal tool result that says how to go on waiting.

pub mod http;
pub mod stdio;
pub mod tools;
pub mod wait;

use axum::http::request::Parts;
use latchkey_client::Client;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

/// What the server tells the model about itself at initialisation.
pub const INSTRUCTIONS: &str = "Latchkey keeps secrets for you and puts a human in the loop. \
Paths are relative to your own namespace; a leading / makes a path absolute (outside your \
namespace, where a grant allows it). Some reads and proxy calls need a human approver: the tool \
then waits up to wait_seconds and, if nobody has decided yet, answers state \"pending\" with a \
lease_id — call wait_for_lease with it (repeatedly) until the state is active or denied. Prefer \
call_service over get_secret: the credential is injected by Latchkey and never enters your \
context.";

/// Where the tools' daemon calls go, and with which credential.
#[derive(Clone)]
enum Source {
    /// stdio: one daemon, one credential, fixed at start.
    Fixed(Client),
    /// Streamable HTTP: the daemon's own listener (a client without a credential), with the
    /// Bearer credential of each MCP request.
    PerRequest(Client),
}

/// The MCP server handler (one per stdio process; one per request over stateless HTTP).
#[derive(Clone)]
pub struct Server {
    source: Source,
}

impl Server {
    /// A server whose tools use `client` (stdio).
    pub fn fixed(client: Client) -> Server {
        Server {
            source: Source::Fixed(client),
        }
    }

    /// A server whose tools call `daemon` with each request's own Bearer credential (HTTP).
    pub fn per_request(daemon: Client) -> Server {
        Server {
            source: Source::PerRequest(daemon),
        }
    }

    /// The client for this request: the fixed one, or the daemon with the request's
    /// credential (which the route's guard has already authenticated).
    fn client(&self, ctx: &RequestContext<RoleServer>) -> Result<Client, ErrorData> {
        match &self.source {
            Source::Fixed(c) => Ok(c.clone()),
            Source::PerRequest(daemon) => {
                let token = ctx
                    .extensions
                    .get::<Parts>()
                    .and_then(|p| p.headers.get(axum::http::header::AUTHORIZATION))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ErrorData::invalid_request("no Bearer credential", None))?;
                Ok(daemon.with_token(token))
            }
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("latchkey", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let client = self.client(&ctx)?;
        let me = client.whoami().await.map_err(|e| {
            ErrorData::internal_error(format!("cannot ask the daemon who this is: {e}"), None)
        })?;
        Ok(ListToolsResult::with_all_items(tools::visible(&me)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = self.client(&ctx)?;
        let result = tools::call(&client, &request.name, request.arguments).await?;
        Ok(result.into())
    }
}
