//! Requesting a lease: the request is checked against the caller, the secret and the grant's
//! limits, the approval rule is decided, and the lease is stored (active at once or pending).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::JsonBody;
use super::leases::{LeaseView, view};
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::lease::LeaseState;
use crate::policy::decide;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::{LeaseRecord, NewLease};

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
pub(super) async fn prepare(
    state: &AppState,
    caller: &Caller,
    req: LeaseRequest,
) -> Result<LeaseRecord, ApiError> {
    let Identity::Agent {
        agent,
        token,
        ancestors,
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
        token_lineage: ancestors.clone(),
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
