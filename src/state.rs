//! The shared application state: cheap handles every handler can take through axum's `State`.

use std::sync::Arc;

use crate::config::Config;
use crate::store::Store;

/// What every request shares, behind one `Arc`: axum clones the state for each request (and
/// each guarded route's middleware), and one reference count is far cheaper than a dozen.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared handles.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Handles shared by every request.
pub struct Shared {
    /// The storage seam.
    pub store: Store,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Master key, kept to re-seal the keyring on rotation.
    pub master_key: Arc<zeroize::Zeroizing<[u8; 32]>>,
    /// Telegram and Discord approval channels.
    pub channels: crate::channels::Hub,
    /// Proxy services.
    pub proxy: crate::proxy::Registry,
    /// Scheduled jobs.
    pub jobs: crate::jobs::Jobs,
    /// Audit webhook workers.
    pub webhooks: crate::subscriptions::Manager,
    /// Serialises keyring changes.
    pub keys_lock: Arc<tokio::sync::Mutex<()>>,
    /// Becomes true when the daemon starts to stop: long-polls answer at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// This daemon's metrics (the store's handle: the writer records into it too).
    pub metrics: crate::metrics::Metrics,
    /// The daemon's own address (`http://IP:PORT`, loopback for a wildcard listener): the MCP
    /// tools at `/mcp` call the API there with their caller's credential.
    pub self_url: String,
}
