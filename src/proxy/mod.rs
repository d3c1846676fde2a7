//! The credential-injection proxy: a registry of services (from `services/*.toml` and the
//! API) with one HTTP client each, and the call path `POST /v1/proxy/{service}/{endpoint}`.

pub mod call;
pub mod service;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

pub use service::Service;

/// Where a service was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `services/NAME.toml`.
    File,
    /// `POST /v1/services`.
    Api,
}

/// Known services and their clients.
#[derive(Clone, Default)]
pub struct Registry {
    services: Arc<RwLock<BTreeMap<String, (Service, Origin)>>>,
    clients: Arc<Mutex<HashMap<String, reqwest::Client>>>,
}

impl Registry {
    /// A registry holding `files` (from the services directory) and `api` (from the store).
    pub fn new(files: Vec<Service>, api: Vec<Service>) -> Registry {
        let r = Registry::default();
        for s in files {
            r.insert(s, Origin::File);
        }
        for s in api {
            r.insert(s, Origin::Api);
        }
        r
    }

    /// Adds or replaces a service.
    pub fn insert(&self, s: Service, origin: Origin) {
        if let Ok(mut c) = self.clients.lock() {
            c.remove(&s.name);
        }
        if let Ok(mut m) = self.services.write() {
            m.insert(s.name.clone(), (s, origin));
        }
    }

    /// Removes a service.
    pub fn remove(&self, name: &str) -> Option<(Service, Origin)> {
        if let Ok(mut c) = self.clients.lock() {
            c.remove(name);
        }
        self.services.write().ok()?.remove(name)
    }

    /// A service by name.
    pub fn get(&self, name: &str) -> Option<(Service, Origin)> {
        self.services.read().ok()?.get(name).cloned()
    }

    /// Every service.
    pub fn list(&self) -> Vec<(Service, Origin)> {
        self.services
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The (cached) HTTP client of a service.
    pub fn client(&self, svc: &Service) -> Result<reqwest::Client, String> {
        if let Some(c) = self
            .clients
            .lock()
            .ok()
            .and_then(|m| m.get(&svc.name).cloned())
        {
            return Ok(c);
        }
        let c = call::client(svc)?;
        if let Ok(mut m) = self.clients.lock() {
            m.insert(svc.name.clone(), c.clone());
        }
        Ok(c)
    }
}
