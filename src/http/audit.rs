//! Audit endpoints: filtered, paginated queries and chain verification (admin).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Query;
use crate::access::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditFilter, AuditPage, VerifyReport, parse_query_time};

/// `GET /v1/audit` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First seq (inclusive).
    pub from_seq: Option<u64>,
    /// Last seq (inclusive).
    pub to_seq: Option<u64>,
    /// Event type or pattern, e.g. `secret.*`.
    pub event: Option<String>,
    /// Actor id.
    pub actor: Option<String>,
    /// Resource path prefix.
    pub path_prefix: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Earliest time (RFC 3339).
    pub since: Option<String>,
    /// Latest time (RFC 3339).
    pub until: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    v.map(|s| {
        parse_query_time(&s)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// Query the audit log (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = AuditPage)))]
pub async fn query(
    State(state): State<AppState>,
    _admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = AuditFilter {
        from_seq: q.from_seq,
        to_seq: q.to_seq,
        event: q.event,
        actor: q.actor,
        agent_id: None,
        path_prefix: q.path_prefix,
        namespace: q.namespace,
        since: time_param("since", q.since)?,
        until: time_param("until", q.until)?,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    Ok(Json(state.store.query_audit(&filter)?))
}

/// Walk the hash chain and report the first broken link (admin).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, body = VerifyReport)))]
pub async fn verify(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<VerifyReport>, ApiError> {
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || store.verify_audit())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(report))
}
