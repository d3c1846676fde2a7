//! Agent endpoints: register (provisions the namespace, returns the key once), list, show,
//! change tier or disable, rotate the key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, Path};
use crate::access::Admin;
use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::AgentRecord;

/// Body of `POST /v1/agents`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Unique name (letters, digits, `. _ -`, at most 64).
    pub name: String,
    /// Trust tier 1 (new) to 5 (elite); default 1.
    pub trust_tier: Option<u8>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// An agent with its API key, shown once.
#[derive(Serialize, ToSchema)]
pub struct AgentWithKey {
    /// The agent.
    pub agent: AgentRecord,
    /// `lk_agent_…`: store it now, it is not shown again.
    pub api_key: String,
}

/// Body of `PATCH /v1/agents/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// New trust tier.
    pub trust_tier: Option<u8>,
    /// Disable (true) or enable (false).
    pub disabled: Option<bool>,
}

fn check_tier(t: u8) -> Result<u8, ApiError> {
    if (1..=5).contains(&t) {
        Ok(t)
    } else {
        Err(ApiError::BadRequest(format!(
            "trust_tier must be 1 to 5, got {t}"
        )))
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 26 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no agent {:?}",
            id.chars().take(40).collect::<String>()
        )))
    }
}

/// Register an agent (admin).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent, responses((status = 201, body = AgentWithKey), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Admin,
    JsonBody(body): JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<AgentWithKey>), ApiError> {
    let name_ok = !body.name.is_empty()
        && body.name.len() <= 64
        && body
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(ApiError::BadRequest(
            "name must be 1–64 letters, digits, `.`, `_` or `-`".into(),
        ));
    }
    if body.description.len() > 1024 {
        return Err(ApiError::BadRequest(
            "description is longer than 1024 bytes".into(),
        ));
    }
    let tier = check_tier(body.trust_tier.unwrap_or(1))?;
    let (agent, api_key) = state
        .store
        .create_agent(body.name, tier, body.description, caller.origin.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(AgentWithKey { agent, api_key })))
}

/// List agents (admin).
#[utoipa::path(get, path = "/v1/agents", tag = "agents", responses((status = 200, body = Vec<AgentRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<AgentRecord>>, ApiError> {
    Ok(Json(state.store.list_agents()?))
}

/// Show an agent (admin, or the agent itself).
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)), responses((status = 200, body = AgentRecord)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentRecord>, ApiError> {
    // The admin reads any agent; an agent credential only its own.
    if let Identity::Agent { agent, .. } = &caller.identity
        && agent.id != id
    {
        caller
            .deny(
                &state,
                &agent.namespace,
                &id,
                "show",
                "an agent reads only itself",
            )
            .await?;
    }
    check_id(&id)?;
    state
        .store
        .get_agent(&id)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no agent {id}")))
}

/// Change an agent's trust tier or disable it (admin).
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)), request_body = UpdateAgent, responses((status = 200, body = AgentRecord)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateAgent>,
) -> Result<Json<AgentRecord>, ApiError> {
    check_id(&id)?;
    let tier = body.trust_tier.map(check_tier).transpose()?;
    Ok(Json(
        state
            .store
            .update_agent(id, tier, body.disabled, caller.origin.clone())
            .await?,
    ))
}

/// Replace an agent's API key; the old one stops working (admin).
#[utoipa::path(post, path = "/v1/agents/{id}/rotate-key", tag = "agents", params(("id" = String, Path)), responses((status = 200, body = AgentWithKey)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Admin,
    Path(id): Path<String>,
) -> Result<Json<AgentWithKey>, ApiError> {
    check_id(&id)?;
    let (agent, api_key) = state
        .store
        .rotate_agent_key(id, caller.origin.clone())
        .await?;
    Ok(Json(AgentWithKey { agent, api_key }))
}
