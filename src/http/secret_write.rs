//! Writing a secret: `PUT /v1/secrets/{path}` checks the body (type, sensitivity, expiry,
//! value or env_bundle entries, size) and creates or updates the secret.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::secrets::{SecretView, check_not_reserved, view};
use super::{JsonBody, Path};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::PutSecret;

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

/// Body of `PUT /v1/secrets/{path}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecretBody {
    /// The value, never empty. For an `env_bundle`, `KEY=VALUE` lines (`.env` syntax, as
    /// `latchkey import .env` reads them) instead of `entries`. Absent on update:
    /// metadata-only change.
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
        // 1claw's put_secret: an env_bundle given as `KEY=VALUE` lines, read with the rules
        // of `latchkey import .env`.
        (Some(v), None) if body.secret_type.as_deref() == Some("env_bundle") => {
            let parsed = crate::dotenv::parse(v.expose_secret())
                .map_err(|e| ApiError::BadRequest(format!("value (as .env lines): {e}")))?;
            if parsed.is_empty() {
                return Err(ApiError::BadRequest(
                    "value holds no KEY=VALUE lines".into(),
                ));
            }
            let entries: BTreeMap<String, SecretString> = parsed
                .into_iter()
                .map(|e| (e.key, SecretString::from(e.value.to_string())))
                .collect();
            Some(bundle_value(&entries)?)
        }
        (Some(v), None) => {
            // One rule for every way in (PUT, `secret put`, `import .env`): a secret's value is
            // never empty; an env_bundle's entries may be.
            if v.expose_secret().is_empty() {
                return Err(ApiError::BadRequest(
                    "the value is empty: a secret needs a value (an env_bundle entry may be empty)"
                        .into(),
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
