//! Webhook subscription endpoints (admin): create (the signing secret is shown once), list,
//! show, change, delete, rotate the secret, replay from a seq, and the delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{JsonBody, Path, Query};
use crate::access::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{DeliveryRecord, WebhookRecord, WebhookStatus};

/// Body of `POST /v1/webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// http(s) destination; private and loopback hosts need the config to allow them.
    pub url: String,
    /// Event patterns: `audit.*`, `audit.secret.read`, `audit.approval.*` …
    pub events: Vec<String>,
    /// Only events of this namespace (and below).
    pub namespace: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Deliver from this audit seq on (1 = the whole log); by default delivery starts at the
    /// subscription's own `webhook.created` event, i.e. with the next event.
    #[schema(minimum = 1)]
    pub from_seq: Option<u64>,
}

/// A subscription as answered.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: String,
    /// Destination.
    pub url: String,
    /// Event patterns.
    pub events: Vec<String>,
    /// Namespace filter.
    pub namespace: Option<String>,
    /// Free text.
    pub description: String,
    /// `active`, `paused`, `disabled` (410) or `failing`.
    pub status: WebhookStatus,
    /// Why it is not active.
    pub status_reason: Option<String>,
    /// The last seq delivered or skipped.
    pub cursor: u64,
    /// Created.
    pub created_at: String,
    /// `whsec_…`, only in the answers that create it (creation, rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(
    state: &AppState,
    w: WebhookRecord,
    secret: Option<String>,
) -> Result<WebhookView, ApiError> {
    let cursor = state.store.webhook_cursor(&w.id)?;
    Ok(WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        namespace: w.namespace,
        description: w.description,
        status: w.status,
        status_reason: w.status_reason,
        cursor,
        created_at: w.created_at,
        secret,
    })
}

fn check(state: &AppState, url: &str, events: &[String]) -> Result<(), ApiError> {
    webhooks::deliver::check_url(
        url,
        crate::subscriptions::destinations(&state.config.webhooks),
    )
    .map_err(|e| ApiError::BadRequest(format!("url: {e}")))?;
    if events.is_empty() || events.len() > 64 {
        return Err(ApiError::BadRequest("give 1 to 64 event patterns".into()));
    }
    for e in events {
        let ok = e.starts_with("audit.")
            && e.len() <= 128
            && e.chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_' || c == '*')
            && (!e.contains('*') || e.ends_with('*') && e.matches('*').count() == 1);
        if !ok {
            return Err(ApiError::BadRequest(format!(
                "event pattern {e:?}: expected audit.<event> or a prefix ending in *, e.g. audit.approval.*"
            )));
        }
    }
    Ok(())
}

fn new_secret() -> Result<(zeroize::Zeroizing<Vec<u8>>, String), ApiError> {
    let bytes = crate::crypto::random_bytes::<32>();
    let s = webhooks::Secret::from_bytes(bytes.as_ref())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((zeroize::Zeroizing::new(bytes.to_vec()), s.to_whsec_string()))
}

/// Subscribe to audit events (admin). The signing secret is in this answer only.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook, responses((status = 201, body = WebhookView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    check(&state, &body.url, &body.events)?;
    if let Some(ns) = &body.namespace {
        crate::paths::validate(ns)?;
    }
    let (bytes, whsec) = new_secret()?;
    let w = WebhookRecord {
        id: crate::util::new_id(),
        url: body.url,
        events: body.events,
        namespace: body.namespace,
        description: body.description.chars().take(512).collect(),
        status: WebhookStatus::Active,
        status_reason: None,
        created_at: crate::util::now_rfc3339(),
        secrets: Vec::new(),
    };
    let w = state
        .store
        .create_webhook(w, bytes, body.from_seq, caller.origin.clone())
        .await?;
    state.webhooks.restart(&w.id);
    Ok((StatusCode::CREATED, Json(view(&state, w, Some(whsec))?)))
}

/// Every subscription (admin).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", responses((status = 200, body = Vec<WebhookView>)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let all = state.store.list_webhooks()?;
    Ok(Json(
        all.into_iter()
            .map(|w| view(&state, w, None))
            .collect::<Result<_, _>>()?,
    ))
}

fn found(state: &AppState, id: &str) -> Result<WebhookRecord, ApiError> {
    state
        .store
        .get_webhook(id)?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id}")))
}

/// One subscription (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), responses((status = 200, body = WebhookView)))]
pub async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let w = found(&state, &id)?;
    Ok(Json(view(&state, w, None)?))
}

/// Body of `PATCH /v1/webhooks/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New destination.
    pub url: Option<String>,
    /// New event patterns.
    pub events: Option<Vec<String>>,
    /// Pause (true) or resume (false; also revives a failing or disabled subscription).
    pub paused: Option<bool>,
    /// New description.
    pub description: Option<String>,
}

/// Change a subscription (admin).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = UpdateWebhook, responses((status = 200, body = WebhookView)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let current = found(&state, &id)?;
    check(
        &state,
        body.url.as_deref().unwrap_or(&current.url),
        body.events.as_deref().unwrap_or(&current.events),
    )?;
    let w = state
        .store
        .update_webhook(
            id.clone(),
            move |w| {
                // Only the fields whose value changed are named.
                let mut changed = Vec::new();
                if let Some(u) = body.url.clone()
                    && u != w.url
                {
                    w.url = u;
                    changed.push("url");
                }
                if let Some(e) = body.events.clone()
                    && e != w.events
                {
                    w.events = e;
                    changed.push("events");
                }
                if let Some(d) = body.description.clone() {
                    let d: String = d.chars().take(512).collect();
                    if d != w.description {
                        w.description = d;
                        changed.push("description");
                    }
                }
                if let Some(p) = body.paused {
                    let status = if p {
                        WebhookStatus::Paused
                    } else {
                        WebhookStatus::Active
                    };
                    if status != w.status {
                        w.status = status;
                        w.status_reason = None;
                        changed.push("paused");
                    }
                }
                changed
            },
            caller.origin.clone(),
        )
        .await?;
    state.webhooks.restart(&id);
    Ok(Json(view(&state, w, None)?))
}

/// Delete a subscription (admin).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_webhook(id.clone(), caller.origin.clone())
        .await?;
    state.webhooks.restart(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a rotation.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old secret keeps signing (default from config, 24 h).
    pub grace_seconds: Option<u64>,
}

/// Add a new signing secret; old and new both sign during the grace period (admin).
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)), request_body = Rotate, responses((status = 200, body = WebhookView)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<WebhookView>, ApiError> {
    let body: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?
    };
    let grace = body
        .grace_seconds
        .unwrap_or(state.config.webhooks.rotation_grace_seconds);
    let grace = i64::try_from(grace.min(30 * 86400)).unwrap_or(86400);
    let (bytes, whsec) = new_secret()?;
    let w = state
        .store
        .rotate_webhook_secret(id, bytes, grace, caller.origin.clone())
        .await?;
    Ok(Json(view(&state, w, Some(whsec))?))
}

/// Body of a replay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Re-send every matching event from this seq on.
    pub from_seq: u64,
}

/// Re-send from any point of the audit log (admin).
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "webhooks", params(("id" = String, Path)), request_body = Replay, responses((status = 200, body = WebhookView)))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Replay>,
) -> Result<Json<WebhookView>, ApiError> {
    found(&state, &id)?;
    state
        .store
        .set_webhook_cursor(
            id.clone(),
            body.from_seq.saturating_sub(1),
            caller.origin.clone(),
        )
        .await?;
    state.webhooks.restart(&id);
    let w = found(&state, &id)?;
    Ok(Json(view(&state, w, None)?))
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// How many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Delivery attempts, newest first (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveriesQuery), responses((status = 200, body = Vec<DeliveryRecord>)))]
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryRecord>>, ApiError> {
    found(&state, &id)?;
    Ok(Json(state.store.list_deliveries(
        &id,
        q.limit.unwrap_or(100).clamp(1, 1000),
    )?))
}
