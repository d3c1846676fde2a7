//! Lease and approval operations: request, vote, use, revoke, and the deadline queue. The
//! decisions themselves are the pure state machines of `crate::lease`; this module loads,
//! applies and stores them, with their audit events, in one transaction each.

use redb::ReadableTable;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tables::{AGENT_LEASES, APPROVALS, DEADLINES, LEASES, OPEN_LEASES, SECRETS, VERSIONS};
use super::{Origin, SecretRecord, Store, StoreError, WriteCtx, decode, encode};
use crate::audit::Draft;
use crate::crypto::{self, Binding, SecretValue};
use crate::lease::{
    ApprovalState, LeaseEvent, LeaseState, Tally, Vote, VoteOutcome, active_until, transition,
};
use crate::notice::{ApprovalChange, Notice};
use crate::policy::{Requirement, Rule};
use crate::scope::Action;

/// A lease as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaseRecord {
    /// Id (ULID).
    pub id: String,
    /// Requesting agent.
    pub agent_id: String,
    /// Its name.
    pub agent_name: String,
    /// Its trust tier when it asked.
    pub trust_tier: u8,
    /// Requesting token, when a scoped token asked.
    pub token_id: Option<String>,
    /// That token's expiry: the lease never outlives it.
    pub token_expires_at: Option<i64>,
    /// Full secret path.
    pub path: String,
    /// Namespace of the secret.
    pub namespace: String,
    /// The secret's sensitivity.
    pub sensitivity: String,
    /// `read` or `proxy`.
    pub action: Action,
    /// Lifetime once granted.
    pub ttl_seconds: u64,
    /// Uses granted.
    pub uses: u32,
    /// Uses left.
    pub uses_left: u32,
    /// For env_bundles: the keys this lease may read (all when absent).
    pub keys: Option<Vec<String>>,
    /// Why the agent asks.
    pub reason: String,
    /// Session binding.
    pub session_id: Option<String>,
    /// Task binding.
    pub task_id: Option<String>,
    /// Current state.
    pub state: LeaseState,
    /// The rule that applied and why.
    pub policy: Rule,
    /// Granted without approval but flagged for review (tier 5 × critical).
    pub flagged: bool,
    /// The grant that allowed it, outside the agent's namespace.
    pub grant_id: Option<String>,
    /// Requested (unix seconds).
    pub created_at: i64,
    /// Granted (unix seconds).
    pub granted_at: Option<i64>,
    /// Pending: the approval deadline. Active: the end of the lease (unix seconds).
    pub expires_at: i64,
    /// When it reached a final state.
    pub ended_at: Option<i64>,
    /// Its approval, when one was needed.
    pub approval_id: Option<String>,
}

/// An approval as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    /// Id (ULID).
    pub id: String,
    /// The lease it decides.
    pub lease_id: String,
    /// Requesting agent id and name, and tier.
    pub agent_id: String,
    /// Agent name.
    pub agent_name: String,
    /// Agent tier.
    pub trust_tier: u8,
    /// Full path.
    pub path: String,
    /// Namespace.
    pub namespace: String,
    /// Sensitivity.
    pub sensitivity: String,
    /// Action.
    pub action: Action,
    /// Lease TTL once granted.
    pub ttl_seconds: u64,
    /// Uses.
    pub uses: u32,
    /// env_bundle keys asked for.
    pub keys: Option<Vec<String>>,
    /// The agent's reason.
    pub reason: String,
    /// Requested (unix seconds).
    pub requested_at: i64,
    /// Which rule asked for approval.
    pub policy_source: String,
    /// Votes, quorum, deadline, state.
    pub tally: Tally,
}

/// A lease request, checked by the caller.
pub struct NewLease {
    /// The lease as it starts (state and times are set here).
    pub lease: LeaseRecord,
}

/// What a use of a lease gave.
pub enum ReadOutcome {
    /// The value (or the allowed entries of a bundle, as JSON).
    Value(SecretValue, Box<LeaseRecord>, String),
    /// The lease or secret has expired (the lease is now `expired`).
    Expired(String),
    /// The secret's `max_access_count` is spent.
    AccessLimit,
    /// The lease is not active (state given).
    NotActive(LeaseState),
}

/// What a vote did.
pub struct VoteResult {
    /// The approval after the vote.
    pub approval: ApprovalRecord,
    /// The lease after the vote.
    pub lease: LeaseRecord,
    /// The outcome.
    pub outcome: VoteOutcome,
}

fn get<T: serde::de::DeserializeOwned>(
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

fn put<T: Serialize>(
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

fn add_deadline(ctx: &mut WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    ctx.txn.open_table(DEADLINES)?.insert((at, key), 0u8)?;
    ctx.deadline_added();
    Ok(())
}

fn remove_deadline(ctx: &WriteCtx<'_>, at: i64, key: &str) -> Result<(), StoreError> {
    ctx.txn.open_table(DEADLINES)?.remove((at, key))?;
    Ok(())
}

fn lease_draft(
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
fn apply(
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
        let mut details = json!({"lease_id": lease.id, "from": from, "to": to, "expires_at": lease.expires_at, "uses_left": lease.uses_left});
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

/// Closes an approval's tally side effects on its lease.
fn settle(
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
        let open = ctx.txn.open_table(OPEN_LEASES)?;
        let leases = ctx.txn.open_table(LEASES)?;
        let mut ids = Vec::new();
        for item in open.iter()? {
            let (k, _) = item?;
            if let Some(v) = leases.get(k.value())? {
                let l: LeaseRecord = decode(v.value())?;
                if pred(&l) {
                    ids.push(l.id);
                }
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

/// Picks the allowed entries of an env_bundle value.
fn bundle_subset(plain: &[u8], keys: &[String]) -> Result<SecretValue, StoreError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(plain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let picked: serde_json::Map<String, serde_json::Value> =
        map.into_iter().filter(|(k, _)| keys.contains(k)).collect();
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(&picked).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    );
    Ok(SecretValue::from(bytes.to_vec()))
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
                    let details = json!({"approval_id": approval.id, "quorum": approval.tally.quorum, "deadline": approval.tally.deadline, "on_deadline": approval.tally.on_deadline});
                    ctx.audit(lease_draft(&lease, "approval.requested", &origin, details))?;
                    ctx.notify(Notice::Approval { change: ApprovalChange::Opened, approval: Box::new(approval.clone()) });
                    Ok((lease, Some(approval)))
                }
            }
        })
        .await
    }

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
            let outcome = approval.tally.vote(vote);
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

    /// Uses one use of an active read lease: returns the value, counts the access, writes
    /// `secret.read` — all in one transaction, so a single use is given at most once.
    pub async fn use_lease(
        &self,
        lease_id: String,
        agent_id: String,
        origin: Origin,
    ) -> Result<ReadOutcome, StoreError> {
        self.use_lease_for(lease_id, agent_id, origin, Action::Read, None)
            .await
    }

    /// Uses one use of an active lease for `action`: `read` audits `secret.read`; `proxy`
    /// (when `for_path` names the service's secret) audits `lease.used` before the credential
    /// leaves, and the proxy audits `secret.used` with the upstream's answer after.
    pub async fn use_lease_for(
        &self,
        lease_id: String,
        agent_id: String,
        origin: Origin,
        action: Action,
        for_path: Option<String>,
    ) -> Result<ReadOutcome, StoreError> {
        let keyring = self.keyring();
        self.write(move |ctx| {
            let mut lease: LeaseRecord = get(ctx, LEASES, &lease_id, "lease")?;
            if lease.agent_id != agent_id {
                return Err(StoreError::NotFound(format!("no lease {lease_id}")));
            }
            if for_path.as_ref().is_some_and(|p| *p != lease.path) {
                return Err(StoreError::Invalid("the lease is for another secret than the service uses".into()));
            }
            if lease.action != action && action == Action::Proxy {
                return Err(StoreError::Invalid("this lease is for reading, not for the proxy".into()));
            }
            if lease.action != action {
                return Err(StoreError::Invalid("this lease is for the proxy, not for reading the value".into()));
            }
            if lease.state != LeaseState::Active {
                return Ok(ReadOutcome::NotActive(lease.state));
            }
            let now = ctx.now_unix();
            if now >= lease.expires_at {
                apply(ctx, &mut lease, LeaseEvent::Expire, &origin, json!({"reason": "ttl"}))?;
                return Ok(ReadOutcome::Expired("the lease has expired".into()));
            }
            let mut secret: SecretRecord = {
                let t = ctx.txn.open_table(SECRETS)?;
                let got = t.get(lease.path.as_str())?.ok_or_else(|| StoreError::NotFound(format!("no secret at {}", lease.path)))?;
                decode(got.value())?
            };
            if secret.deleted_at.is_some() {
                return Err(StoreError::Deleted(format!("the secret at {} is deleted", lease.path)));
            }
            if secret.expires_at.as_deref().and_then(super::parse_query_time).is_some_and(|t| t.unix_timestamp() <= now) {
                return Ok(ReadOutcome::Expired("the secret has expired".into()));
            }
            if secret.max_access_count.is_some_and(|m| secret.access_count >= m) {
                return Ok(ReadOutcome::AccessLimit);
            }
            let version = secret.current_version;
            let sealed = {
                let t = ctx.txn.open_table(VERSIONS)?;
                let got = t.get((lease.path.as_str(), version))?.ok_or_else(|| StoreError::Corrupt(format!("{} lacks version {version}", lease.path)))?;
                decode::<super::secrets::VersionRecord>(got.value())?.sealed
            };
            let plain = crypto::open(&keyring, Binding { namespace: &secret.namespace, path: &secret.path, version }, &sealed)?;
            let value = match &lease.keys {
                Some(keys) if secret.secret_type == "env_bundle" => bundle_subset(plain.expose_secret(), keys)?,
                _ => plain,
            };
            secret.access_count += 1;
            ctx.txn.open_table(SECRETS)?.insert(secret.path.as_str(), encode(&secret)?.as_slice())?;
            lease.uses_left = lease.uses_left.saturating_sub(1);
            let read = json!({"lease_id": lease.id, "version": version, "access_count": secret.access_count, "keys": lease.keys, "uses_left": lease.uses_left});
            let event = if action == Action::Read { "secret.read" } else { "lease.used" };
            ctx.audit(lease_draft(&lease, event, &origin, read))?;
            let last = lease.uses_left == 0;
            if last {
                apply(ctx, &mut lease, LeaseEvent::Use { last }, &origin, json!({}))?;
            } else {
                put(ctx, LEASES, &lease.id, &lease)?;
            }
            let kind = secret.secret_type.clone();
            Ok(ReadOutcome::Value(value, Box::new(lease), kind))
        })
        .await
    }

    /// Revokes one lease (a pending one's approval is cancelled).
    pub async fn revoke_lease(
        &self,
        lease_id: String,
        origin: Origin,
    ) -> Result<LeaseRecord, StoreError> {
        self.write(
            move |ctx| match revoke_lease_in(ctx, &lease_id, &origin, "revoked")? {
                Some(l) => Ok(l),
                None => {
                    let l: LeaseRecord = get(ctx, LEASES, &lease_id, "lease")?;
                    Err(StoreError::Conflict(format!(
                        "the lease is already {}",
                        l.state
                    )))
                }
            },
        )
        .await
    }

    /// A lease by id.
    pub fn get_lease(&self, id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(LEASES)?;
        let got = t.get(id)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// An approval by id.
    pub fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(APPROVALS)?;
        let got = t.get(id)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// Leases of one agent (or all, for None), newest first, optionally in one state.
    pub fn list_leases(
        &self,
        agent: Option<&str>,
        state: Option<LeaseState>,
        limit: usize,
    ) -> Result<Vec<LeaseRecord>, StoreError> {
        let txn = self.read()?;
        let leases = txn.open_table(LEASES)?;
        let mut out = Vec::new();
        let mut keep = |l: LeaseRecord| {
            if state.is_none_or(|s| s == l.state) {
                out.push(l);
            }
            out.len() >= limit
        };
        match agent {
            Some(a) => {
                let idx = txn.open_table(AGENT_LEASES)?;
                for item in idx.range((a, "")..=(a, "\u{10ffff}"))?.rev() {
                    let (k, _) = item?;
                    if let Some(v) = leases.get(k.value().1)?
                        && keep(decode(v.value())?)
                    {
                        break;
                    }
                }
            }
            None => {
                for item in leases.iter()?.rev() {
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
    pub fn count_recent_leases(
        &self,
        agent: &str,
        grant_id: &str,
        since: i64,
    ) -> Result<u32, StoreError> {
        let recent = self.list_leases(Some(agent), None, 10_000)?;
        Ok(recent
            .iter()
            .take_while(|l| l.created_at >= since)
            .filter(|l| l.grant_id.as_deref() == Some(grant_id))
            .count() as u32)
    }

    /// Approvals, newest first, optionally only pending ones.
    pub fn list_approvals(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(APPROVALS)?;
        let mut out = Vec::new();
        for item in t.iter()?.rev() {
            let a: ApprovalRecord = decode(item?.1.value())?;
            if !pending_only || a.tally.state == ApprovalState::Pending {
                out.push(a);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The earliest queued deadline (unix seconds).
    pub fn next_deadline(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(DEADLINES)?;
        Ok(t.first()?.map(|(k, _)| k.value().0))
    }

    /// Applies every deadline at or before now: approvals expire or auto-grant, leases
    /// expire. Returns how many entries were processed.
    pub async fn apply_due_deadlines(&self) -> Result<usize, StoreError> {
        self.write(move |ctx| {
            let now = ctx.now_unix();
            let due: Vec<(i64, String)> = {
                let t = ctx.txn.open_table(DEADLINES)?;
                let mut due = Vec::new();
                for item in t.range((i64::MIN, "")..=(now, "\u{10ffff}"))? {
                    let (k, _) = item?;
                    let (at, key) = k.value();
                    due.push((at, key.to_string()));
                    if due.len() >= 512 {
                        break;
                    }
                }
                due
            };
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
