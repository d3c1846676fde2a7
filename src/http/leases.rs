//! Lease endpoints: request (instant or pending approval), show with long-poll, list,
//! revoke, use (the value), and the one-call read for agents.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{JsonBody, Path, Query};
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::lease::{LeaseState, Tally};
use crate::notice::Notice;
use crate::policy::decide;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::{ApprovalRecord, LeaseRecord, NewLease, ReadOutcome};

/// Body of `POST /v1/leases`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// Secret path (relative to the agent's namespace, or absolute with a leading `/`).
    pub path: String,
    /// `read` (default) or `proxy`.
    #[serde(default = "read")]
    pub action: Action,
    /// Lifetime once granted (default 300 s, capped by config and grant).
    pub ttl_seconds: Option<u64>,
    /// Uses (default 1).
    pub uses: Option<u32>,
    /// For env_bundles: only these keys.
    pub keys: Option<Vec<String>>,
    /// Why the agent needs it (shown to approvers; at most 1000 characters).
    #[serde(default)]
    pub reason: String,
    /// Session binding (revoking the session revokes the lease).
    pub session_id: Option<String>,
    /// Task binding.
    pub task_id: Option<String>,
}

fn read() -> Action {
    Action::Read
}

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
}

/// A lease as answered.
#[derive(Serialize, ToSchema)]
pub struct LeaseView {
    /// The lease.
    #[serde(flatten)]
    pub lease: LeaseRecord,
    /// RFC 3339 form of `expires_at`.
    pub expires_at_rfc3339: String,
    /// Its approval, when one was needed.
    pub approval: Option<ApprovalSummary>,
}

fn ts(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(crate::util::rfc3339)
        .unwrap_or_default()
}

fn summary(a: &ApprovalRecord) -> ApprovalSummary {
    let t: &Tally = &a.tally;
    ApprovalSummary {
        id: a.id.clone(),
        votes_needed: t.quorum,
        votes: t.approvals(),
        deadline: ts(t.deadline),
        state: t.state,
        decided_by: t.decided_by.clone(),
    }
}

/// Builds the answer for a lease, looking its approval up when it has one.
pub fn view(state: &AppState, lease: LeaseRecord) -> Result<LeaseView, ApiError> {
    let approval = match &lease.approval_id {
        Some(id) => state.store.get_approval(id)?.map(|a| summary(&a)),
        None => None,
    };
    Ok(LeaseView {
        expires_at_rfc3339: ts(lease.expires_at),
        lease,
        approval,
    })
}

fn check_binding(name: &str, v: &Option<String>) -> Result<(), ApiError> {
    match v {
        Some(s) if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) => {
            Err(ApiError::BadRequest(format!(
                "{name} must be 1–128 characters without control characters"
            )))
        }
        _ => Ok(()),
    }
}

/// Checks a request and decides its rule; returns the lease to store.
async fn prepare(
    state: &AppState,
    caller: &Caller,
    req: LeaseRequest,
) -> Result<LeaseRecord, ApiError> {
    let Identity::Agent {
        agent,
        token,
        expires_at,
        ..
    } = &caller.identity
    else {
        return Err(ApiError::AccessDenied(
            "leases are requested by agents (use an agent key or scoped token)".into(),
        ));
    };
    if !matches!(req.action, Action::Read | Action::Proxy) {
        return Err(ApiError::BadRequest(
            "a lease's action is read or proxy".into(),
        ));
    }
    if req.reason.chars().count() > 1000 {
        return Err(ApiError::BadRequest(
            "reason is longer than 1000 characters".into(),
        ));
    }
    check_binding("session_id", &req.session_id)?;
    check_binding("task_id", &req.task_id)?;
    let full = caller.resolve_path(&req.path)?;
    let grant = caller.authorize(state, req.action, &full).await?;
    let secret = state
        .store
        .get_secret(&full)?
        .filter(|s| s.deleted_at.is_none())
        .ok_or_else(|| ApiError::NotFound(format!("no secret at {}", req.path)))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if secret
        .expires_at
        .as_deref()
        .and_then(crate::store::parse_query_time)
        .is_some_and(|t| t.unix_timestamp() <= now)
    {
        return Err(ApiError::Expired("the secret has expired".into()));
    }
    let cfg = &state.config.approvals;
    let limits = grant.as_ref().map(|g| g.limits.clone()).unwrap_or_default();
    let max_ttl = limits
        .max_ttl_seconds
        .map_or(cfg.max_lease_ttl_seconds, |m| {
            m.min(cfg.max_lease_ttl_seconds)
        });
    let ttl = req
        .ttl_seconds
        .unwrap_or(cfg.default_lease_ttl_seconds.min(max_ttl));
    if ttl == 0 || ttl > max_ttl {
        return Err(ApiError::InvalidTtl(format!(
            "ttl_seconds must be 1 to {max_ttl}"
        )));
    }
    let max_uses = limits
        .max_uses
        .map_or(cfg.max_lease_uses, |m| m.min(cfg.max_lease_uses));
    let uses = req.uses.unwrap_or(1);
    if uses == 0 || uses > max_uses {
        return Err(ApiError::BadRequest(format!(
            "uses must be 1 to {max_uses}"
        )));
    }
    let keys = match (req.keys, limits.keys, secret.secret_type == "env_bundle") {
        (Some(_), _, false) => {
            return Err(ApiError::BadRequest(
                "keys apply to env_bundle secrets only".into(),
            ));
        }
        (Some(k), Some(allowed), true) if !k.iter().all(|x| allowed.contains(x)) => {
            caller
                .deny(
                    state,
                    &secret.namespace,
                    &full,
                    req.action.as_str(),
                    "a requested key is not allowed by the grant",
                )
                .await?;
            None
        }
        (Some(k), _, true) if k.is_empty() => {
            return Err(ApiError::BadRequest("keys may not be empty".into()));
        }
        (Some(k), _, true) => Some(k),
        (None, Some(allowed), true) => Some(allowed),
        (None, _, _) => None,
    };
    if let (Some(max), Some(g)) = (limits.max_leases_per_hour, &grant)
        && state
            .store
            .count_recent_leases(&agent.id, &g.id, now - 3600)?
            >= max
    {
        return Err(ApiError::RateLimited(format!(
            "at most {max} leases an hour under grant {}",
            g.id
        )));
    }
    let mut overrides = cfg_overrides(state)?;
    overrides.extend(state.store.list_policies()?);
    let rule = decide(
        agent.trust_tier,
        &secret.sensitivity,
        &full,
        &overrides,
        cfg.default_deadline_seconds,
    );
    // A token that ends before its lease could be granted leaves nothing to wait for.
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::Unauthorized);
    }
    Ok(LeaseRecord {
        id: crate::util::new_id(),
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        trust_tier: agent.trust_tier,
        token_id: token.as_ref().map(|t| t.id.clone()),
        token_expires_at: *expires_at,
        namespace: secret.namespace.clone(),
        sensitivity: secret.sensitivity.clone(),
        path: full,
        action: req.action,
        ttl_seconds: ttl,
        uses,
        uses_left: uses,
        keys,
        reason: req.reason,
        session_id: req
            .session_id
            .or_else(|| token.as_ref().and_then(|t| t.session_id.clone())),
        task_id: req
            .task_id
            .or_else(|| token.as_ref().and_then(|t| t.task_id.clone())),
        state: LeaseState::Pending,
        policy: rule,
        flagged: false,
        grant_id: grant.map(|g| g.id),
        created_at: now,
        granted_at: None,
        expires_at: now,
        ended_at: None,
        approval_id: None,
    })
}

fn cfg_overrides(state: &AppState) -> Result<Vec<crate::policy::Override>, ApiError> {
    Ok(state.config.approval_policies.clone())
}

/// Request a lease: 201 with the lease, active at once or pending an approval.
#[utoipa::path(post, path = "/v1/leases", tag = "leases", request_body = LeaseRequest,
    responses((status = 201, body = LeaseView), (status = 403, body = crate::error::ErrorBody), (status = 410, body = crate::error::ErrorBody)))]
pub async fn request(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<LeaseRequest>,
) -> Result<(StatusCode, Json<LeaseView>), ApiError> {
    let lease = prepare(&state, &caller, req).await?;
    let (lease, _) = state
        .store
        .create_lease(NewLease { lease }, caller.origin.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, lease)?)))
}

/// `GET /v1/leases/{id}` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// Hold the request up to this many seconds (≤ 60) until the state changes.
    pub wait: Option<u64>,
}

fn owned(caller: &Caller, lease: Option<LeaseRecord>, id: &str) -> Result<LeaseRecord, ApiError> {
    match lease {
        Some(l) if caller.is_admin() || caller.agent().is_some_and(|a| a.id == l.agent_id) => Ok(l),
        _ => Err(ApiError::NotFound(format!("no lease {id}"))),
    }
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
    let lease = owned(&caller, state.store.get_lease(&id)?, &id)?;
    if wait == 0 {
        return Ok(Json(view(&state, lease)?));
    }
    let start = lease.state;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
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
    let lease = owned(&caller, state.store.get_lease(&id)?, &id)?;
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

/// The caller's leases (an admin sees all), newest first; page on with `before`.
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
    let agent = match &caller.identity {
        Identity::Admin { .. } => None,
        Identity::Agent { agent, .. } => Some(agent.id.clone()),
        Identity::Approver { .. } => {
            return Err(ApiError::AccessDenied(
                "approvers list approvals, not leases".into(),
            ));
        }
    };
    let leases = state.store.list_leases(
        agent.as_deref(),
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

/// Revoke a lease (a pending one's approval is cancelled).
#[utoipa::path(delete, path = "/v1/leases/{id}", tag = "leases", params(("id" = String, Path)), responses((status = 200, body = LeaseView), (status = 409, body = crate::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LeaseView>, ApiError> {
    owned(&caller, state.store.get_lease(&id)?, &id)?;
    let lease = state.store.revoke_lease(id, caller.origin.clone()).await?;
    Ok(Json(view(&state, lease)?))
}

/// A value handed out by a lease.
#[derive(Serialize, ToSchema)]
pub struct SecretValueView {
    /// The value (for types other than env_bundle).
    pub value: Option<String>,
    /// The entries of an env_bundle (only the allowed keys).
    #[schema(value_type = Option<Object>)]
    pub entries: Option<serde_json::Value>,
    /// The lease after this use.
    pub lease: LeaseView,
}

async fn use_lease(state: &AppState, caller: &Caller, id: String) -> Result<Response, ApiError> {
    let Some(agent) = caller.agent() else {
        return Err(ApiError::AccessDenied(
            "leases are used by the agent that holds them".into(),
        ));
    };
    match state
        .store
        .use_lease(id.clone(), agent.id.clone(), caller.origin.clone())
        .await?
    {
        ReadOutcome::Value(value, lease, kind) => {
            let lease = view(state, *lease)?;
            let body = if kind == "env_bundle" {
                let entries: serde_json::Value = serde_json::from_slice(value.expose_secret())
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                SecretValueView {
                    value: None,
                    entries: Some(entries),
                    lease,
                }
            } else {
                let text = String::from_utf8(value.expose_secret().to_vec())
                    .map_err(|_| ApiError::Internal("stored value is not UTF-8".into()))?;
                SecretValueView {
                    value: Some(text),
                    entries: None,
                    lease,
                }
            };
            // The body holds the value; `no-store` keeps it out of HTTP caches.
            let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut resp = (StatusCode::OK, bytes).into_response();
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        }
        ReadOutcome::Expired(why) => Err(ApiError::Expired(why)),
        ReadOutcome::AccessLimit => Err(ApiError::Expired(
            "the secret's max_access_count is reached".into(),
        )),
        ReadOutcome::NotActive(LeaseState::Pending) => {
            Err(ApiError::Conflict("the lease is pending approval".into()))
        }
        ReadOutcome::NotActive(LeaseState::Expired) => {
            Err(ApiError::Expired("the lease has expired".into()))
        }
        ReadOutcome::NotActive(s) => Err(ApiError::LeaseNotActive(format!("the lease is {s}"))),
    }
}

/// Use one use of an active read lease: the value (or the allowed env_bundle entries).
#[utoipa::path(post, path = "/v1/leases/{id}/secret", tag = "leases", params(("id" = String, Path)),
    responses((status = 200, body = SecretValueView), (status = 410, body = crate::error::ErrorBody, description = "expired")))]
pub async fn secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use_lease(&state, &caller, id).await
}

/// Body of the one-call read.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadNow {
    /// Why (shown to approvers).
    #[serde(default)]
    pub reason: String,
    /// For env_bundles: only these keys.
    pub keys: Option<Vec<String>>,
}

/// One call for agents: a single-use read lease; 200 with the value when instant, 202 with
/// the pending lease when it needs approval.
#[utoipa::path(post, path = "/v1/secrets/{path}/read", tag = "leases", params(("path" = String, Path)), request_body = ReadNow,
    responses((status = 200, body = SecretValueView), (status = 202, body = LeaseView)))]
pub async fn read_now(
    state: &AppState,
    caller: &Caller,
    path: String,
    body: ReadNow,
) -> Result<Response, ApiError> {
    let req = LeaseRequest {
        path,
        action: Action::Read,
        ttl_seconds: None,
        uses: Some(1),
        keys: body.keys,
        reason: body.reason,
        session_id: None,
        task_id: None,
    };
    let lease = prepare(state, caller, req).await?;
    let (lease, _) = state
        .store
        .create_lease(NewLease { lease }, caller.origin.clone())
        .await?;
    if lease.state == LeaseState::Active {
        return use_lease(state, caller, lease.id).await;
    }
    Ok((StatusCode::ACCEPTED, Json(view(state, lease)?)).into_response())
}
