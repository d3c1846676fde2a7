//! Health, readiness, the OpenAPI document, and keyring administration.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::access::Admin;
use crate::audit::Draft;
use crate::auth::Caller;
use crate::crypto::Keyring;
use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", security(), responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness of the daemon's parts.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check by name.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// Readiness: the store accepts reads and the writer runs.
#[utoipa::path(get, path = "/readyz", tag = "system", security(), responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let (ready, checks) = readiness(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        status: if ready { "ready" } else { "not_ready" },
        checks: serde_json::Value::Object(checks),
    };
    (status, Json(body))
}

/// Whether the daemon is ready, and each check by name (`store`, `channel:NAME`).
pub(crate) fn readiness(state: &AppState) -> (bool, serde_json::Map<String, serde_json::Value>) {
    let store_ok = state.store.healthy();
    let mut checks = serde_json::Map::new();
    checks.insert(
        "store".into(),
        json!(if store_ok { "ok" } else { "failing" }),
    );
    let backend = if state.store.postgres().is_some() {
        "postgres"
    } else {
        "redb"
    };
    checks.insert("store_backend".into(), json!(backend));
    if state.store.postgres().is_some() {
        // Which background duties this daemon holds (each runs on one daemon at a time).
        checks.insert("daemon".into(), json!(state.store.daemon_id()));
        checks.insert("duties".into(), json!(state.store.duties_held()));
    }
    // A channel not yet checked is "starting"; a misconfigured one makes the daemon not ready.
    let mut channels_ok = true;
    for (name, st) in state.channels.status.snapshot() {
        channels_ok &= st == "ok" || !st.contains("misconfigured");
        checks.insert(format!("channel:{name}"), json!(st));
    }
    (store_ok && channels_ok, checks)
}

/// The daemon as `latchkey status` shows it.
#[derive(Serialize, ToSchema)]
pub struct DaemonStatus {
    /// The daemon's version.
    pub version: &'static str,
    /// `ready` or `not_ready`, as `/readyz` says.
    pub status: &'static str,
    /// The store's health: `ok` or `failing`.
    pub store: &'static str,
    /// Each configured approval channel (`telegram`, `discord`) with its state: `starting`,
    /// `ok`, or what is wrong.
    #[schema(value_type = Object)]
    pub channels: serde_json::Value,
    /// How many approvers are configured.
    pub approvers: usize,
    /// Whether admin tokens may vote on approvals (`serve --dev`).
    pub admin_is_approver: bool,
}

/// Version, readiness and approval channels (any credential).
#[utoipa::path(get, path = "/v1/status", tag = "system", responses((status = 200, body = DaemonStatus), (status = 401, body = crate::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>, _caller: Caller) -> Json<DaemonStatus> {
    let (ready, checks) = readiness(&state);
    let channels: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("channel:")?.to_string(), v.clone())))
        .collect();
    Json(DaemonStatus {
        version: env!("CARGO_PKG_VERSION"),
        status: if ready { "ready" } else { "not_ready" },
        store: if checks.get("store") == Some(&json!("ok")) {
            "ok"
        } else {
            "failing"
        },
        channels: serde_json::Value::Object(channels),
        approvers: state.config.approvers.len(),
        admin_is_approver: state.config.approvals.admin_is_approver,
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", security(), responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(super::openapi::document().clone())
}

/// A key-encryption key (never its material).
#[derive(Serialize, ToSchema)]
pub struct KeyInfo {
    /// Id; the highest is used for new data keys.
    pub id: u32,
    /// When it was added.
    pub created_at: String,
}

/// The keyring's keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// Every key, oldest first.
    pub keys: Vec<KeyInfo>,
    /// The id new versions use.
    pub newest: u32,
}

fn key_list(ring: &Keyring) -> KeyList {
    KeyList {
        keys: ring
            .list()
            .into_iter()
            .map(|(id, created_at)| KeyInfo { id, created_at })
            .collect(),
        newest: ring.newest().id,
    }
}

/// List key-encryption keys (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeyList)))]
pub async fn keys_list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(key_list(&state.store.keyring())))
}

/// Add a new key-encryption key; old versions stay readable (admin).
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys", responses((status = 200, body = KeyList)))]
pub async fn keys_rotate(
    State(state): State<AppState>,
    caller: Admin,
) -> Result<Json<KeyList>, ApiError> {
    let _guard = state.keys_lock.lock().await;
    let dir = state.config.data_dir.clone();
    let master = state.master_key.clone();
    let store = state.store.clone();
    let ring = tokio::task::spawn_blocking(move || store.rotate_keyring(&dir, &master))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let newest = ring.newest().id;
    let list = key_list(&ring);
    state.store.set_keyring(ring);
    state
        .store
        .append_event(Draft {
            event: "keys.rotated",
            actor: caller.origin.actor.clone(),
            namespace: String::new(),
            resource_path: "keyring".into(),
            action: "rotate".into(),
            outcome: "success",
            ip: caller.origin.ip.clone(),
            details: json!({"kek_id": newest}),
        })
        .await?;
    Ok(Json(list))
}

/// Result of a re-wrap.
#[derive(Serialize, ToSchema)]
pub struct Rewrapped {
    /// Versions whose data key was re-wrapped.
    pub rewrapped: u64,
    /// The KEK they are wrapped with now.
    pub kek_id: u32,
}

/// Re-wrap every data key under the newest key-encryption key (admin).
#[utoipa::path(post, path = "/v1/keys/rewrap", tag = "keys", responses((status = 200, body = Rewrapped)))]
pub async fn keys_rewrap(
    State(state): State<AppState>,
    caller: Admin,
) -> Result<Json<Rewrapped>, ApiError> {
    let _guard = state.keys_lock.lock().await;
    let kek_id = state.store.keyring().newest().id;
    let rewrapped = state.store.rewrap_all(caller.origin.clone()).await?;
    Ok(Json(Rewrapped { rewrapped, kek_id }))
}
