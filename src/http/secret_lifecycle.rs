//! A secret's history and lifecycle: list its versions, roll back to one, soft-delete and
//! restore. None of these returns a value.

use std::future::Future;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::secrets::{SecretView, view};
use super::{JsonBody, Path};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::{Origin, SecretRecord, StoreError, VersionInfo};

/// Body of a rollback.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose value becomes current again.
    pub version: u64,
    /// Check-and-set on the current version.
    pub if_version: Option<u64>,
}

/// Versions of a secret.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    /// Path as addressed.
    pub path: String,
    /// Oldest first.
    pub versions: Vec<VersionInfo>,
}

/// Every version of a secret (never values).
#[utoipa::path(get, path = "/v1/secrets/{path}/versions", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), responses((status = 200, body = VersionList)))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let full = caller.resolve_path(&raw)?;
    caller.authorize(&state, Action::List, &full).await?;
    let versions = state.store.list_versions(&full)?;
    Ok(Json(VersionList {
        path: caller.display_path(&full),
        versions,
    }))
}

/// What rollback, delete and restore share: resolve the path, authorise a write, apply
/// `change` to the full path (on behalf of the caller's origin) and answer the record.
async fn write_change<F, Fut>(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    change: F,
) -> Result<Json<SecretView>, ApiError>
where
    F: FnOnce(String, Origin) -> Fut,
    Fut: Future<Output = Result<SecretRecord, StoreError>>,
{
    let full = caller.resolve_path(raw)?;
    caller.authorize(state, Action::Write, &full).await?;
    let rec = change(full, caller.origin.clone()).await?;
    Ok(Json(view(caller, rec)))
}

/// Make an old version's value current again, as a new version.
#[utoipa::path(post, path = "/v1/secrets/{path}/rollback", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), request_body = RollbackBody, responses((status = 200, body = SecretView)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<SecretView>, ApiError> {
    write_change(&state, &caller, &raw, |full, origin| {
        state
            .store
            .rollback_secret(full, body.version, body.if_version, origin)
    })
    .await
}

/// Soft-delete a secret (restorable).
#[utoipa::path(delete, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), responses((status = 200, body = SecretView)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    write_change(&state, &caller, &raw, |full, origin| {
        state.store.delete_secret(full, origin)
    })
    .await
}

/// Restore a soft-deleted secret.
#[utoipa::path(post, path = "/v1/secrets/{path}/restore", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), responses((status = 200, body = SecretView)))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    write_change(&state, &caller, &raw, |full, origin| {
        state.store.restore_secret(full, origin)
    })
    .await
}
