//! The web console's settings (`[console]`): whether `/ui` is served, how long a session
//! lives, and the address sign-in links point at.

use serde::{Deserialize, Serialize};

/// The web console at `/ui`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console at `/ui` (admins and approvers sign in; agents cannot).
    pub enabled: bool,
    /// Server-side lifetime of a console session.
    pub session_ttl_seconds: u64,
    /// The console's address as browsers reach it (`https://latchkey.example.com`), used in
    /// the links `latchkey console link` prints; empty: the daemon's own
    /// `http://` address. An
    /// `https://` address also marks the session cookie `Secure`.
    pub public_url: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            session_ttl_seconds: 12 * 3600,
            public_url: String::new(),
        }
    }
}

impl ConsoleConfig {
    /// The base URL of sign-in links (no trailing slash): `public_url`, else the daemon's own
    /// address (`http://IP:PORT`).
    pub fn base_url(&self, self_url: &str) -> String {
        if self.public_url.is_empty() {
            self_url.trim_end_matches('/').to_string()
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    /// Is the console reached over TLS (the cookie is then `Secure`)?
    pub fn is_tls(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}
