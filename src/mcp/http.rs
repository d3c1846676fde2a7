//! `/mcp`: the MCP server over Streamable HTTP, nested in the daemon's router behind the same
//! guard as `/v1` (`crate::access`, class *agent*: no token → 401, an admin or approver token
//! → 403, both before rmcp sees the request).
//!
//! Stateless and JSON-answering: each POST is served by a fresh [`Server`] and answered with
//! one JSON body, so nothing is kept between requests, a restart loses nothing, and a session
//! cannot outlive or change the credential that each request carries. The tools call the
//! daemon's own listener with that credential ([`Server::per_request`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{MethodFilter, MethodRouter, on, on_service};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::Server;
use crate::error::ApiError;
use crate::state::AppState;

/// The address the daemon's own tools call: the listener's, with a wildcard IP replaced by
/// loopback.
pub fn self_url(listening: SocketAddr) -> String {
    let ip = match listening.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listening.port()))
}

/// The methods Streamable HTTP uses (registered as routes, so the guard's route layer
/// covers them; any other method is answered 405).
fn methods() -> MethodFilter {
    MethodFilter::POST
        .or(MethodFilter::GET)
        .or(MethodFilter::DELETE)
}

/// The `/mcp` endpoint, or a 404 when `mcp.enabled` is false.
pub fn endpoint(state: &AppState) -> MethodRouter<AppState> {
    if !state.config.mcp.enabled {
        return on(methods(), || async {
            ApiError::NotFound("MCP is disabled (mcp.enabled = false)".into())
        });
    }
    let daemon = latchkey_client::http_client(
        latchkey_client::LONG_POLL_TIMEOUT,
        concat!("latchkey-mcp/", env!("CARGO_PKG_VERSION")),
    )
    .and_then(|http| {
        latchkey_client::Client::with_http(
            http,
            &state.self_url,
            None,
            latchkey_client::LONG_POLL_TIMEOUT,
        )
    });
    let daemon = match daemon {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "MCP endpoint unavailable");
            return on(methods(), || async {
                ApiError::Internal("the MCP endpoint is unavailable".into())
            });
        }
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(state.config.mcp.allowed_hosts.clone())
        .with_max_request_body_bytes(state.config.http.max_body_bytes);
    let service = StreamableHttpService::new(
        move || Ok(Server::per_request(daemon.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    on_service(methods(), service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_called_on_loopback() {
        let url = |s: &str| self_url(s.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1))));
        assert_eq!(url("0.0.0.0:8200"), "http://127.0.0.1:8200");
        assert_eq!(url("[::]:8200"), "http://[::1]:8200");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
    }
}
