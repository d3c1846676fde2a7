//! Agents: registration (with the agent's namespace and API key), tier and disabled
//! changes, key rotation, and lookups.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit_append::audit;
use super::credentials::{Credential, CredentialKind, insert_credential, revoke_credential};
use super::kv::{Records, Table};
use super::tokens::{Selection, revoke_in};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::paths;

/// An agent.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentRecord {
    /// Id (ULID, lowercase).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Trust tier 1 (new) to 5 (elite).
    pub trust_tier: u8,
    /// Free text.
    pub description: String,
    /// The agent's namespace, `entities/<id>`.
    pub namespace: String,
    /// A disabled agent's key and tokens are refused.
    pub disabled: bool,
    /// Creation time.
    pub created_at: String,
    /// The id of the current API key.
    pub key_id: String,
    /// Tokens issued at or before this time (unix ns) are revoked.
    #[serde(default)]
    #[schema(value_type = String)]
    pub tokens_not_before: u128,
}

/// Agents by id.
pub(super) const AGENTS: Records<AgentRecord> = Records::new(Table::Agents);
/// Agent names → ids.
const AGENT_NAMES: Records<String> = Records::new(Table::AgentNames);

pub(super) fn load_agent(ctx: &WriteCtx<'_>, id: &str) -> Result<AgentRecord, StoreError> {
    AGENTS
        .get(&ctx.kv(), id)?
        .ok_or_else(|| StoreError::NotFound(format!("no agent {id}")))
}

pub(super) fn save_agent(ctx: &WriteCtx<'_>, a: &AgentRecord) -> Result<(), StoreError> {
    AGENTS.put(&mut ctx.kv(), a.id.as_str(), a)
}

impl Store {
    /// Registers an agent and provisions its namespace; returns it with its API key.
    pub async fn create_agent(
        &self,
        name: String,
        trust_tier: u8,
        description: String,
        origin: Origin,
    ) -> Result<(AgentRecord, String), StoreError> {
        let key = crate::util::random_token("lk_agent_");
        let k = key.clone();
        let agent = self
            .write(move |ctx| {
                if AGENT_NAMES.get(&ctx.kv(), name.as_str())?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "an agent named {name:?} exists"
                    )));
                }
                let id = crate::util::new_id();
                let now = crate::util::rfc3339(ctx.now());
                let agent = AgentRecord {
                    namespace: paths::agent_namespace(&id),
                    id: id.clone(),
                    name: name.clone(),
                    trust_tier,
                    description: description.clone(),
                    disabled: false,
                    created_at: now.clone(),
                    key_id: crate::util::new_id(),
                    tokens_not_before: 0,
                };
                let cred = Credential {
                    id: agent.key_id.clone(),
                    kind: CredentialKind::Agent,
                    agent_id: Some(id.clone()),
                    created_at: now,
                    revoked_at: None,
                    approver: None,
                    description: None,
                };
                insert_credential(ctx, &k, &cred)?;
                save_agent(ctx, &agent)?;
                AGENT_NAMES.put(&mut ctx.kv(), name.as_str(), &id)?;
                audit(
                    ctx,
                    &origin,
                    "agent.created",
                    &agent.namespace,
                    &agent.id,
                    "create",
                    json!({"name": agent.name, "trust_tier": trust_tier}),
                )?;
                Ok(agent)
            })
            .await?;
        Ok((agent, key))
    }

    /// Changes an agent's tier and/or disabled flag.
    pub async fn update_agent(
        &self,
        id: String,
        trust_tier: Option<u8>,
        disabled: Option<bool>,
        origin: Origin,
    ) -> Result<AgentRecord, StoreError> {
        self.write(move |ctx| {
            let mut agent = load_agent(ctx, &id)?;
            let (old_tier, old_disabled) = (agent.trust_tier, agent.disabled);
            if let Some(t) = trust_tier {
                agent.trust_tier = t;
            }
            if let Some(d) = disabled {
                agent.disabled = d;
            }
            save_agent(ctx, &agent)?;
            if agent.trust_tier != old_tier {
                audit(
                    ctx,
                    &origin,
                    "agent.tier_changed",
                    &agent.namespace,
                    &agent.id,
                    "update",
                    json!({"from": old_tier, "to": agent.trust_tier}),
                )?;
            }
            if agent.disabled != old_disabled {
                if agent.disabled {
                    // Re-enabling must not bring back what was minted before.
                    let selection = Selection::Agent(agent.id.clone());
                    revoke_in(ctx, &selection, Some("agent disabled"), &origin)?;
                    agent = load_agent(ctx, &agent.id)?;
                }
                let event = if agent.disabled {
                    "agent.disabled"
                } else {
                    "agent.enabled"
                };
                audit(
                    ctx,
                    &origin,
                    event,
                    &agent.namespace,
                    &agent.id,
                    "update",
                    json!({}),
                )?;
            }
            Ok(agent)
        })
        .await
    }

    /// Replaces an agent's API key; the old key stops working at once.
    pub async fn rotate_agent_key(
        &self,
        id: String,
        origin: Origin,
    ) -> Result<(AgentRecord, String), StoreError> {
        let key = crate::util::random_token("lk_agent_");
        let k = key.clone();
        let agent = self
            .write(move |ctx| {
                let mut agent = load_agent(ctx, &id)?;
                let now = crate::util::rfc3339(ctx.now());
                revoke_credential(ctx, &agent.key_id, &now)?;
                agent.key_id = crate::util::new_id();
                let cred = Credential {
                    id: agent.key_id.clone(),
                    kind: CredentialKind::Agent,
                    agent_id: Some(agent.id.clone()),
                    created_at: now,
                    revoked_at: None,
                    approver: None,
                    description: None,
                };
                insert_credential(ctx, &k, &cred)?;
                save_agent(ctx, &agent)?;
                audit(
                    ctx,
                    &origin,
                    "agent.key_rotated",
                    &agent.namespace,
                    &agent.id,
                    "rotate",
                    json!({"key_id": agent.key_id}),
                )?;
                // A rotation usually answers a leak: what the old key minted (tokens, and
                // the leases they and the key opened) ends with it.
                let selection = Selection::Agent(agent.id.clone());
                revoke_in(ctx, &selection, Some("agent key rotated"), &origin)?;
                load_agent(ctx, &agent.id)
            })
            .await?;
        Ok((agent, key))
    }

    /// An agent by id.
    pub fn get_agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        AGENTS.get(&self.kv_read_latest()?, id)
    }

    /// The agent a reference names: its id or its unique name (`id:…` and `name:…` say
    /// which). A bare reference that is one agent's id and another's name is refused as
    /// ambiguous rather than guessed.
    pub fn find_agent(&self, reference: &str) -> Result<AgentRecord, StoreError> {
        let (by_id, by_name) = match reference.split_once(':') {
            Some(("id", r)) => (Some(r), None),
            Some(("name", r)) => (None, Some(r)),
            _ => (Some(reference), Some(reference)),
        };
        let txn = self.kv_read()?;
        let load = |id: &str| AGENTS.get(&txn, id);
        let with_id = match by_id {
            Some(id) => load(&id.to_ascii_lowercase())?,
            None => None,
        };
        let named_id = match by_name {
            Some(name) => AGENT_NAMES.get(&txn, name)?,
            None => None,
        };
        let named = match named_id {
            Some(id) => load(&id)?,
            None => None,
        };
        match (with_id, named) {
            (Some(a), Some(b)) if a.id != b.id => Err(StoreError::Conflict(format!(
                "{reference:?} is the id of agent {} and the name of agent {}: say id:{reference} or name:{reference}",
                a.name, b.id
            ))),
            (Some(a), _) | (None, Some(a)) => Ok(a),
            (None, None) => Err(StoreError::NotFound(match (by_id, by_name) {
                (Some(id), None) => format!("no agent with the id {id:?}"),
                (None, Some(name)) => format!("no agent named {name:?}"),
                _ => format!("no agent with the id or name {reference:?}"),
            })),
        }
    }

    /// Every agent, by id.
    pub fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        AGENTS.all(&self.kv_read()?)
    }
}
