//! Scoped tokens: minting (never wider than the parent, in scope or lifetime) and revocation
//! by token, agent, session or task.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::TokenReach;
use crate::auth::{Caller, Claims, Identity};
use crate::error::ApiError;
use crate::scope::{Scope, set_covers};
use crate::state::AppState;
use crate::store::{RevokeTarget, StoreError};

/// Body of `POST /v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    /// Scopes such as `secrets:read:production/openai/*`, relative to the agent's namespace.
    pub scopes: Vec<String>,
    /// Lifetime (default 600, at most the configured maximum, 900 by default).
    pub ttl_seconds: Option<u64>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Binds the token to a session; revoking the session revokes it.
    pub session_id: Option<String>,
    /// Binds the token to a task.
    pub task_id: Option<String>,
    /// Admins only: the agent to mint for.
    pub agent_id: Option<String>,
}

/// A minted token, shown once.
#[derive(Serialize, ToSchema)]
pub struct MintedToken {
    /// `lk_tok_…`, the bearer credential.
    pub token: String,
    /// Its id, for revocation.
    pub id: String,
    /// The agent it acts for.
    pub agent_id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Expiry (RFC 3339).
    pub expires_at: String,
    /// Session binding.
    pub session_id: Option<String>,
    /// Task binding.
    pub task_id: Option<String>,
}

fn check_binding(name: &str, v: &Option<String>) -> Result<(), ApiError> {
    match v {
        Some(s)
            if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_control() || c == ':') =>
        {
            Err(ApiError::BadRequest(format!(
                "{name} must be 1–128 characters without control characters or `:`"
            )))
        }
        _ => Ok(()),
    }
}

/// Mint a scoped token from an agent key or another scoped token.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = MintToken,
    responses((status = 201, body = MintedToken), (status = 403, body = crate::error::ErrorBody, description = "scope_escalation")))]
pub async fn mint(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<MintToken>,
) -> Result<(StatusCode, Json<MintedToken>), ApiError> {
    let cfg = &state.config.tokens;
    let ttl = body.ttl_seconds.unwrap_or(cfg.default_ttl_seconds);
    if ttl == 0 || ttl > cfg.max_ttl_seconds {
        return Err(ApiError::InvalidTtl(format!(
            "ttl_seconds must be 1 to {}",
            cfg.max_ttl_seconds
        )));
    }
    if body.scopes.is_empty() || body.scopes.len() > 64 {
        return Err(ApiError::InvalidScope("give 1 to 64 scopes".into()));
    }
    check_binding("session_id", &body.session_id)?;
    check_binding("task_id", &body.task_id)?;
    let scopes = body
        .scopes
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let now = OffsetDateTime::now_utc();
    let mut exp = now.unix_timestamp() + i64::try_from(ttl).unwrap_or(i64::MAX / 2);

    let (agent, parent, mut session_id, mut task_id) = match &caller.identity {
        Identity::Admin { .. } => {
            let id = body
                .agent_id
                .clone()
                .ok_or_else(|| ApiError::BadRequest("admins must name agent_id".into()))?;
            let agent = state
                .store
                .get_agent(&id)?
                .ok_or_else(|| ApiError::NotFound(format!("no agent {id}")))?;
            (agent, None, None, None)
        }
        Identity::Approver { .. } => {
            caller
                .deny(
                    &state,
                    "",
                    "tokens",
                    "mint",
                    "approvers do not mint agent tokens",
                )
                .await?;
            return Err(ApiError::AccessDenied("access denied".into()));
        }
        Identity::Agent {
            agent,
            token,
            scopes: held,
            expires_at,
            ..
        } => {
            if body.agent_id.as_ref().is_some_and(|a| *a != agent.id) {
                caller
                    .deny(
                        &state,
                        &agent.namespace,
                        "tokens",
                        "mint",
                        "an agent mints only for itself",
                    )
                    .await?;
            }
            if !set_covers(held, &scopes) {
                escalate(
                    &state,
                    &caller,
                    "the requested scopes are wider than the parent's",
                )
                .await?;
            }
            // Without an asked lifetime, a child lives as long as the default allows and never
            // past its parent; an asked lifetime beyond the parent's is an escalation.
            if body.ttl_seconds.is_none()
                && let Some(parent_exp) = *expires_at
            {
                exp = exp.min(parent_exp);
            }
            if expires_at.is_some_and(|parent_exp| exp > parent_exp) {
                escalate(
                    &state,
                    &caller,
                    "the requested lifetime outlives the parent token",
                )
                .await?;
            }
            let (ps, pt) = token
                .as_ref()
                .map_or((None, None), |t| (t.session_id.clone(), t.task_id.clone()));
            (agent.clone(), token.as_ref().map(|t| t.id.clone()), ps, pt)
        }
    };
    // A child keeps its parent's bindings; it may add one but never change one.
    for (name, inherited, requested) in [
        ("session_id", &mut session_id, &body.session_id),
        ("task_id", &mut task_id, &body.task_id),
    ] {
        match (&*inherited, requested) {
            (Some(a), Some(b)) if a != b => {
                escalate(
                    &state,
                    &caller,
                    &format!("the parent token is bound to another {name}"),
                )
                .await?
            }
            (None, Some(b)) => *inherited = Some(b.clone()),
            _ => {}
        }
    }
    let id = crate::util::new_id();
    let scope_strings: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let claims = Claims {
        id: id.clone(),
        agent: agent.id.clone(),
        ns: agent.namespace.clone(),
        scopes: scope_strings.clone(),
        exp,
        parent: parent.clone(),
        sid: session_id.clone(),
        tid: task_id.clone(),
    };
    let token = crate::auth::sign_token(state.store.keyring().signing_key(), &claims)?;
    let rec = crate::store::TokenRecord {
        id: id.clone(),
        agent_id: agent.id.clone(),
        parent,
        scopes: scope_strings.clone(),
        session_id: session_id.clone(),
        task_id: task_id.clone(),
        description: body.description.chars().take(512).collect(),
        issued_ns: u128::try_from(now.unix_timestamp_nanos()).unwrap_or(0),
        expires_at: exp,
        revoked_at: None,
    };
    state
        .store
        .record_token(rec, agent.namespace.clone(), caller.origin.clone())
        .await?;
    let expires_at = crate::util::rfc3339_of(exp).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(MintedToken {
            token,
            id,
            agent_id: agent.id,
            scopes: scope_strings,
            expires_at,
            session_id,
            task_id,
        }),
    ))
}

async fn escalate(state: &AppState, caller: &Caller, why: &str) -> Result<(), ApiError> {
    let ns = match &caller.identity {
        Identity::Agent { agent, .. } => agent.namespace.clone(),
        _ => String::new(),
    };
    let _ = caller.deny(state, &ns, "tokens", "mint", why).await;
    Err(ApiError::ScopeEscalation(format!(
        "scope escalation: {why}"
    )))
}

/// Body of `POST /v1/tokens/revoke`: exactly one target.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// One token (and every token minted from it).
    pub token_id: Option<String>,
    /// Every token of an agent issued until now.
    pub agent_id: Option<String>,
    /// Every token bound to this session.
    pub session_id: Option<String>,
    /// Every token bound to this task.
    pub task_id: Option<String>,
    /// Why (recorded in the `token.revoked` audit event).
    pub reason: Option<String>,
}

/// How many token records were revoked.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Count of token records marked revoked.
    pub revoked: u64,
}

/// Revoke by token, agent, session or task; takes effect on the next request. The admin
/// revokes any; an agent key its own agent's tokens; a scoped token itself and the tokens
/// minted from it (by `token_id`). Approvers revoke nothing.
#[utoipa::path(post, path = "/v1/tokens/revoke", tag = "tokens", request_body = Revoke, responses((status = 200, body = Revoked)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Revoke>,
) -> Result<Json<Revoked>, ApiError> {
    let given = [
        &body.token_id,
        &body.agent_id,
        &body.session_id,
        &body.task_id,
    ]
    .iter()
    .filter(|v| v.is_some())
    .count();
    if given != 1 {
        return Err(ApiError::BadRequest(
            "give exactly one of token_id, agent_id, session_id, task_id".into(),
        ));
    }
    check_binding("session_id", &body.session_id)?;
    check_binding("task_id", &body.task_id)?;
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::BadRequest(
            "reason is longer than 500 characters".into(),
        ));
    }
    let reach = TokenReach::of(&caller)?;
    let (target, what) = if let Some(t) = body.token_id {
        (RevokeTarget::Token(t), "token")
    } else if let Some(a) = body.agent_id {
        (RevokeTarget::Agent(a), "agent")
    } else if let Some(s) = body.session_id {
        (RevokeTarget::Session(s), "session")
    } else {
        (RevokeTarget::Task(body.task_id.unwrap_or_default()), "task")
    };
    match state
        .store
        .revoke(reach, target, body.reason, caller.origin.clone())
        .await
    {
        Ok(revoked) => Ok(Json(Revoked { revoked })),
        Err(StoreError::Denied(why)) => {
            caller.deny(&state, "", what, "revoke", &why).await?;
            Err(ApiError::AccessDenied(why))
        }
        Err(e) => Err(e.into()),
    }
}

/// Revoke one token.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 200, body = Revoked)))]
pub async fn revoke_one(
    state: State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    revoke(
        state,
        caller,
        JsonBody(Revoke {
            token_id: Some(id),
            agent_id: None,
            session_id: None,
            task_id: None,
            reason: None,
        }),
    )
    .await
}
