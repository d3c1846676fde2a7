//! Appending to the audit log: the success event identity changes write inside their
//! transaction, and stand-alone events (refused attempts, key events, upstream answers).

use super::{Origin, Store, StoreError, WriteCtx};
use crate::audit::Draft;

pub(super) fn audit(
    ctx: &mut WriteCtx<'_>,
    origin: &Origin,
    event: &'static str,
    namespace: &str,
    resource: &str,
    action: &str,
    details: serde_json::Value,
) -> Result<(), StoreError> {
    ctx.audit(Draft {
        event,
        actor: origin.actor.clone(),
        namespace: namespace.to_string(),
        resource_path: resource.to_string(),
        action: action.to_string(),
        outcome: "success",
        ip: origin.ip.clone(),
        details,
    })
}

impl Store {
    /// Appends a stand-alone event: refused attempts (`auth.failed`, `access.denied`), key events.
    pub async fn append_event(&self, draft: Draft) -> Result<(), StoreError> {
        self.write(move |ctx| ctx.audit(draft.clone())).await
    }

    /// Appends a stand-alone audit event without waiting for its commit (for events that
    /// record what already happened, such as an upstream's answer); failures are logged.
    pub fn append_event_detached(&self, draft: Draft) {
        let what = draft.event;
        self.writer
            .submit_detached(what, move |ctx| ctx.audit(draft.clone()));
    }
}
