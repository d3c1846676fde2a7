//! How leases and approvals end: revocation (one lease, or every open lease matching a
//! predicate) and the deadline queue that expires approvals and leases.

use std::ops::Bound;

use serde_json::json;

use super::approvals::{ApprovalRecord, settle};
use super::keys::{Key, Reader};
use super::leases::{
    APPROVALS, DEADLINES, LEASES, LeaseRecord, OPEN_LEASES, apply, get, put, remove_deadline,
};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::access::LeaseGate;
use crate::lease::{ApprovalState, LeaseEvent, LeaseState};
use crate::notice::{ApprovalChange, Notice};

fn revoke_lease_in(
    ctx: &mut WriteCtx<'_>,
    lease_id: &str,
    origin: &Origin,
    why: &str,
) -> Result<Option<LeaseRecord>, StoreError> {
    let mut lease: LeaseRecord = get(ctx, LEASES, lease_id, "lease")?;
    if lease.state.is_final() {
        return Ok(None);
    }
    if lease.state == LeaseState::Pending
        && let Some(aid) = lease.approval_id.clone()
    {
        let mut approval: ApprovalRecord = get(ctx, APPROVALS, &aid, "approval")?;
        remove_deadline(ctx, approval.tally.deadline, &format!("approval:{aid}"))?;
        approval.tally.state = ApprovalState::Cancelled;
        approval.tally.decided_by = Some(origin.actor.id.clone());
        approval.tally.decided_at = Some(ctx.now_unix());
        put(ctx, APPROVALS, &aid, &approval)?;
        ctx.notify(Notice::Approval {
            change: ApprovalChange::Closed,
            approval: Box::new(approval),
        });
    }
    apply(
        ctx,
        &mut lease,
        LeaseEvent::Revoke,
        origin,
        json!({"reason": why}),
    )?;
    Ok(Some(lease))
}

/// Revokes every open lease matching `pred`; used by token, agent, session and task revocation.
pub(super) fn revoke_open_leases(
    ctx: &mut WriteCtx<'_>,
    origin: &Origin,
    why: &str,
    pred: impl Fn(&LeaseRecord) -> bool,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = {
        let tx = ctx.kv();
        let mut ids = Vec::new();
        for (k, _) in OPEN_LEASES.entries(&tx)? {
            if let Some(l) = LEASES.get_encoded(&tx, &k)?
                && pred(&l)
            {
                ids.push(l.id);
            }
        }
        ids
    };
    let mut n = 0;
    for id in ids {
        if revoke_lease_in(ctx, &id, origin, why)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

impl Store {
    /// Revokes one lease the gate admits (a pending one's approval is cancelled).
    pub async fn revoke_lease(
        &self,
        gate: LeaseGate,
        lease_id: String,
        reason: String,
        origin: Origin,
    ) -> Result<LeaseRecord, StoreError> {
        self.write(move |ctx| {
            let lease: LeaseRecord = get(ctx, LEASES, &lease_id, "lease")?;
            if !gate.admits(&lease) {
                return Err(StoreError::NotFound(format!("no lease {lease_id}")));
            }
            match revoke_lease_in(ctx, &lease_id, &origin, &reason)? {
                Some(l) => Ok(l),
                None => {
                    let l: LeaseRecord = get(ctx, LEASES, &lease_id, "lease")?;
                    Err(StoreError::Conflict(format!(
                        "the lease is already {}",
                        l.state
                    )))
                }
            }
        })
        .await
    }

    /// The earliest queued deadline (unix seconds).
    pub fn next_deadline(&self) -> Result<Option<i64>, StoreError> {
        let first = DEADLINES.range(
            &self.kv_read()?,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            1,
        )?;
        Ok(first.first().and_then(|(k, _)| Reader::new(k).i64()))
    }

    /// Applies every deadline at or before now: approvals expire or auto-grant, leases
    /// expire. Returns how many entries were processed.
    pub async fn apply_due_deadlines(&self) -> Result<usize, StoreError> {
        self.write(move |ctx| {
            let now = ctx.now_unix();
            // Every key of second `now` sorts below the first key of `now + 1`.
            let end = (now.saturating_add(1)).encode();
            let due: Vec<(i64, String)> = DEADLINES
                .range(
                    &ctx.kv(),
                    Bound::Unbounded,
                    Bound::Excluded(end.as_slice()),
                    false,
                    512,
                )?
                .into_iter()
                .map(|(k, _)| {
                    let mut key = Reader::new(&k);
                    match (key.i64(), key.string()) {
                        (Some(at), Some(key)) => Ok((at, key)),
                        _ => Err(StoreError::Corrupt("a deadline key".into())),
                    }
                })
                .collect::<Result<_, _>>()?;
            let origin = Origin::system();
            for (at, key) in &due {
                remove_deadline(ctx, *at, key)?;
                if let Some(aid) = key.strip_prefix("approval:") {
                    let mut approval: ApprovalRecord = get(ctx, APPROVALS, aid, "approval")?;
                    if approval.tally.apply_deadline(now).is_some() {
                        put(ctx, APPROVALS, aid, &approval)?;
                        let mut lease: LeaseRecord = get(ctx, LEASES, &approval.lease_id, "lease")?;
                        if lease.state == LeaseState::Pending {
                            settle(ctx, &approval, &mut lease, &origin)?;
                        }
                    }
                } else if let Some(gid) = key.strip_prefix("grant:") {
                    super::policies::grant_expired(ctx, gid)?;
                } else if let Some(lid) = key.strip_prefix("lease:") {
                    let mut lease: LeaseRecord = get(ctx, LEASES, lid, "lease")?;
                    // A pending lease waits for its approval's own deadline entry.
                    if lease.state == LeaseState::Active && lease.expires_at <= now {
                        apply(
                            ctx,
                            &mut lease,
                            LeaseEvent::Expire,
                            &origin,
                            json!({"reason": "ttl"}),
                        )?;
                    }
                }
            }
            Ok(due.len())
        })
        .await
    }
}
