//! Approvals: the record, counting votes, and settling a decided approval onto its lease.

use serde_json::json;

use std::ops::Bound;

use super::keys::Key;
use super::leases::{
    APPROVALS, LEASES, LeaseRecord, apply, get, lease_draft, put, remove_deadline,
};
use super::{Origin, Store, StoreError, WriteCtx};
pub use crate::lease::ApprovalRecord;
use crate::lease::{ApprovalState, LeaseEvent, Vote, VoteOutcome};
use crate::notice::{ApprovalChange, Notice};

/// What a vote did.
pub struct VoteResult {
    /// The approval after the vote.
    pub approval: ApprovalRecord,
    /// The lease after the vote.
    pub lease: LeaseRecord,
    /// The outcome.
    pub outcome: VoteOutcome,
}

/// Closes an approval's tally side effects on its lease.
pub(super) fn settle(
    ctx: &mut WriteCtx<'_>,
    approval: &ApprovalRecord,
    lease: &mut LeaseRecord,
    origin: &Origin,
) -> Result<(), StoreError> {
    let by = approval.tally.decided_by.clone();
    let (approval_event, lease_event) = match approval.tally.state {
        ApprovalState::Approved => ("approval.granted", LeaseEvent::Grant),
        ApprovalState::AutoGranted => ("approval.auto_granted", LeaseEvent::Grant),
        ApprovalState::Denied => ("approval.denied", LeaseEvent::Deny),
        ApprovalState::Expired => ("approval.expired", LeaseEvent::Expire),
        ApprovalState::Cancelled | ApprovalState::Pending => return Ok(()),
    };
    remove_deadline(
        ctx,
        approval.tally.deadline,
        &format!("approval:{}", approval.id),
    )?;
    let details = json!({"approval_id": approval.id, "decided_by": by, "votes": approval.tally.votes.len(), "quorum": approval.tally.quorum});
    ctx.audit(lease_draft(lease, approval_event, origin, details.clone()))?;
    let mut lease_event = lease_event;
    if lease_event == LeaseEvent::Grant
        && lease.token_expires_at.is_some_and(|t| t <= ctx.now_unix())
    {
        // The requesting token is gone: a lease never outlives it.
        lease_event = LeaseEvent::Expire;
    }
    apply(
        ctx,
        lease,
        lease_event,
        origin,
        json!({"approval_id": approval.id, "decided_by": by}),
    )?;
    ctx.notify(Notice::Approval {
        change: ApprovalChange::Closed,
        approval: Box::new(approval.clone()),
    });
    Ok(())
}

impl Store {
    /// Counts an (authorised) approver's vote and applies its consequences.
    pub async fn vote(
        &self,
        approval_id: String,
        vote: Vote,
        origin: Origin,
    ) -> Result<VoteResult, StoreError> {
        self.write(move |ctx| {
            let mut approval: ApprovalRecord = get(ctx, APPROVALS, &approval_id, "approval")?;
            let mut lease: LeaseRecord = get(ctx, LEASES, &approval.lease_id, "lease")?;
            let (who, decision, reason, via) = (vote.approver.clone(), vote.decision, vote.reason.clone(), vote.via.clone());
            let outcome = approval.tally.vote(vote.clone());
            if matches!(outcome, VoteOutcome::AlreadyDecided(..) | VoteOutcome::Duplicate) {
                return Ok(VoteResult { approval, lease, outcome });
            }
            put(ctx, APPROVALS, &approval.id, &approval)?;
            let details = json!({"approval_id": approval.id, "approver": who, "decision": decision, "reason": reason, "via": via, "approvals": approval.tally.approvals(), "quorum": approval.tally.quorum});
            ctx.audit(lease_draft(&lease, "approval.voted", &origin, details))?;
            match &outcome {
                VoteOutcome::Counted => ctx.notify(Notice::Approval { change: ApprovalChange::Voted, approval: Box::new(approval.clone()) }),
                _ => settle(ctx, &approval, &mut lease, &origin)?,
            }
            Ok(VoteResult { approval, lease, outcome })
        })
        .await
    }

    /// An approval by id.
    pub fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        APPROVALS.get(&self.kv_read()?, id)
    }

    /// Approvals, newest first, optionally only pending ones.
    pub fn list_approvals(
        &self,
        pending_only: bool,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut out = Vec::new();
        // Ids are ULIDs: key order is creation order, so `before` is a keyset cursor.
        let end = match before {
            Some(b) => Bound::Excluded(b.encode()),
            None => Bound::Unbounded,
        };
        APPROVALS.scan(&self.kv_read()?, Bound::Unbounded, end, true, |_, a| {
            if !pending_only || a.tally.state == ApprovalState::Pending {
                out.push(a);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }
}
