//! Proxy services declared through the API (audited `service.created`, `service.deleted`).

use serde_json::json;

use super::kv::{Records, Table};
use super::{Origin, Store, StoreError};
use crate::audit::Draft;
use crate::proxy::Service;

fn draft(origin: &Origin, event: &'static str, s: &Service) -> Draft {
    Draft {
        event,
        actor: origin.actor.clone(),
        namespace: crate::paths::namespace_of(&s.secret).to_string(),
        resource_path: format!("services/{}", s.name),
        action: "admin".into(),
        outcome: "success",
        ip: origin.ip.clone(),
        details: json!({"base_url": s.base_url, "secret": s.secret, "endpoints": s.endpoints.keys().collect::<Vec<_>>()}),
    }
}

/// Services by name.
const SERVICES: Records<Service> = Records::new(Table::Services);

impl Store {
    /// Stores (creates or replaces) a service.
    pub async fn put_service(&self, s: Service, origin: Origin) -> Result<Service, StoreError> {
        self.write(move |ctx| {
            SERVICES.put(&mut ctx.kv(), s.name.as_str(), &s)?;
            ctx.audit(draft(&origin, "service.created", &s))?;
            Ok(s.clone())
        })
        .await
    }

    /// Deletes a service.
    pub async fn delete_service(&self, name: String, origin: Origin) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let s = SERVICES.get(&ctx.kv(), name.as_str())?.ok_or_else(|| {
                StoreError::NotFound(format!("no service {name} created through the API"))
            })?;
            SERVICES.delete(&mut ctx.kv(), name.as_str())?;
            ctx.audit(draft(&origin, "service.deleted", &s))?;
            Ok(())
        })
        .await
    }

    /// Every service created through the API.
    pub fn list_services(&self) -> Result<Vec<Service>, StoreError> {
        SERVICES.all(&self.kv_read()?)
    }
}
