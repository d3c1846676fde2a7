//! Listing secrets: `GET /v1/secrets` pages through the secrets under a prefix that the
//! caller may see (metadata only).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Query;
use super::secrets::{SecretView, view};
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::scope::Action;
use crate::state::AppState;
use crate::store::SecretRecord;

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
    let grants = state.store.live_grants()?;
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
