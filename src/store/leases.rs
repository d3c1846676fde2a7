//! Lease requests and records: create (instant grant or a new approval), look up, list,
//! and the transition helper every lease change goes through. The decisions themselves are
//! the pure state machines of `crate::lease`; this module loads, applies and stores them,
//! with their audit events, in one transaction each.

use redb::ReadableTable;
use serde::Serialize;
use serde_json::json;

use super::tables::{AGENT_LEASES, APPROVALS, DEADLINES, LEASES, OPEN_LEASES};
use super::{Origin, Store, StoreError, WriteCtx, decode, encode};
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

pub(super) fn get<T: serde::de::DeserializeOwned>(
    ctx: &WriteCtx<'_>,
    table: redb::TableDefinition<&str, &[u8]>,
    id: &str,
    what: &str,
) -> Result<T, StoreError> {
    let t = ctx.txn.open_table(table)?;
    let got = t
        .get(id)?
        .ok_or_else(|| StoreError::NotFound(format!("no {what} {id}")))?;
    decode(got.value())
}

pub(super) fn put<T: Serialize>(
    ctx: &WriteCtx<'_>,
    table: redb::TableDefinition<&str, &[u8]>,
    id: &str,
    v: &T,
) -> Result<(), StoreError> {
    ctx.txn
        .open_table(table)?
        .insert(id, encode(v)?.as_slice())?;
    Ok(())
}

pub(super) fn add_deadline(ctx: &mut WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    ctx.txn.open_table(DEADLINES)?.insert((at, key), 0u8)?;
    ctx.deadline_added();
    Ok(())
}

pub(super) fn remove_deadline(ctx: &WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    ctx.txn.open_table(DEADLINES)?.remove((at, key))?;
    Ok(())
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
            ctx.txn.open_table(OPEN_LEASES)?.remove(lease.id.as_str())?;
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
            let mut lease = new.lease;
            let now = ctx.now_unix();
            lease.created_at = now;
            lease.state = LeaseState::Pending;
            ctx.txn.open_table(AGENT_LEASES)?.insert((lease.agent_id.as_str(), lease.id.as_str()), 0u8)?;
            ctx.txn.open_table(OPEN_LEASES)?.insert(lease.id.as_str(), lease.agent_id.as_str())?;
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
        Ok(self
            .read_one::<LeaseRecord>(LEASES, id)?
            .filter(|l| gate.admits(l)))
    }

    /// The leases the gate admits, newest first, optionally in one state.
    pub fn list_leases(
        &self,
        gate: &LeaseGate,
        state: Option<LeaseState>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LeaseRecord>, StoreError> {
        let txn = self.read()?;
        let leases = txn.open_table(LEASES)?;
        let mut out = Vec::new();
        let mut keep = |l: LeaseRecord| {
            if state.is_none_or(|s| s == l.state) && gate.admits(&l) {
                out.push(l);
            }
            out.len() >= limit
        };
        // Ids are ULIDs: key order is creation order, so `before` is a keyset cursor.
        let end = before.unwrap_or("\u{10ffff}");
        match gate.agent_id() {
            Some(a) => {
                let idx = txn.open_table(AGENT_LEASES)?;
                for item in idx.range((a, "")..(a, end))?.rev() {
                    let (k, _) = item?;
                    if let Some(v) = leases.get(k.value().1)?
                        && keep(decode(v.value())?)
                    {
                        break;
                    }
                }
            }
            None => {
                for item in leases.range(..end)?.rev() {
                    let (_, v) = item?;
                    if keep(decode(v.value())?) {
                        break;
                    }
                }
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
        let txn = self.read()?;
        let leases = txn.open_table(LEASES)?;
        let idx = txn.open_table(AGENT_LEASES)?;
        let mut count = 0;
        for item in idx.range((agent, "")..(agent, "\u{10ffff}"))?.rev() {
            let (k, _) = item?;
            let Some(v) = leases.get(k.value().1)? else {
                continue;
            };
            let l: LeaseRecord = decode(v.value())?;
            if l.created_at < since {
                break;
            }
            if l.grant_id.as_deref() == Some(grant_id) {
                count += 1;
            }
        }
        Ok(count)
    }
}
