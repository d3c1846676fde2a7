//! Identities: admin tokens, agents and their keys (stored only as SHA-256 hashes), scoped
//! token records, and revocation by token, agent, session or task.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tables::{AGENT_NAMES, AGENTS, CREDENTIALS, REVOKED, TOKENS};
use super::{Origin, Store, StoreError, WriteCtx, decode, encode};
use crate::audit::Draft;
use crate::paths;

/// What a stored credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// An admin token.
    Admin,
    /// An agent's long-lived API key.
    Agent,
    /// An approver's API token (the approver is named in config).
    Approver,
}

/// A credential record, found by the hash of the presented secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// Id of the credential (not secret).
    pub id: String,
    /// Admin or agent key.
    pub kind: CredentialKind,
    /// For agent keys, the agent.
    pub agent_id: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// For approver tokens, the approver's name.
    #[serde(default)]
    pub approver: Option<String>,
}

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

/// A scoped token as recorded when minted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenRecord {
    /// Token id.
    pub id: String,
    /// The agent it acts for.
    pub agent_id: String,
    /// The token it was minted from (None when minted from the agent key).
    pub parent: Option<String>,
    /// Scopes, as strings.
    pub scopes: Vec<String>,
    /// Optional session binding.
    pub session_id: Option<String>,
    /// Optional task binding.
    pub task_id: Option<String>,
    /// Description.
    pub description: String,
    /// Issue time (unix ns).
    #[schema(value_type = String)]
    pub issued_ns: u128,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<String>,
}

/// What to revoke.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    /// One token (and, through the parent chain, every token minted from it).
    Token(String),
    /// Every token of an agent issued so far.
    Agent(String),
    /// Every token bound to a session (of one agent, or of all when None).
    Session(Option<String>, String),
    /// Every token bound to a task (of one agent, or of all when None).
    Task(Option<String>, String),
}

fn audit(
    ctx: &mut WriteCtx<'_>,
    origin: &Origin,
    event: &'static str,
    namespace: &str,
    resource: &str,
    action: &str,
    details: serde_json::Value,
) -> Result<u64, StoreError> {
    ctx.audit(Draft {
        event,
        actor: origin.actor.clone(),
        namespace: namespace.to_string(),
        resource_path: resource.to_string(),
        action: action.to_string(),
        outcome: "success",
        ip: origin.ip.clone(),
        details,
    })
}

fn load_agent(ctx: &WriteCtx<'_>, id: &str) -> Result<AgentRecord, StoreError> {
    let table = ctx.txn.open_table(AGENTS)?;
    let got = table
        .get(id)?
        .ok_or_else(|| StoreError::NotFound(format!("no agent {id}")))?;
    decode(got.value())
}

fn save_agent(ctx: &WriteCtx<'_>, a: &AgentRecord) -> Result<(), StoreError> {
    ctx.txn
        .open_table(AGENTS)?
        .insert(a.id.as_str(), encode(a)?.as_slice())?;
    Ok(())
}

fn insert_credential(
    ctx: &WriteCtx<'_>,
    secret: &str,
    cred: &Credential,
) -> Result<(), StoreError> {
    let hash = crate::util::sha256_hex(secret.as_bytes());
    ctx.txn
        .open_table(CREDENTIALS)?
        .insert(hash.as_str(), encode(cred)?.as_slice())?;
    Ok(())
}

fn revoke_credential(ctx: &WriteCtx<'_>, cred_id: &str, now: &str) -> Result<(), StoreError> {
    let mut table = ctx.txn.open_table(CREDENTIALS)?;
    let mut found = None;
    for item in table.iter()? {
        let (k, v) = item?;
        let c: Credential = decode(v.value())?;
        if c.id == cred_id {
            found = Some((k.value().to_string(), c));
            break;
        }
    }
    if let Some((hash, mut c)) = found {
        c.revoked_at = Some(now.to_string());
        table.insert(hash.as_str(), encode(&c)?.as_slice())?;
    }
    Ok(())
}

/// Selects the token records a revocation marks.
type TokenFilter = Box<dyn Fn(&TokenRecord) -> bool>;

fn unix_ns(t: time::OffsetDateTime) -> u128 {
    u128::try_from(t.unix_timestamp_nanos()).unwrap_or(0)
}

impl Store {
    /// Creates an admin token; returns the token (shown once) and its id.
    pub async fn create_admin_token(
        &self,
        description: String,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let details = json!({"kind": "admin", "description": description});
        self.issue_credential("lk_admin_", CredentialKind::Admin, None, details, origin)
            .await
    }

    /// Issues an API token for a configured approver; returns (token, id).
    pub async fn create_approver_token(
        &self,
        name: String,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let details = json!({"kind": "approver", "approver": name});
        self.issue_credential(
            "lk_appr_",
            CredentialKind::Approver,
            Some(name),
            details,
            origin,
        )
        .await
    }

    /// Stores a new random credential (only its hash) with its `token.issued` event.
    async fn issue_credential(
        &self,
        prefix: &str,
        kind: CredentialKind,
        approver: Option<String>,
        details: serde_json::Value,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let token = crate::util::random_token(prefix);
        let id = crate::util::new_id();
        let (t, i) = (token.clone(), id.clone());
        self.write(move |ctx| {
            let cred = Credential {
                id: i.clone(),
                kind,
                agent_id: None,
                created_at: crate::util::rfc3339(ctx.now()),
                revoked_at: None,
                approver,
            };
            insert_credential(ctx, &t, &cred)?;
            audit(ctx, &origin, "token.issued", "", &i, "issue", details)?;
            Ok(())
        })
        .await?;
        Ok((token, id))
    }

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
                if ctx
                    .txn
                    .open_table(AGENT_NAMES)?
                    .get(name.as_str())?
                    .is_some()
                {
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
                    description,
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
                };
                insert_credential(ctx, &k, &cred)?;
                save_agent(ctx, &agent)?;
                ctx.txn
                    .open_table(AGENT_NAMES)?
                    .insert(name.as_str(), id.as_str())?;
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
                Ok(agent)
            })
            .await?;
        Ok((agent, key))
    }

    /// An agent by id.
    pub fn get_agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(AGENTS)?;
        let got = table.get(id)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// Every agent, by id.
    pub fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(AGENTS)?;
        table.iter()?.map(|item| decode(item?.1.value())).collect()
    }

    /// The credential whose secret hashes to `hash`.
    pub fn find_credential(&self, hash: &str) -> Result<Option<Credential>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(CREDENTIALS)?;
        let got = table.get(hash)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// Records a minted token.
    pub async fn record_token(
        &self,
        rec: TokenRecord,
        namespace: String,
        origin: Origin,
    ) -> Result<TokenRecord, StoreError> {
        self.write(move |ctx| {
            ctx.txn
                .open_table(TOKENS)?
                .insert(rec.id.as_str(), encode(&rec)?.as_slice())?;
            let details = json!({
                "agent_id": rec.agent_id, "parent": rec.parent, "scopes": rec.scopes,
                "session_id": rec.session_id, "task_id": rec.task_id, "expires_at": rec.expires_at,
            });
            audit(
                ctx,
                &origin,
                "token.issued",
                &namespace,
                &rec.id,
                "mint",
                details,
            )?;
            Ok(rec)
        })
        .await
    }

    /// A token record by id.
    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(TOKENS)?;
        let got = table.get(id)?;
        got.map(|v| decode(v.value())).transpose()
    }

    /// Is a token (or any token it descends from) revoked, directly or through its agent,
    /// session or task?
    pub fn token_revoked(
        &self,
        rec: &TokenRecord,
        agent: &AgentRecord,
    ) -> Result<bool, StoreError> {
        if rec.issued_ns <= agent.tokens_not_before {
            return Ok(true);
        }
        let txn = self.read()?;
        let tokens = txn.open_table(TOKENS)?;
        let revoked = txn.open_table(REVOKED)?;
        let mut current = Some(rec.clone());
        let mut depth = 0;
        while let Some(t) = current {
            if t.revoked_at.is_some() {
                return Ok(true);
            }
            for (kind, value) in [("session", &t.session_id), ("task", &t.task_id)] {
                if let Some(v) = value {
                    for scope in [t.agent_id.as_str(), "*"] {
                        if revoked
                            .get(format!("{kind}:{scope}:{v}").as_str())?
                            .is_some()
                        {
                            return Ok(true);
                        }
                    }
                }
            }
            depth += 1;
            current = match (&t.parent, depth < 16) {
                (Some(p), true) => tokens
                    .get(p.as_str())?
                    .map(|v| decode(v.value()))
                    .transpose()?,
                _ => None,
            };
        }
        Ok(false)
    }

    /// Revokes tokens; returns how many token records were marked (sessions and tasks also
    /// block tokens minted later with the same binding).
    pub async fn revoke(&self, target: RevokeTarget, origin: Origin) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            let now = crate::util::rfc3339(ctx.now());
            let now_ns = unix_ns(ctx.now());
            let (resource, details, agent_filter): (String, serde_json::Value, TokenFilter) =
                match &target {
                    RevokeTarget::Token(id) => {
                        if ctx.txn.open_table(TOKENS)?.get(id.as_str())?.is_none() {
                            return Err(StoreError::NotFound(format!("no token {id}")));
                        }
                        let id2 = id.clone();
                        (
                            id.clone(),
                            json!({"by": "token"}),
                            Box::new(move |t: &TokenRecord| t.id == id2),
                        )
                    }
                    RevokeTarget::Agent(agent_id) => {
                        let mut agent = load_agent(ctx, agent_id)?;
                        agent.tokens_not_before = now_ns;
                        save_agent(ctx, &agent)?;
                        let a = agent_id.clone();
                        (
                            agent_id.clone(),
                            json!({"by": "agent"}),
                            Box::new(move |t: &TokenRecord| t.agent_id == a),
                        )
                    }
                    RevokeTarget::Session(agent, s) | RevokeTarget::Task(agent, s) => {
                        let kind = if matches!(target, RevokeTarget::Session(..)) {
                            "session"
                        } else {
                            "task"
                        };
                        let scope = agent.clone().unwrap_or_else(|| "*".into());
                        ctx.txn
                            .open_table(REVOKED)?
                            .insert(format!("{kind}:{scope}:{s}").as_str(), now_ns)?;
                        let (a, s2, is_session) = (agent.clone(), s.clone(), kind == "session");
                        (
                            format!("{kind}:{s}"),
                            json!({"by": kind, "agent_id": agent}),
                            Box::new(move |t: &TokenRecord| {
                                let binding = if is_session {
                                    &t.session_id
                                } else {
                                    &t.task_id
                                };
                                binding.as_deref() == Some(s2.as_str())
                                    && a.as_ref().is_none_or(|a| *a == t.agent_id)
                            }),
                        )
                    }
                };
            let mut marked = Vec::new();
            {
                let table = ctx.txn.open_table(TOKENS)?;
                for item in table.iter()? {
                    let (_, v) = item?;
                    let t: TokenRecord = decode(v.value())?;
                    if t.revoked_at.is_none() && agent_filter(&t) {
                        marked.push(t);
                    }
                }
            }
            let count = marked.len() as u64;
            // Leases go with their tokens (and the tokens minted from them), agent, session or task.
            let mut gone: std::collections::HashSet<String> =
                marked.iter().map(|t| t.id.clone()).collect();
            if !gone.is_empty() {
                let all: Vec<TokenRecord> = {
                    let table = ctx.txn.open_table(TOKENS)?;
                    let mut v = Vec::new();
                    for item in table.iter()? {
                        v.push(decode::<TokenRecord>(item?.1.value())?);
                    }
                    v
                };
                loop {
                    let before = gone.len();
                    for t in &all {
                        if t.parent.as_ref().is_some_and(|p| gone.contains(p)) {
                            gone.insert(t.id.clone());
                        }
                    }
                    if gone.len() == before {
                        break;
                    }
                }
            }
            let lease_filter = |l: &super::LeaseRecord| {
                l.token_id.as_ref().is_some_and(|t| gone.contains(t))
                    || match &target {
                        RevokeTarget::Agent(a) => l.agent_id == *a,
                        RevokeTarget::Session(agent, s) => {
                            l.session_id.as_deref() == Some(s.as_str())
                                && agent.as_ref().is_none_or(|a| *a == l.agent_id)
                        }
                        RevokeTarget::Task(agent, t) => {
                            l.task_id.as_deref() == Some(t.as_str())
                                && agent.as_ref().is_none_or(|a| *a == l.agent_id)
                        }
                        RevokeTarget::Token(_) => false,
                    }
            };
            let leases =
                super::leases::revoke_open_leases(ctx, &origin, "token revoked", lease_filter)?;
            let mut table = ctx.txn.open_table(TOKENS)?;
            for mut t in marked {
                t.revoked_at = Some(now.clone());
                table.insert(t.id.as_str(), encode(&t)?.as_slice())?;
            }
            drop(table);
            let mut details = details;
            details["revoked"] = json!(count);
            details["leases_revoked"] = json!(leases);
            audit(
                ctx,
                &origin,
                "token.revoked",
                "",
                &resource,
                "revoke",
                details,
            )?;
            Ok(count)
        })
        .await
    }

    /// Appends a stand-alone event: refused attempts (`auth.failed`, `access.denied`), key events.
    pub async fn append_event(&self, draft: Draft) -> Result<(), StoreError> {
        self.write(move |ctx| ctx.audit(draft).map(|_| ())).await
    }

    /// Appends a stand-alone audit event without waiting for its commit (for events that
    /// record what already happened, such as an upstream's answer); failures are logged.
    pub fn append_event_detached(&self, draft: Draft) {
        let what = draft.event;
        self.writer
            .submit_detached(what, move |ctx| ctx.audit(draft).map(|_| ()));
    }
}
