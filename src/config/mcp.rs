//! The MCP server's settings (`[mcp]`): whether `/mcp` is served and which `Host` names it
//! answers.

use serde::{Deserialize, Serialize};

/// The Model Context Protocol endpoint `/mcp` (Streamable HTTP).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Serve MCP at `/mcp` (agent credentials only, as Bearer tokens).
    pub enabled: bool,
    /// `Host` header values `/mcp` accepts (`host` or `host:port`): a guard against DNS
    /// rebinding from a browser. Loopback names by default; add the daemon's public name when
    /// agents reach it through one.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            enabled: true,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}
