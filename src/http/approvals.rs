//! Approval endpoints (the console channel): list, show, vote; and approver tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{JsonBody, Path, Query};
use crate::access::Admin;
use crate::audit::Draft;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::lease::{Decision, Vote, VoteOutcome};
use crate::state::AppState;
use crate::store::{ApprovalRecord, LeaseRecord};

/// `GET /v1/approvals` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending` (default) or `all`.
    pub state: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Cursor: only approvals older than this approval id (pass the last id of a page).
    pub before: Option<String>,
}

fn may_see(caller: &Caller, state: &AppState, a: &ApprovalRecord) -> bool {
    caller.is_admin()
        || caller
            .approver(state)
            .is_some_and(|ap| ap.may_decide(&a.path))
}

/// Approvals the caller may decide (admins see all), newest first; page on with `before`.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ListQuery), responses((status = 200, body = Vec<ApprovalRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ApprovalRecord>>, ApiError> {
    if !caller.is_admin() && caller.approver(&state).is_none() {
        caller
            .deny(&state, "", "approvals", "list", "not an approver")
            .await?;
    }
    let pending_only = match q.state.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "state is pending or all, not {other:?}"
            )));
        }
    };
    let all = state.store.list_approvals(
        pending_only,
        q.before.as_deref(),
        q.limit.unwrap_or(100).clamp(1, 1000),
    )?;
    Ok(Json(
        all.into_iter()
            .filter(|a| may_see(&caller, &state, a))
            .collect(),
    ))
}

/// One approval.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path)), responses((status = 200, body = ApprovalRecord)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApprovalRecord>, ApiError> {
    match state.store.get_approval(&id)? {
        Some(a) if may_see(&caller, &state, &a) => Ok(Json(a)),
        _ => Err(ApiError::NotFound(format!("no approval {id}"))),
    }
}

/// Body of a vote.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// `approve` or `deny`.
    pub decision: Decision,
    /// Optional reason (at most 400 characters).
    pub reason: Option<String>,
    /// Where the vote was cast: `api` (default), `cli` or `console`.
    pub via: Option<String>,
}

/// The result of a vote.
#[derive(Serialize, ToSchema)]
pub struct VoteAnswer {
    /// `counted`, `duplicate`, `decided` or `lapsed` (the deadline had passed).
    pub result: &'static str,
    /// The approval after the vote.
    pub approval: ApprovalRecord,
    /// The lease after the vote.
    pub lease: LeaseRecord,
}

/// Vote on an approval. Only approvers listed for the path may vote; a second vote by the
/// same approver counts once; after the decision the answer is 409 `already_decided`.
#[utoipa::path(post, path = "/v1/approvals/{id}/votes", tag = "approvals", params(("id" = String, Path)), request_body = VoteBody,
    responses((status = 200, body = VoteAnswer), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn vote(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VoteBody>,
) -> Result<Json<VoteAnswer>, ApiError> {
    let approval = state
        .store
        .get_approval(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no approval {id}")))?;
    let reason = body.reason.map(|r| {
        r.chars()
            .filter(|c| !c.is_control())
            .take(400)
            .collect::<String>()
    });
    let via = match body.via.as_deref() {
        None | Some("api") => "api",
        Some("cli") => "cli",
        Some("console") => "console",
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "via is api, cli or console, not {other:?}"
            )));
        }
    };
    let approver = caller
        .approver(&state)
        .filter(|a| a.may_decide(&approval.path));
    let Some(approver) = approver else {
        state
            .store
            .append_event(Draft {
                event: "approval.vote_rejected",
                actor: caller.origin.actor.clone(),
                namespace: approval.namespace.clone(),
                resource_path: approval.path.clone(),
                action: "vote".into(),
                outcome: "denied",
                ip: caller.origin.ip.clone(),
                details: json!({"approval_id": id, "reason": "not an approver for this path", "via": via}),
            })
            .await?;
        return Err(ApiError::AccessDenied(format!(
            "you are not an approver for {}",
            approval.path
        )));
    };
    let vote = Vote {
        approver: approver.name.clone(),
        decision: body.decision,
        reason,
        at: time::OffsetDateTime::now_utc().unix_timestamp(),
        via: via.into(),
    };
    let result = state.store.vote(id, vote, caller.origin.clone()).await?;
    let label = match &result.outcome {
        VoteOutcome::Counted => "counted",
        VoteOutcome::Duplicate => "duplicate",
        VoteOutcome::Decided(_) => "decided",
        VoteOutcome::Lapsed(_) => "lapsed",
        VoteOutcome::AlreadyDecided(s, by) => {
            let by = by.clone().unwrap_or_else(|| "nobody".into());
            let at = result
                .approval
                .tally
                .decided_at
                .and_then(crate::util::rfc3339_of)
                .unwrap_or_default();
            return Err(ApiError::AlreadyDecided(format!(
                "already decided ({}) by {by} at {at}",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )));
        }
    };
    Ok(Json(VoteAnswer {
        result: label,
        approval: result.approval,
        lease: result.lease,
    }))
}

/// A new approver token, shown once.
#[derive(Serialize, ToSchema)]
pub struct ApproverToken {
    /// The approver.
    pub approver: String,
    /// `lk_appr_…`.
    pub token: String,
}

/// Issue an API token for a configured approver (admin).
#[utoipa::path(post, path = "/v1/approvers/{name}/tokens", tag = "approvals", params(("name" = String, Path)), responses((status = 201, body = ApproverToken)))]
pub async fn approver_token(
    State(state): State<AppState>,
    caller: Admin,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<ApproverToken>), ApiError> {
    if !state.config.approvers.iter().any(|a| a.name == name) {
        return Err(ApiError::NotFound(format!(
            "no approver named {name:?} in the configuration"
        )));
    }
    let (token, _) = state
        .store
        .create_approver_token(name.clone(), caller.origin.clone())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ApproverToken {
            approver: name,
            token,
        }),
    ))
}
