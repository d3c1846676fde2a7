//! Lease endpoints: the lease as answered (with its approval), show with long-poll, list and
//! revoke. Requesting one is in `lease_request`; using one (the value) and the one-call read
//! for agents in `lease_value`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Path, Query};
use crate::access::LeaseGate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::lease::{LeaseState, Tally};
use crate::notice::Notice;
use crate::state::AppState;
use crate::store::{ApprovalRecord, LeaseRecord};

/// The approval part of a pending lease.
#[derive(Serialize, ToSchema)]
pub struct ApprovalSummary {
    /// Approval id.
    pub id: String,
    /// Approvals needed.
    pub votes_needed: u32,
    /// Approvals so far.
    pub votes: u32,
    /// Deadline (RFC 3339).
    pub deadline: String,
    /// `pending`, `approved`, `denied`, `expired`, `auto_granted`, `cancelled`.
    pub state: crate::lease::ApprovalState,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The reason the deciding approver gave (a denial's reason, for the agent to read).
    pub reason: Option<String>,
}

/// A lease as answered.
#[derive(Serialize, ToSchema)]
pub struct LeaseView {
    /// The lease.
    #[serde(flatten)]
    pub lease: LeaseRecord,
    /// Its approval, when one was needed.
    pub approval: Option<ApprovalSummary>,
}

fn summary(a: &ApprovalRecord) -> ApprovalSummary {
    let t: &Tally = &a.tally;
    ApprovalSummary {
        id: a.id.clone(),
        votes_needed: t.quorum,
        votes: t.approvals(),
        deadline: crate::util::rfc3339_of(t.deadline).unwrap_or_default(),
        state: t.state,
        decided_by: t.decided_by.clone(),
        reason: deciding_reason(t),
    }
}

/// The reason of the vote that decided the tally: the deny's for a denial, the last
/// approval's for a grant.
fn deciding_reason(t: &Tally) -> Option<String> {
    let wanted = match t.state {
        crate::lease::ApprovalState::Denied => crate::lease::Decision::Deny,
        crate::lease::ApprovalState::Approved => crate::lease::Decision::Approve,
        _ => return None,
    };
    t.votes
        .iter()
        .rev()
        .find(|v| v.decision == wanted)
        .and_then(|v| v.reason.clone())
}

/// Builds the answer for a lease, looking its approval up when it has one.
pub fn view(state: &AppState, lease: LeaseRecord) -> Result<LeaseView, ApiError> {
    let approval = match &lease.approval_id {
        Some(id) => state.store.get_approval(id)?.map(|a| summary(&a)),
        None => None,
    };
    Ok(LeaseView { lease, approval })
}

/// `GET /v1/leases/{id}` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// Hold the request up to this many seconds (≤ 60) until the state changes.
    pub wait: Option<u64>,
    /// The state the caller last saw (with `wait`): if the lease is no longer in it, answer at
    /// once, so a change between two polls (or while the daemon restarted) is never waited
    /// through.
    pub seen: Option<LeaseState>,
}

fn reached(gate: &LeaseGate, state: &AppState, id: &str) -> Result<LeaseRecord, ApiError> {
    state
        .store
        .lease(gate, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no lease {id}")))
}

/// Show a lease; with `?wait=N` answer as soon as its state changes (or after N seconds).
#[utoipa::path(get, path = "/v1/leases/{id}", tag = "leases", params(("id" = String, Path), ShowQuery), responses((status = 200, body = LeaseView)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Json<LeaseView>, ApiError> {
    // A long-poll must answer before the server's request timeout would cut it off.
    let max_wait = 60
        .min(state.config.http.request_timeout_seconds.saturating_sub(5))
        .max(1);
    let wait = q.wait.unwrap_or(0);
    if wait > max_wait {
        return Err(ApiError::BadRequest(format!(
            "wait is at most {max_wait} seconds"
        )));
    }
    // Subscribe before reading, so a change between the read and the wait is not missed.
    let mut rx = state.store.notices().subscribe();
    let gate = LeaseGate::of(&caller)?;
    let lease = reached(&gate, &state, &id)?;
    if wait == 0 {
        return Ok(Json(view(&state, lease)?));
    }
    let start = q.seen.unwrap_or(lease.state);
    if lease.state != start {
        return Ok(Json(view(&state, lease)?));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // A daemon that is stopping answers every waiting long-poll at once (503 shutting_down,
    // Retry-After): the caller asks again, of this daemon restarted or of another.
    let mut stopping = state.stopping.clone();
    // Several daemons on PostgreSQL: a wake-up sent while this daemon's listener reconnects is
    // lost, so the lease is also read again every second.
    let shared_db = state.store.postgres().is_some();
    let mut recheck = tokio::time::interval(Duration::from_secs(1));
    recheck.tick().await;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, rx.recv()) => next,
            _ = stopping.wait_for(|s| *s) => return Err(ApiError::ShuttingDown),
            _ = recheck.tick(), if shared_db => {
                if reached(&gate, &state, &id)?.state != start {
                    break;
                }
                continue;
            }
        };
        match next {
            Err(_) => break,
            Ok(Ok(Notice::Lease {
                id: changed,
                state: s,
            })) if changed == id && s != start => break,
            Ok(Ok(_)) => continue,
            // Lagged or closed: re-read the state below.
            Ok(Err(_)) => break,
        }
    }
    let lease = reached(&gate, &state, &id)?;
    Ok(Json(view(&state, lease)?))
}

/// `GET /v1/leases` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only leases in this state.
    pub state: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Cursor: only leases older than this lease id (pass the last id of a page).
    pub before: Option<String>,
}

/// The leases the caller's credential reaches (an admin sees all), newest first; page on with
/// `before`.
#[utoipa::path(get, path = "/v1/leases", tag = "leases", params(ListQuery), responses((status = 200, body = Vec<LeaseView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<LeaseView>>, ApiError> {
    let filter = match q.state.as_deref() {
        Some(s) => Some(
            LeaseState::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown state {s:?}")))?,
        ),
        None => None,
    };
    let gate = LeaseGate::of(&caller)?;
    let leases = state.store.list_leases(
        &gate,
        filter,
        q.before.as_deref(),
        q.limit.unwrap_or(100).clamp(1, 1000),
    )?;
    Ok(Json(
        leases
            .into_iter()
            .map(|l| view(&state, l))
            .collect::<Result<_, _>>()?,
    ))
}

/// `DELETE /v1/leases/{id}` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    /// Why (at most 400 characters), recorded in the `lease.revoked` audit event.
    pub reason: Option<String>,
}

/// Revoke a lease (a pending one's approval is cancelled).
#[utoipa::path(delete, path = "/v1/leases/{id}", tag = "leases", params(("id" = String, Path), RevokeQuery), responses((status = 200, body = LeaseView), (status = 409, body = crate::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<RevokeQuery>,
) -> Result<Json<LeaseView>, ApiError> {
    let gate = LeaseGate::of(&caller)?;
    let reason = q.reason.unwrap_or_else(|| "revoked".into());
    if reason.chars().count() > 400 {
        return Err(ApiError::BadRequest(
            "reason is at most 400 characters".into(),
        ));
    }
    let lease = state
        .store
        .revoke_lease(gate, id, reason, caller.origin.clone())
        .await?;
    Ok(Json(view(&state, lease)?))
}
