//! Who the caller is: the kind of credential, what it reaches and until when (`latchkey
//! whoami`). Any valid credential may ask about itself; nothing else is shown.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::state::AppState;

/// The agent behind an agent key or scoped token.
#[derive(Serialize, ToSchema)]
pub struct WhoAmIAgent {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Trust tier 1 to 5.
    pub trust_tier: u8,
}

/// The caller's credential.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// `admin` (admin token), `approver` (approver token), `agent` (agent key) or `token`
    /// (scoped token).
    pub kind: &'static str,
    /// The credential's id: the admin token's, the agent key's or the scoped token's; for an
    /// approver, the approver's name.
    pub id: String,
    /// How audit events name the caller, `KIND:ID`.
    pub actor: String,
    /// What the credential is for (admin tokens, scoped tokens).
    pub description: Option<String>,
    /// The agent (agent keys and scoped tokens).
    pub agent: Option<WhoAmIAgent>,
    /// Where relative paths resolve (agents); the admin writes full paths.
    pub namespace: Option<String>,
    /// What the credential allows, relative to the namespace (agents: within grants
    /// outside it). Empty for the admin, who reaches everything, and approvers, who decide.
    pub scopes: Vec<String>,
    /// When the credential stops working (RFC 3339), or null when it does not expire.
    pub expires_at: Option<String>,
    /// The scoped token it was minted from (null when minted from the agent key).
    pub parent: Option<String>,
    /// Session binding of a scoped token.
    pub session_id: Option<String>,
    /// Task binding of a scoped token.
    pub task_id: Option<String>,
    /// Path patterns whose approvals the caller may decide (approvers, and the admin when
    /// `approvals.admin_is_approver` is set).
    pub approves: Vec<String>,
}

/// Who the bearer credential is (any credential).
#[utoipa::path(get, path = "/v1/whoami", tag = "system", responses((status = 200, body = WhoAmI), (status = 401, body = crate::error::ErrorBody)))]
pub async fn whoami(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WhoAmI>, ApiError> {
    let approves = caller
        .approver(&state)
        .map(|a| a.patterns)
        .unwrap_or_default();
    let actor = format!("{}:{}", caller.origin.actor.kind, caller.origin.actor.id);
    let me = match caller.identity {
        Identity::Admin { id } => {
            let description = state
                .store
                .list_admin_tokens()?
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.description);
            WhoAmI {
                kind: "admin",
                id,
                actor,
                description,
                agent: None,
                namespace: None,
                scopes: Vec::new(),
                expires_at: None,
                parent: None,
                session_id: None,
                task_id: None,
                approves,
            }
        }
        Identity::Approver { name } => WhoAmI {
            kind: "approver",
            id: name,
            actor,
            description: None,
            agent: None,
            namespace: None,
            scopes: Vec::new(),
            expires_at: None,
            parent: None,
            session_id: None,
            task_id: None,
            approves,
        },
        Identity::Agent {
            agent,
            token,
            scopes,
            expires_at,
            ..
        } => {
            let expires_at = expires_at.and_then(crate::util::rfc3339_of);
            let (kind, id, description, parent, session_id, task_id) = match token {
                Some(t) => (
                    "token",
                    t.id,
                    Some(t.description),
                    t.parent,
                    t.session_id,
                    t.task_id,
                ),
                None => ("agent", agent.key_id.clone(), None, None, None, None),
            };
            WhoAmI {
                kind,
                id,
                actor,
                description,
                namespace: Some(agent.namespace.clone()),
                agent: Some(WhoAmIAgent {
                    id: agent.id,
                    name: agent.name,
                    trust_tier: agent.trust_tier,
                }),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                expires_at,
                parent,
                session_id,
                task_id,
                approves,
            }
        }
    };
    Ok(Json(me))
}
