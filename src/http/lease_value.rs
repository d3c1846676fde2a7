//! Reading a value through a lease: one use of an active read lease answers the value (or
//! the allowed env_bundle entries), and the one-call read requests a single-use lease and
//! uses it at once when no approval is needed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Path;
use super::lease_request::{LeaseRequest, prepare};
use super::leases::{LeaseView, view};
use crate::access::LeaseGate;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::lease::LeaseState;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::{NewLease, ReadOutcome};

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
    let gate = LeaseGate::of(caller)?;
    match state
        .store
        .use_lease(gate, id.clone(), caller.origin.clone())
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
