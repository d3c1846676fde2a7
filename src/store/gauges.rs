//! What a metrics scrape reads from the store: open leases by state, pending approvals, and
//! how far each webhook subscription is behind the audit log. Read in one snapshot, so on
//! PostgreSQL every daemon answers the same numbers: the cluster's, not its own.

use super::audit_log::last_event;
use super::leases::{APPROVALS, LEASES, OPEN_LEASES};
use super::subscriptions::WEBHOOKS;
use super::webhook_delivery::WEBHOOK_CURSORS;
use super::{Store, StoreError};
use crate::lease::{ApprovalState, LeaseState};
use crate::metrics::Snapshot;

impl Store {
    /// Counts the open leases (through the open-lease index: closed leases are never read),
    /// the pending approvals among them, and each subscription's lag in audit events.
    pub fn metrics_snapshot(&self) -> Result<Snapshot, StoreError> {
        let tx = self.kv_read()?;
        let mut s = Snapshot::default();
        for (k, _) in OPEN_LEASES.entries(&tx)? {
            let Some(lease) = LEASES.get_encoded(&tx, &k)? else {
                continue;
            };
            match lease.state {
                LeaseState::Pending => {
                    s.pending_leases += 1;
                    if let Some(aid) = &lease.approval_id
                        && APPROVALS
                            .get(&tx, aid.as_str())?
                            .is_some_and(|a| a.tally.state == ApprovalState::Pending)
                    {
                        s.pending_approvals += 1;
                    }
                }
                LeaseState::Active => s.active_leases += 1,
                _ => {}
            }
        }
        let head = last_event(&tx)?.map_or(0, |e| e.seq);
        for w in WEBHOOKS.all(&tx)? {
            let cursor = WEBHOOK_CURSORS.get(&tx, w.id.as_str())?.unwrap_or(0);
            s.webhook_lag.push((w.id, head.saturating_sub(cursor)));
        }
        Ok(s)
    }

    /// This daemon's metrics (made when the store was opened).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.hooks.metrics
    }
}
