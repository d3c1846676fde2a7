//! Agent endpoints: register (provisions the namespace, returns the key once), list, show,
//! change tier or disable, rotate the key. An agent is named in a path by its id or its
//! unique name.

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

/// The agent a path's reference names: its id or unique name (`id:…`, `name:…` to say which).
fn find(state: &AppState, reference: &str) -> Result<AgentRecord, ApiError> {
    if reference.is_empty() || reference.len() > 80 {
        return Err(ApiError::NotFound(format!(
            "no agent {:?}",
            reference.chars().take(40).collect::<String>()
        )));
    }
    Ok(state.store.find_agent(reference)?)
}

/// Does a reference name this agent? (An agent may show only itself, whichever way it names
/// itself; no lookup is made, so other agents' names and ids are not probed.)
fn names_itself(reference: &str, agent: &AgentRecord) -> bool {
    match reference.split_once(':') {
        Some(("id", id)) => id.eq_ignore_ascii_case(&agent.id),
        Some(("name", name)) => name == agent.name,
        _ => reference.eq_ignore_ascii_case(&agent.id) || reference == agent.name,
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

/// Show an agent by id or unique name (admin, or the agent itself).
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "The agent's id or unique name (`id:…` or `name:…` to say which)")), responses((status = 200, body = AgentRecord), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "the reference is one agent's id and another's name", body = crate::error::ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
) -> Result<Json<AgentRecord>, ApiError> {
    // The admin reads any agent; an agent credential only its own.
    if let Identity::Agent { agent, .. } = &caller.identity
        && !names_itself(&reference, agent)
    {
        let shown: String = reference.chars().take(80).collect();
        caller
            .deny(
                &state,
                &agent.namespace,
                &shown,
                "show",
                "an agent reads only itself",
            )
            .await?;
    }
    Ok(Json(find(&state, &reference)?))
}

/// Change an agent's trust tier or disable it (admin).
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "The agent's id or unique name")), request_body = UpdateAgent, responses((status = 200, body = AgentRecord)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Admin,
    Path(reference): Path<String>,
    JsonBody(body): JsonBody<UpdateAgent>,
) -> Result<Json<AgentRecord>, ApiError> {
    let tier = body.trust_tier.map(check_tier).transpose()?;
    let id = find(&state, &reference)?.id;
    Ok(Json(
        state
            .store
            .update_agent(id, tier, body.disabled, caller.origin.clone())
            .await?,
    ))
}

/// Replace an agent's API key; the old one stops working (admin).
#[utoipa::path(post, path = "/v1/agents/{id}/rotate-key", tag = "agents", params(("id" = String, Path, description = "The agent's id or unique name")), responses((status = 200, body = AgentWithKey)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Admin,
    Path(reference): Path<String>,
) -> Result<Json<AgentWithKey>, ApiError> {
    let id = find(&state, &reference)?.id;
    let (agent, api_key) = state
        .store
        .rotate_agent_key(id, caller.origin.clone())
        .await?;
    Ok(Json(AgentWithKey { agent, api_key }))
}
