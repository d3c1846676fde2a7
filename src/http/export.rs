//! `POST /v1/export` (admin): values of the named secrets, for migration to another store.
//! Every exported secret is audited (`secret.exported`); nothing else returns values to admins.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::JsonBody;
use crate::access::Admin;
use crate::audit::Draft;
use crate::error::ApiError;
use crate::state::AppState;

/// Body of an export.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// Full paths of the secrets (at most 1000). A path ending in `/` exports every secret below it.
    pub paths: Vec<String>,
}

/// Export values (admin); the answer is `{"secrets": {PATH: VALUE or {KEY: VALUE}}}`.
#[utoipa::path(post, path = "/v1/export", tag = "secrets", request_body = ExportBody, responses((status = 200, description = "the values, by path")))]
pub async fn export(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<ExportBody>,
) -> Result<Response, ApiError> {
    if body.paths.is_empty() || body.paths.len() > 1000 {
        return Err(ApiError::BadRequest("give 1 to 1000 paths".into()));
    }
    let mut paths = Vec::new();
    for p in &body.paths {
        let p = p.trim_start_matches('/');
        if let Some(prefix) = p.strip_suffix('/') {
            crate::paths::validate(prefix)?;
            paths.extend(
                state
                    .store
                    .list_secrets(&format!("{prefix}/"), None, false, 10_000, |_| true)?
                    .into_iter()
                    .map(|r| r.path),
            );
        } else {
            crate::paths::validate(p)?;
            paths.push(p.to_string());
        }
    }
    if paths.len() > 10_000 {
        return Err(ApiError::BadRequest(
            "an export holds at most 10,000 secrets".into(),
        ));
    }
    // Every path must exist before anything is read or audited.
    let mut records = Vec::with_capacity(paths.len());
    for p in &paths {
        let rec = state
            .store
            .get_secret(p)?
            .filter(|r| r.deleted_at.is_none());
        records.push(rec.ok_or_else(|| ApiError::NotFound(format!("no secret at {p}")))?);
    }
    let mut out = serde_json::Map::new();
    for (p, rec) in paths.iter().zip(records) {
        let value = state.store.read_value(p, None)?;
        let v = if rec.secret_type == "env_bundle" {
            serde_json::from_slice(value.expose_secret())
                .map_err(|e| ApiError::Internal(e.to_string()))?
        } else {
            serde_json::Value::String(
                String::from_utf8(value.expose_secret().to_vec())
                    .map_err(|_| ApiError::Internal("value is not UTF-8".into()))?,
            )
        };
        state
            .store
            .append_event(Draft {
                event: "secret.exported",
                actor: caller.origin.actor.clone(),
                namespace: rec.namespace.clone(),
                resource_path: rec.path.clone(),
                action: "export".into(),
                outcome: "success",
                ip: caller.origin.ip.clone(),
                details: json!({"version": rec.current_version, "type": rec.secret_type}),
            })
            .await?;
        out.insert(p.clone(), v);
    }
    let bytes = serde_json::to_vec(&json!({ "secrets": out }))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
