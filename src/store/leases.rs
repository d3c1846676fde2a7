//! Lease requests and records: create (instant grant or a new approval), look up, list,
//! and the transition helper every lease change goes through. The decisions themselves are
//! the pure state machines of `crate::lease`; this module loads, applies and stores them,
//! with their audit events, in one transaction each.

use std::ops::Bound;

use serde_json::json;

use super::keys::{Key, Reader, prefix_end, tuple_prefix};
use super::kv::{Records, Table};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::access::LeaseGate;
use crate::audit::Draft;
pub use crate::lease::LeaseRecord;
use crate::lease::{ApprovalRecord, LeaseEvent, LeaseState, Tally, active_until, transition};
use crate::notice::{ApprovalChange, Notice};
use crate::policy::Requirement;

/// A lease request, checked by the caller.
pub struct NewLease {
    /// The lease as it starts (state and times are set here).
    pub lease: LeaseRecord,
}

/// Leases by id.
pub(super) const LEASES: Records<LeaseRecord> = Records::new(Table::Leases);
/// Approvals by id.
pub(super) const APPROVALS: Records<ApprovalRecord> = Records::new(Table::Approvals);
/// The deadline queue: (unix seconds, `lease:<id>`, `approval:<id>` or `grant:<id>`) → 0.
pub(super) const DEADLINES: Records<u8> = Records::new(Table::Deadlines);
/// (agent id, lease id) → 0: an agent's leases in creation order (ULIDs sort by time).
const AGENT_LEASES: Records<u8> = Records::new(Table::AgentLeases);
/// Leases not yet in a final state → agent id.
pub(super) const OPEN_LEASES: Records<String> = Records::new(Table::OpenLeases);

/// The record of `records` under `id` in the write transaction, or "no {what} {id}".
pub(super) fn get<T: serde::Serialize + serde::de::DeserializeOwned>(
    ctx: &WriteCtx<'_>,
    records: Records<T>,
    id: &str,
    what: &str,
) -> Result<T, StoreError> {
    records
        .get(&ctx.kv(), id)?
        .ok_or_else(|| StoreError::NotFound(format!("no {what} {id}")))
}

/// Stores `v` under `id` in the write transaction.
pub(super) fn put<T: serde::Serialize + serde::de::DeserializeOwned>(
    ctx: &WriteCtx<'_>,
    records: Records<T>,
    id: &str,
    v: &T,
) -> Result<(), StoreError> {
    records.put(&mut ctx.kv(), id, v)
}

pub(super) fn add_deadline(ctx: &mut WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    DEADLINES.put(&mut ctx.kv(), &(at, key), &0)?;
    ctx.deadline_added();
    Ok(())
}

pub(super) fn remove_deadline(ctx: &WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    DEADLINES.delete(&mut ctx.kv(), &(at, key))?;
    Ok(())
}

/// Lease ids from the agent index, newest first, below `before` (exclusive).
fn agent_lease_ids(
    tx: &impl super::kv::ReadTxn,
    agent: &str,
    before: Option<&str>,
    mut f: impl FnMut(String) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let start = tuple_prefix(agent);
    let end = match before {
        Some(b) => Bound::Excluded((agent, b).encode()),
        None => match prefix_end(&start) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        },
    };
    AGENT_LEASES.scan(tx, Bound::Included(start), end, true, |k, _| {
        let mut key = Reader::new(k);
        let (Some(_), Some(id)) = (key.string(), key.string()) else {
            return Err(StoreError::Corrupt("an agent lease key".into()));
        };
        f(id)
    })
}

pub(super) fn lease_draft(
    l: &LeaseRecord,
    event: &'static str,
    origin: &Origin,
    details: serde_json::Value,
) -> Draft {
    Draft {
        event,
        actor: origin.actor.clone(),
        namespace: l.namespace.clone(),
        resource_path: l.path.clone(),
        action: l.action.as_str().into(),
        outcome: match event {
            "lease.denied" | "approval.denied" => "denied",
            _ => "success",
        },
        ip: origin.ip.clone(),
        details,
    }
}

/// Moves a lease through the state machine, with its audit event, index and deadline upkeep.
pub(super) fn apply(
    ctx: &mut WriteCtx<'_>,
    lease: &mut LeaseRecord,
    event: LeaseEvent,
    origin: &Origin,
    extra: serde_json::Value,
) -> Result<(), StoreError> {
    let from = lease.state;
    let to = transition(from, event).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let now = ctx.now_unix();
    if from != to {
        if from == LeaseState::Pending || from == LeaseState::Active {
            remove_deadline(ctx, lease.expires_at, &format!("lease:{}", lease.id))?;
        }
        lease.state = to;
        if to == LeaseState::Active {
            lease.granted_at = Some(now);
            lease.expires_at = active_until(now, lease.ttl_seconds, lease.token_expires_at);
            add_deadline(ctx, lease.expires_at, &format!("lease:{}", lease.id))?;
        }
        if to.is_final() {
            lease.ended_at = Some(now);
            OPEN_LEASES.delete(&mut ctx.kv(), lease.id.as_str())?;
        }
        let event_name = match to {
            LeaseState::Active => "lease.granted",
            LeaseState::Exhausted => "lease.exhausted",
            LeaseState::Expired => "lease.expired",
            LeaseState::Revoked => "lease.revoked",
            LeaseState::Denied => "lease.denied",
            LeaseState::Pending => "lease.requested",
        };
        let mut details = json!({"lease_id": lease.id, "from": from, "to": to, "expires_at": crate::util::unix_rfc3339(lease.expires_at), "uses_left": lease.uses_left});
        if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            d.extend(extra);
        }
        ctx.audit(lease_draft(lease, event_name, origin, details))?;
        ctx.notify(Notice::Lease {
            id: lease.id.clone(),
            state: to,
        });
    }
    put(ctx, LEASES, &lease.id.clone(), lease)
}

impl Store {
    /// Records a lease request: instant ones start active, others open an approval.
    pub async fn create_lease(
        &self,
        new: NewLease,
        origin: Origin,
    ) -> Result<(LeaseRecord, Option<ApprovalRecord>), StoreError> {
        self.write(move |ctx| {
            let mut lease = new.lease.clone();
            let now = ctx.now_unix();
            lease.created_at = now;
            lease.state = LeaseState::Pending;
            AGENT_LEASES.put(&mut ctx.kv(), &(lease.agent_id.as_str(), lease.id.as_str()), &0)?;
            OPEN_LEASES.put(&mut ctx.kv(), lease.id.as_str(), &lease.agent_id)?;
            let requested = json!({"lease_id": lease.id, "policy": lease.policy.source, "requirement": lease.policy.requirement, "ttl_seconds": lease.ttl_seconds, "uses": lease.uses, "keys": lease.keys, "reason": lease.reason, "session_id": lease.session_id, "task_id": lease.task_id});
            ctx.audit(lease_draft(&lease, "lease.requested", &origin, requested))?;
            match lease.policy.requirement {
                Requirement::Instant | Requirement::Flagged => {
                    lease.flagged = lease.policy.requirement == Requirement::Flagged;
                    lease.expires_at = now;
                    let details = json!({"flagged": lease.flagged, "policy": lease.policy.source});
                    apply(ctx, &mut lease, LeaseEvent::Grant, &origin, details)?;
                    Ok((lease, None))
                }
                Requirement::Approval => {
                    let tally = Tally::open(&lease.policy, now);
                    let approval = ApprovalRecord {
                        id: crate::util::new_id(),
                        lease_id: lease.id.clone(),
                        agent_id: lease.agent_id.clone(),
                        agent_name: lease.agent_name.clone(),
                        trust_tier: lease.trust_tier,
                        path: lease.path.clone(),
                        namespace: lease.namespace.clone(),
                        sensitivity: lease.sensitivity.clone(),
                        action: lease.action,
                        ttl_seconds: lease.ttl_seconds,
                        uses: lease.uses,
                        keys: lease.keys.clone(),
                        reason: lease.reason.clone(),
                        requested_at: now,
                        policy_source: lease.policy.source.clone(),
                        tally,
                    };
                    lease.approval_id = Some(approval.id.clone());
                    lease.expires_at = approval.tally.deadline;
                    add_deadline(ctx, lease.expires_at, &format!("lease:{}", lease.id))?;
                    add_deadline(ctx, approval.tally.deadline, &format!("approval:{}", approval.id))?;
                    put(ctx, APPROVALS, &approval.id, &approval)?;
                    put(ctx, LEASES, &lease.id, &lease)?;
                    let details = json!({"approval_id": approval.id, "quorum": approval.tally.quorum, "deadline": crate::util::unix_rfc3339(approval.tally.deadline), "on_deadline": approval.tally.on_deadline});
                    ctx.audit(lease_draft(&lease, "approval.requested", &origin, details))?;
                    ctx.notify(Notice::Approval { change: ApprovalChange::Opened, approval: Box::new(approval.clone()) });
                    Ok((lease, Some(approval)))
                }
            }
        })
        .await
    }

    /// A lease by id, when the gate admits it.
    pub fn lease(&self, gate: &LeaseGate, id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        Ok(LEASES.get(&self.kv_read()?, id)?.filter(|l| gate.admits(l)))
    }

    /// The leases the gate admits, newest first, optionally in one state.
    pub fn list_leases(
        &self,
        gate: &LeaseGate,
        state: Option<LeaseState>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LeaseRecord>, StoreError> {
        let txn = self.kv_read()?;
        let mut out = Vec::new();
        let mut keep = |l: LeaseRecord| {
            if state.is_none_or(|s| s == l.state) && gate.admits(&l) {
                out.push(l);
            }
            out.len() < limit
        };
        // Ids are ULIDs: key order is creation order, so `before` is a keyset cursor.
        match gate.agent_id() {
            Some(a) => agent_lease_ids(&txn, a, before, |id| match LEASES.get(&txn, &id)? {
                Some(l) => Ok(keep(l)),
                None => Ok(true),
            })?,
            None => {
                let end = match before {
                    Some(b) => Bound::Excluded(b.encode()),
                    None => Bound::Unbounded,
                };
                LEASES.scan(&txn, Bound::Unbounded, end, true, |_, l| Ok(keep(l)))?;
            }
        }
        Ok(out)
    }

    /// Leases an agent created since `since` (unix seconds) under a grant: for rate limits.
    /// Walks the agent's leases newest first (lease ids are ULIDs, so key order is creation
    /// order) and stops at the first older than `since`: only the recent ones are read.
    pub fn count_recent_leases(
        &self,
        agent: &str,
        grant_id: &str,
        since: i64,
    ) -> Result<u32, StoreError> {
        let txn = self.kv_read()?;
        let mut count = 0;
        agent_lease_ids(&txn, agent, None, |id| {
            let Some(l) = LEASES.get(&txn, &id)? else {
                return Ok(true);
            };
            if l.created_at < since {
                return Ok(false);
            }
            if l.grant_id.as_deref() == Some(grant_id) {
                count += 1;
            }
            Ok(true)
        })?;
        Ok(count)
    }
}
