//! Proxy services declared through the API (audited `service.created`, `service.deleted`).

use redb::ReadableTable;
use serde_json::json;

use super::tables::SERVICES;
use super::{Origin, Store, StoreError, decode, encode};
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

impl Store {
    /// Stores (creates or replaces) a service.
    pub async fn put_service(&self, s: Service, origin: Origin) -> Result<Service, StoreError> {
        self.write(move |ctx| {
            ctx.txn
                .open_table(SERVICES)?
                .insert(s.name.as_str(), encode(&s)?.as_slice())?;
            ctx.audit(draft(&origin, "service.created", &s))?;
            Ok(s)
        })
        .await
    }

    /// Deletes a service.
    pub async fn delete_service(&self, name: String, origin: Origin) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let s: Service = {
                let t = ctx.txn.open_table(SERVICES)?;
                let got = t.get(name.as_str())?;
                match got {
                    Some(v) => decode(v.value())?,
                    None => {
                        return Err(StoreError::NotFound(format!(
                            "no service {name} created through the API"
                        )));
                    }
                }
            };
            ctx.txn.open_table(SERVICES)?.remove(name.as_str())?;
            ctx.audit(draft(&origin, "service.deleted", &s))?;
            Ok(())
        })
        .await
    }

    /// Every service created through the API.
    pub fn list_services(&self) -> Result<Vec<Service>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(SERVICES)?;
        t.iter()?.map(|item| decode(item?.1.value())).collect()
    }
}
