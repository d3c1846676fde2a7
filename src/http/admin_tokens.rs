//! Admin tokens (admin): list, mint (the value is answered once and stored only as its hash)
//! and revoke, each change audited (`admin_token.minted`, `admin_token.revoked`). The last
//! working admin token cannot be revoked; a token may revoke itself while another works.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::AdminTokenInfo;

/// Body of `POST /v1/admin-tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintAdminToken {
    /// What the token is for (at most 200 characters), e.g. `ci deploy` or `alice laptop`.
    #[serde(default)]
    pub description: String,
}

/// A new admin token, shown once.
#[derive(Serialize, ToSchema)]
pub struct MintedAdminToken {
    /// `lk_admin_…`: store it now, it is not shown again.
    pub token: String,
    /// The token as listed.
    #[serde(flatten)]
    pub info: AdminTokenInfo,
}

/// List admin tokens, revoked ones included (admin; values are never shown).
#[utoipa::path(get, path = "/v1/admin-tokens", tag = "admin-tokens", responses((status = 200, body = Vec<AdminTokenInfo>)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<AdminTokenInfo>>, ApiError> {
    Ok(Json(state.store.list_admin_tokens()?))
}

/// Mint an admin token (admin; audited as `admin_token.minted`).
#[utoipa::path(post, path = "/v1/admin-tokens", tag = "admin-tokens", request_body = MintAdminToken, responses((status = 201, body = MintedAdminToken)))]
pub async fn mint(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<MintAdminToken>,
) -> Result<(StatusCode, Json<MintedAdminToken>), ApiError> {
    let description = body.description.trim().to_string();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "description must be one line of at most 200 characters".into(),
        ));
    }
    let (token, info) = state
        .store
        .create_admin_token(description, caller.origin.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(MintedAdminToken { token, info })))
}

/// Revoke an admin token (admin; audited as `admin_token.revoked`). The last working admin
/// token is refused with 409.
#[utoipa::path(delete, path = "/v1/admin-tokens/{id}", tag = "admin-tokens", params(("id" = String, Path)), responses((status = 200, body = AdminTokenInfo), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "already revoked, or the last working admin token", body = crate::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<AdminTokenInfo>, ApiError> {
    let id = id.to_ascii_lowercase();
    Ok(Json(
        state
            .store
            .revoke_admin_token(id, caller.origin.clone())
            .await?,
    ))
}
