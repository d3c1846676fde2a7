//! Secret endpoints: what a secret looks like to the API, the dispatch of
//! `/v1/secrets/{*path}` to its handlers, and describe. Writes live in `secret_write`,
//! listing in `secret_list`, versions, rollback, delete and restore in `secret_lifecycle`.
//! No endpoint of these returns a value. Paths travel in the URL; a path's last segment may
//! not be one of the action words (`versions`, `rollback`, `restore`, `read`), which keeps
//! `GET /v1/secrets/{path}/versions` unambiguous.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::secret_lifecycle::{RollbackBody, restore, rollback, versions};
use super::{JsonBody, Path, Query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::SecretRecord;

/// Last segments reserved for actions.
pub const RESERVED: &[&str] = &["versions", "rollback", "restore", "read"];

/// A secret as described by the API (never its value).
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    /// The path as the caller addresses it.
    pub path: String,
    /// The full path.
    pub full_path: String,
    /// Namespace.
    pub namespace: String,
    /// Type.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// Sensitivity.
    pub sensitivity: String,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Read limit.
    pub max_access_count: Option<u64>,
    /// Reads so far.
    pub access_count: u64,
    /// Current version.
    pub current_version: u64,
    /// Highest version.
    pub latest_version: u64,
    /// Created.
    pub created_at: String,
    /// Creator.
    pub created_by: String,
    /// Last change.
    pub updated_at: String,
    /// Soft-deleted?
    pub deleted: bool,
    /// When deleted.
    pub deleted_at: Option<String>,
}

pub(super) fn view(caller: &Caller, r: SecretRecord) -> SecretView {
    SecretView {
        path: caller.display_path(&r.path),
        deleted: r.deleted_at.is_some(),
        full_path: r.path,
        namespace: r.namespace,
        secret_type: r.secret_type,
        sensitivity: r.sensitivity,
        metadata: r.metadata,
        expires_at: r.expires_at,
        max_access_count: r.max_access_count,
        access_count: r.access_count,
        current_version: r.current_version,
        latest_version: r.latest_version,
        created_at: r.created_at,
        created_by: r.created_by,
        updated_at: r.updated_at,
        deleted_at: r.deleted_at,
    }
}

/// `GET /v1/secrets/{path}` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Describe a soft-deleted secret too.
    #[serde(default)]
    pub include_deleted: bool,
}

fn split_action<'a>(raw: &'a str, actions: &[&'static str]) -> (&'a str, Option<&'static str>) {
    for a in actions {
        if let Some(base) = raw.strip_suffix(a).and_then(|b| b.strip_suffix('/')) {
            return (base, Some(a));
        }
    }
    (raw, None)
}

pub(super) fn check_not_reserved(full: &str) -> Result<(), ApiError> {
    let last = full.rsplit('/').next().unwrap_or(full);
    if RESERVED.contains(&last) {
        return Err(ApiError::InvalidPath(format!(
            "the last segment of a path may not be one of {RESERVED:?}"
        )));
    }
    Ok(())
}

/// `GET /v1/secrets/{*path}`: describe, or `…/versions`.
pub async fn get_dispatch(
    state: State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    query: Query<GetQuery>,
) -> Result<Response, ApiError> {
    match split_action(&raw, &["versions"]) {
        (base, Some(_)) => Ok(versions(state, caller, Path(base.to_string()))
            .await?
            .into_response()),
        (_, None) => Ok(describe(state, caller, Path(raw), query)
            .await?
            .into_response()),
    }
}

/// `POST /v1/secrets/{*path}`: `…/rollback`, `…/restore` or `…/read`.
pub async fn post_dispatch(
    state: State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let json = |body: &[u8]| -> Result<serde_json::Value, ApiError> {
        if body.is_empty() {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
    };
    match split_action(&raw, &["rollback", "restore", "read"]) {
        (base, Some("rollback")) => {
            let body: RollbackBody = serde_json::from_value(json(&body)?)
                .map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            Ok(
                rollback(state, caller, Path(base.to_string()), JsonBody(body))
                    .await?
                    .into_response(),
            )
        }
        (base, Some("read")) => {
            let body: super::lease_value::ReadNow = serde_json::from_value(json(&body)?)
                .map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            super::lease_value::read_now(&state, &caller, base.to_string(), body).await
        }
        (base, Some(_)) => Ok(restore(state, caller, Path(base.to_string()))
            .await?
            .into_response()),
        (_, None) => Err(ApiError::NotFound(
            "POST takes …/rollback, …/restore or …/read".into(),
        )),
    }
}

/// Describe a secret (metadata only, never the value).
#[utoipa::path(get, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "Secret path"), GetQuery),
    responses((status = 200, body = SecretView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(q): Query<GetQuery>,
) -> Result<Json<SecretView>, ApiError> {
    let full = caller.resolve_path(&raw)?;
    caller.authorize(&state, Action::List, &full).await?;
    match state.store.get_secret(&full)? {
        Some(rec) if rec.deleted_at.is_none() || q.include_deleted => Ok(Json(view(&caller, rec))),
        _ => Err(ApiError::NotFound(format!("no secret at {raw}"))),
    }
}
