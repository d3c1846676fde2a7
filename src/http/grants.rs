//! Grants and approval-matrix overrides (admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::Admin;
use crate::error::ApiError;
use crate::policy::{Grant, Limits, Override, Subject};
use crate::scope::{Action, Glob};
use crate::state::AppState;

/// Body of a grant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// `{"kind":"agent","value":"<id>"}` or `{"kind":"namespace","value":"entities"}`.
    pub subject: Subject,
    /// Full-path glob, e.g. `production/openai/*`.
    pub pattern: String,
    /// Any of `read`, `proxy`, `list`, `write`.
    pub actions: Vec<Action>,
    /// Limits on the leases it allows.
    #[serde(default)]
    pub limits: Limits,
    /// When it stops applying (RFC 3339, in the future): a time-bound permission. Past it the
    /// grant allows nothing, and `grant.expired` is audited.
    pub expires_at: Option<String>,
}

async fn store_grant(
    state: &AppState,
    caller: &Admin,
    id: String,
    body: GrantBody,
) -> Result<Grant, ApiError> {
    Glob::parse(&body.pattern).map_err(ApiError::BadRequest)?;
    if body.actions.is_empty() {
        return Err(ApiError::BadRequest("actions may not be empty".into()));
    }
    if let Subject::Agent(a) = &body.subject
        && state.store.get_agent(a)?.is_none()
    {
        return Err(ApiError::NotFound(format!("no agent {a}")));
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(t) => {
            let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::BadRequest("expires_at must be an RFC 3339 time".into()))?;
            if at <= time::OffsetDateTime::now_utc() {
                return Err(ApiError::BadRequest("expires_at is in the past".into()));
            }
            Some(crate::util::rfc3339(at.to_offset(time::UtcOffset::UTC)))
        }
    };
    let grant = Grant {
        expires_at,
        id,
        subject: body.subject,
        pattern: body.pattern,
        actions: body.actions,
        limits: body.limits,
        created_at: crate::util::now_rfc3339(),
        created_by: caller.origin.actor.id.clone(),
    };
    Ok(state
        .store
        .create_grant(grant, caller.origin.clone())
        .await?)
}

/// Create a grant (admin).
#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = GrantBody, responses((status = 201, body = Grant)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(store_grant(&state, &caller, crate::util::new_id(), body).await?),
    ))
}

/// Create or replace the grant with this id (admin).
#[utoipa::path(put, path = "/v1/grants/{id}", tag = "grants", params(("id" = String, Path)), request_body = GrantBody, responses((status = 200, body = Grant)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<Json<Grant>, ApiError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::BadRequest(
            "grant ids are 1–64 letters, digits, - or _".into(),
        ));
    }
    Ok(Json(store_grant(&state, &caller, id, body).await?))
}

/// Every grant (admin).
#[utoipa::path(get, path = "/v1/grants", tag = "grants", responses((status = 200, body = Vec<Grant>)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<Grant>>, ApiError> {
    Ok(Json(state.store.list_grants()?))
}

/// Delete a grant (admin).
#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "grants", params(("id" = String, Path)), responses((status = 200, body = Grant)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<Grant>, ApiError> {
    Ok(Json(
        state.store.delete_grant(id, caller.origin.clone()).await?,
    ))
}

/// An override as listed, with where it comes from.
#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    /// The override.
    #[serde(flatten)]
    pub policy: Override,
    /// `config` or `api`.
    pub origin: &'static str,
}

/// Set the override for a pattern (admin). The body's `pattern` may be omitted.
#[utoipa::path(put, path = "/v1/approval-policies/{pattern}", tag = "grants", params(("pattern" = String, Path)), request_body = Override, responses((status = 200, body = Override)))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Admin,
    Path(pattern): Path<String>,
    JsonBody(mut body): JsonBody<serde_json::Value>,
) -> Result<Json<Override>, ApiError> {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("pattern".into(), serde_json::Value::String(pattern));
    }
    let policy: Override =
        serde_json::from_value(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    policy.validate().map_err(ApiError::BadRequest)?;
    Ok(Json(
        state
            .store
            .set_policy(policy, caller.origin.clone())
            .await?,
    ))
}

/// Every override: from the configuration and from the API (admin).
#[utoipa::path(get, path = "/v1/approval-policies", tag = "grants", responses((status = 200, body = Vec<PolicyView>)))]
pub async fn list_policies(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<PolicyView>>, ApiError> {
    let mut out: Vec<PolicyView> = state
        .config
        .approval_policies
        .iter()
        .cloned()
        .map(|policy| PolicyView {
            policy,
            origin: "config",
        })
        .collect();
    out.extend(
        state
            .store
            .list_policies()?
            .into_iter()
            .map(|policy| PolicyView {
                policy,
                origin: "api",
            }),
    );
    Ok(Json(out))
}

/// Remove an override set through the API (admin).
#[utoipa::path(delete, path = "/v1/approval-policies/{pattern}", tag = "grants", params(("pattern" = String, Path)), responses((status = 204)))]
pub async fn delete_policy(
    State(state): State<AppState>,
    caller: Admin,
    Path(pattern): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_policy(pattern, caller.origin.clone())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
