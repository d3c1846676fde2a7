//! Secret endpoints: create/update, describe, list, versions, rollback, delete, restore.
//! No endpoint here returns a value. Paths travel in the URL; a path's last segment may not
//! be one of the action words (`versions`, `rollback`, `restore`, `read`), which keeps
//! `GET /v1/secrets/{path}/versions` unambiguous.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{JsonBody, Path, Query};
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::{PutSecret, SecretRecord, VersionInfo};

/// Secret types accepted in `type`.
pub const SECRET_TYPES: &[&str] = &[
    "api_key",
    "password",
    "token",
    "certificate",
    "ssh_key",
    "env_bundle",
    "note",
    "generic",
];
/// Sensitivities accepted in `sensitivity`.
pub const SENSITIVITIES: &[&str] = &["standard", "sensitive", "critical"];
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// Last segments reserved for actions.
pub const RESERVED: &[&str] = &["versions", "rollback", "restore", "read"];

/// Body of `PUT /v1/secrets/{path}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecretBody {
    /// The value (any type but `env_bundle`). Absent on update: metadata-only change.
    #[schema(value_type = Option<String>)]
    pub value: Option<SecretString>,
    /// The entries of an `env_bundle` (KEY → VALUE).
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub entries: Option<BTreeMap<String, SecretString>>,
    /// `api_key` (default), `password`, `token`, `certificate`, `ssh_key`, `env_bundle`, `note`, `generic`.
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    /// `standard` (default), `sensitive` or `critical`.
    pub sensitivity: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// RFC 3339 time after which the secret cannot be used.
    pub expires_at: Option<String>,
    /// Total reads allowed.
    pub max_access_count: Option<u64>,
    /// Check-and-set: the current version you expect (0: the secret must not exist yet).
    pub if_version: Option<u64>,
}

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

fn view(caller: &Caller, r: SecretRecord) -> SecretView {
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

/// `GET /v1/secrets` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only paths starting with this prefix (relative for agents).
    pub prefix: Option<String>,
    /// Include soft-deleted secrets.
    #[serde(default)]
    pub include_deleted: bool,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Continue after this full path (the previous page's `next`).
    pub after: Option<String>,
}

/// A page of secrets.
#[derive(Serialize, ToSchema)]
pub struct SecretList {
    /// The secrets.
    pub secrets: Vec<SecretView>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

/// `GET /v1/secrets/{path}` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Describe a soft-deleted secret too.
    #[serde(default)]
    pub include_deleted: bool,
}

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

fn split_action<'a>(raw: &'a str, actions: &[&'static str]) -> (&'a str, Option<&'static str>) {
    for a in actions {
        if let Some(base) = raw.strip_suffix(a).and_then(|b| b.strip_suffix('/')) {
            return (base, Some(a));
        }
    }
    (raw, None)
}

fn check_not_reserved(full: &str) -> Result<(), ApiError> {
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
            let body: super::leases::ReadNow = serde_json::from_value(json(&body)?)
                .map_err(|e| ApiError::InvalidJson(e.to_string()))?;
            super::leases::read_now(&state, &caller, base.to_string(), body).await
        }
        (base, Some(_)) => Ok(restore(state, caller, Path(base.to_string()))
            .await?
            .into_response()),
        (_, None) => Err(ApiError::NotFound(
            "POST takes …/rollback, …/restore or …/read".into(),
        )),
    }
}

/// Create or update a secret. A value makes a new version.
#[utoipa::path(put, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "Secret path; relative to the agent's namespace for agents")),
    request_body = PutSecretBody,
    responses((status = 201, body = SecretView, description = "Created"), (status = 200, body = SecretView, description = "Updated"),
        (status = 409, body = crate::error::ErrorBody, description = "version_conflict or secret_deleted")))]
pub async fn put_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<PutSecretBody>,
) -> Result<(StatusCode, Json<SecretView>), ApiError> {
    let full = caller.resolve_path(&raw)?;
    check_not_reserved(&full)?;
    if let Some(t) = &body.secret_type
        && !SECRET_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown type {t:?}; expected one of {SECRET_TYPES:?}"
        )));
    }
    if let Some(s) = &body.sensitivity
        && !SENSITIVITIES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown sensitivity {s:?}; expected one of {SENSITIVITIES:?}"
        )));
    }
    if let Some(e) = &body.expires_at
        && crate::store::parse_query_time(e).is_none()
    {
        return Err(ApiError::BadRequest(
            "expires_at must be an RFC 3339 time".into(),
        ));
    }
    let value = match (body.value, body.entries) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either value or entries, not both".into(),
            ));
        }
        (Some(v), None) => {
            if body.secret_type.as_deref() == Some("env_bundle") {
                return Err(ApiError::BadRequest(
                    "an env_bundle takes entries, not value".into(),
                ));
            }
            Some(crate::crypto::SecretValue::from(
                v.expose_secret().as_bytes().to_vec(),
            ))
        }
        (None, Some(entries)) => Some(bundle_value(&entries)?),
        (None, None) => None,
    };
    if let Some(v) = &value
        && v.expose_secret().len() > MAX_VALUE_BYTES
    {
        return Err(ApiError::BadRequest(format!(
            "the value is larger than {MAX_VALUE_BYTES} bytes"
        )));
    }
    caller.authorize(&state, Action::Write, &full).await?;
    let req = PutSecret {
        path: full,
        value,
        secret_type: body.secret_type,
        sensitivity: body.sensitivity,
        metadata: body.metadata,
        expires_at: body.expires_at,
        max_access_count: body.max_access_count,
        if_version: body.if_version,
    };
    let (rec, created) = state.store.put_secret(req, caller.origin.clone()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&caller, rec))))
}

/// Serialises env_bundle entries (validated names) as a JSON object.
fn bundle_value(
    entries: &BTreeMap<String, SecretString>,
) -> Result<crate::crypto::SecretValue, ApiError> {
    let mut map = serde_json::Map::new();
    for (k, v) in entries {
        let ok = !k.is_empty()
            && k.len() <= 128
            && k.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !ok {
            return Err(ApiError::BadRequest(format!(
                "entry name {:?} is not a valid variable name",
                k.chars().take(64).collect::<String>()
            )));
        }
        map.insert(
            k.clone(),
            serde_json::Value::String(v.expose_secret().to_string()),
        );
    }
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(&map).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    // The map's strings are plain copies; scrub them before they are dropped.
    for (_, v) in map.iter_mut() {
        if let serde_json::Value::String(s) = v {
            zeroize::Zeroize::zeroize(s);
        }
    }
    Ok(crate::crypto::SecretValue::from(json.to_vec()))
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

/// List secrets under a prefix (metadata only).
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", params(ListQuery), responses((status = 200, body = SecretList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<SecretList>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let raw_prefix = q.prefix.unwrap_or_default();
    crate::paths::validate_prefix(raw_prefix.trim_start_matches('/'))?;
    let grants = state.store.list_grants()?;
    let (full_prefix, agent) = match &caller.identity {
        Identity::Admin { .. } => (raw_prefix.trim_start_matches('/').to_string(), None),
        Identity::Approver { .. } => {
            caller
                .deny(
                    &state,
                    "",
                    &raw_prefix,
                    "list",
                    "approvers decide approvals; they do not use secrets",
                )
                .await?;
            return Err(ApiError::AccessDenied("access denied".into()));
        }
        Identity::Agent { agent, scopes, .. } => {
            let full = match raw_prefix.strip_prefix('/') {
                Some(abs) => abs.to_string(),
                None => format!("{}/{}", agent.namespace, raw_prefix),
            };
            let inside =
                full.starts_with(&format!("{}/", agent.namespace)) || full == agent.namespace;
            let may_list_outside = grants
                .iter()
                .any(|g| g.actions.contains(&Action::List) && g.names(&agent.id, &agent.namespace));
            if !inside && !may_list_outside {
                caller
                    .deny(
                        &state,
                        crate::paths::namespace_of(&full),
                        &full,
                        "list",
                        "outside the agent's namespace and no grant allows listing",
                    )
                    .await?;
            }
            (full, Some((agent.clone(), scopes.clone())))
        }
    };
    // Each record is shown only when the caller may describe it.
    let keep = |r: &SecretRecord| match &agent {
        None => true,
        Some((agent, scopes)) => {
            let rel = crate::paths::relative_to(&agent.namespace, &r.path);
            crate::scope::any_allows(scopes, Action::List, rel, &r.path)
                && matches!(
                    crate::policy::check(
                        &agent.id,
                        &agent.namespace,
                        Action::List,
                        &r.path,
                        &grants
                    ),
                    crate::policy::Access::Allowed(_)
                )
        }
    };
    let recs = state.store.list_secrets(
        &full_prefix,
        q.after.as_deref(),
        q.include_deleted,
        limit,
        keep,
    )?;
    let next = (recs.len() == limit)
        .then(|| recs.last().map(|r| r.path.clone()))
        .flatten();
    Ok(Json(SecretList {
        secrets: recs.into_iter().map(|r| view(&caller, r)).collect(),
        next,
    }))
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

/// Make an old version's value current again, as a new version.
#[utoipa::path(post, path = "/v1/secrets/{path}/rollback", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), request_body = RollbackBody, responses((status = 200, body = SecretView)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<SecretView>, ApiError> {
    let full = caller.resolve_path(&raw)?;
    caller.authorize(&state, Action::Write, &full).await?;
    let rec = state
        .store
        .rollback_secret(full, body.version, body.if_version, caller.origin.clone())
        .await?;
    Ok(Json(view(&caller, rec)))
}

/// Soft-delete a secret (restorable).
#[utoipa::path(delete, path = "/v1/secrets/{path}", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), responses((status = 200, body = SecretView)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let full = caller.resolve_path(&raw)?;
    caller.authorize(&state, Action::Write, &full).await?;
    let rec = state
        .store
        .delete_secret(full, caller.origin.clone())
        .await?;
    Ok(Json(view(&caller, rec)))
}

/// Restore a soft-deleted secret.
#[utoipa::path(post, path = "/v1/secrets/{path}/restore", tag = "secrets",
    params(("path" = String, Path, description = "Secret path")), responses((status = 200, body = SecretView)))]
pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let full = caller.resolve_path(&raw)?;
    caller.authorize(&state, Action::Write, &full).await?;
    let rec = state
        .store
        .restore_secret(full, caller.origin.clone())
        .await?;
    Ok(Json(view(&caller, rec)))
}
