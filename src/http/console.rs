//! Console sign-in through the API (admin): one-time links (`latchkey console link`), and the
//! live sessions, listed and revoked. Each change is audited (`console.link_issued`,
//! `console.signed_out` with reason `revoked`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::Admin;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{ConsoleSession, ConsoleWho};

/// How long a sign-in link works.
const LINK_TTL_SECONDS: i64 = 600;

/// Body of `POST /v1/console/links`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// Sign in as this configured approver; absent: as the operator (admin).
    pub approver: Option<String>,
}

/// A new sign-in link, shown once.
#[derive(Serialize, ToSchema)]
pub struct IssuedLink {
    /// Open it in a browser within 10 minutes; it works once.
    pub url: String,
    /// Id (not secret), as audit events name it.
    pub link_id: String,
    /// The approver it signs in as, or null for the operator.
    pub approver: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Issue a one-time console sign-in link (admin; audited as `console.link_issued`). The
/// session it opens lasts no longer than the admin token that asked for it.
#[utoipa::path(post, path = "/v1/console/links", tag = "console", request_body = NewLink, responses((status = 201, body = IssuedLink), (status = 404, body = crate::error::ErrorBody)))]
pub async fn issue_link(
    State(state): State<AppState>,
    caller: Admin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewLink>,
) -> Result<(StatusCode, Json<IssuedLink>), ApiError> {
    if !state.config.console.enabled {
        return Err(ApiError::NotFound(
            "the console is disabled ([console] enabled = false)".into(),
        ));
    }
    let who = match &body.approver {
        Some(name) => {
            if !state.config.approvers.iter().any(|a| &a.name == name) {
                return Err(ApiError::NotFound(format!(
                    "no approver named {name:?} in the configuration"
                )));
            }
            ConsoleWho::Approver { name: name.clone() }
        }
        None => match &caller.identity {
            Identity::Admin { id } => ConsoleWho::Admin {
                token_id: id.clone(),
            },
            _ => return Err(ApiError::AccessDenied("an admin token is required".into())),
        },
    };
    // The credential that asked: the session ends when it is revoked.
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let credential = crate::util::sha256_hex(presented.as_bytes());
    let (secret, link) = state
        .store
        .issue_console_link(who, credential, LINK_TTL_SECONDS, caller.origin.clone())
        .await?;
    let base = state.config.console.base_url(&state.self_url);
    Ok((
        StatusCode::CREATED,
        Json(IssuedLink {
            url: format!("{base}/ui/link/{secret}"),
            link_id: link.id,
            approver: body.approver,
            expires_at: link.expires_at,
        }),
    ))
}

/// Who a console session acts as.
#[derive(Serialize, ToSchema)]
pub struct SessionWho {
    /// `admin` or `approver`.
    pub kind: &'static str,
    /// The approver's name (approver sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The admin token's id (admin sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// A console session as listed (never its cookie, CSRF token or credential hash).
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Id: what `DELETE /v1/console/sessions/{id}` takes.
    pub id: String,
    /// Who it acts as.
    pub who: SessionWho,
    /// `link` or `token`.
    pub via: String,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: the server-side end of the session.
    pub expires_at: i64,
}

impl SessionView {
    fn of(s: ConsoleSession) -> SessionView {
        let who = match s.who {
            ConsoleWho::Admin { token_id } => SessionWho {
                kind: "admin",
                name: None,
                token_id: Some(token_id),
            },
            ConsoleWho::Approver { name } => SessionWho {
                kind: "approver",
                name: Some(name),
                token_id: None,
            },
        };
        SessionView {
            id: s.id,
            who,
            via: s.via,
            ip: s.ip,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// Live console sessions (admin).
#[utoipa::path(get, path = "/v1/console/sessions", tag = "console", responses((status = 200, body = Vec<SessionView>)))]
pub async fn sessions(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_console_sessions()?
            .into_iter()
            .map(SessionView::of)
            .collect(),
    ))
}

/// End a console session (admin; audited as `console.signed_out`, reason `revoked`).
#[utoipa::path(delete, path = "/v1/console/sessions/{id}", tag = "console", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .end_console_session(id.clone(), "revoked", caller.origin.clone())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no console session {id}")))
    }
}
