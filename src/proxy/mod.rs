//! The credential-injection proxy: a registry of services (from `services/*.toml` and the
//! API) with one HTTP client each, and the call path `POST /v1/proxy/{service}/{endpoint}`.

pub mod call;
pub mod redact;
pub mod service;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

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

/// A service with what each call needs, prepared once when it is declared.
pub struct Entry {
    /// The service.
    pub service: Service,
    /// Where it was declared.
    pub origin: Origin,
    /// The base URL, parsed and checked against the service's destination policy (scheme, no
    /// credentials, no refused IP literal); the reason when refused.
    pub base: Result<reqwest::Url, String>,
    /// Its HTTP client (refused destinations are also refused at DNS time).
    pub client: Result<reqwest::Client, String>,
}

impl Entry {
    fn new(service: Service, origin: Origin) -> Entry {
        let policy = webhooks::deliver::Destinations {
            allow_loopback: service.allow_private,
            allow_private: service.allow_private,
        };
        Entry {
            base: webhooks::deliver::check_url(&service.base_url, policy),
            client: call::client(&service),
            service,
            origin,
        }
    }
}

/// Known services, each with its client.
#[derive(Clone, Default)]
pub struct Registry {
    services: Arc<RwLock<BTreeMap<String, Arc<Entry>>>>,
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

    /// Adds or replaces a service (and its client).
    pub fn insert(&self, s: Service, origin: Origin) {
        let entry = Arc::new(Entry::new(s, origin));
        if let Ok(mut m) = self.services.write() {
            m.insert(entry.service.name.clone(), entry);
        }
    }

    /// Removes a service.
    pub fn remove(&self, name: &str) -> Option<Arc<Entry>> {
        self.services.write().ok()?.remove(name)
    }

    /// A service by name.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.services.read().ok()?.get(name).cloned()
    }

    /// Every service.
    pub fn list(&self) -> Vec<(Service, Origin)> {
        self.services
            .read()
            .map(|m| m.values().map(|e| (e.service.clone(), e.origin)).collect())
            .unwrap_or_default()
    }
}
