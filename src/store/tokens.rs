//! Scoped tokens: the record kept when one is minted, the revocation check (through its
//! parent chain, agent, session and task), and revocation by token, agent, session or task,
//! which also revokes the leases that go with them.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::agents::{AgentRecord, load_agent, save_agent};
use super::audit_append::audit;
use super::kv::{Records, Table};
use super::{Origin, Store, StoreError, WriteCtx};
use crate::access::TokenReach;

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

/// What to revoke, as asked; who may is decided by the [`TokenReach`] given with it.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    /// One token (and, through the parent chain, every token minted from it).
    Token(String),
    /// Every token of an agent issued so far.
    Agent(String),
    /// Every token bound to a session (of the caller's agent; of all agents for the admin).
    Session(String),
    /// Every token bound to a task (likewise).
    Task(String),
}

/// What a revocation marks, once the caller's reach has been applied.
pub(super) enum Selection {
    /// One token and its descendants.
    Token(String),
    /// Every token of an agent.
    Agent(String),
    /// Every token bound to a session, of one agent or (None) of all.
    Session(Option<String>, String),
    /// Every token bound to a task, of one agent or (None) of all.
    Task(Option<String>, String),
}

/// Scoped tokens by id.
pub(super) const TOKENS: Records<TokenRecord> = Records::new(Table::Tokens);
/// Revoked sessions and tasks: `session:<agent|*>:<id>` → revocation time (unix ns).
const REVOKED: Records<u128> = Records::new(Table::Revoked);

/// How far a parent chain is followed (tokens live minutes; chains are short).
const MAX_DEPTH: usize = 16;

/// Selects the token records a revocation marks.
type TokenFilter = Box<dyn Fn(&TokenRecord) -> bool>;

fn unix_ns(t: time::OffsetDateTime) -> u128 {
    u128::try_from(t.unix_timestamp_nanos()).unwrap_or(0)
}

impl Store {
    /// Records a minted token.
    pub async fn record_token(
        &self,
        rec: TokenRecord,
        namespace: String,
        origin: Origin,
    ) -> Result<TokenRecord, StoreError> {
        self.write(move |ctx| {
            TOKENS.put(&mut ctx.kv(), rec.id.as_str(), &rec)?;
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
            Ok(rec.clone())
        })
        .await
    }

    /// A token record by id.
    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        TOKENS.get(&self.kv_read_latest()?, id)
    }

    /// The ids of the tokens a live token was minted from (parent first), or None when it
    /// (or any token it descends from) is revoked, directly or through its agent, session or
    /// task.
    pub fn live_token_ancestors(
        &self,
        rec: &TokenRecord,
        agent: &AgentRecord,
    ) -> Result<Option<Vec<String>>, StoreError> {
        if rec.issued_ns <= agent.tokens_not_before {
            return Ok(None);
        }
        let txn = self.kv_read()?;
        let mut ancestors = Vec::new();
        let mut current = Some(rec.clone());
        while let Some(t) = current {
            if t.revoked_at.is_some() {
                return Ok(None);
            }
            for (kind, value) in [("session", &t.session_id), ("task", &t.task_id)] {
                if let Some(v) = value {
                    for scope in [t.agent_id.as_str(), "*"] {
                        if REVOKED
                            .get(&txn, format!("{kind}:{scope}:{v}").as_str())?
                            .is_some()
                        {
                            return Ok(None);
                        }
                    }
                }
            }
            current = match &t.parent {
                Some(p) if ancestors.len() < MAX_DEPTH => {
                    ancestors.push(p.clone());
                    TOKENS.get(&txn, p.as_str())?
                }
                _ => None,
            };
        }
        Ok(Some(ancestors))
    }

    /// Revokes tokens the caller reaches; returns how many token records were marked
    /// (sessions and tasks also block tokens minted later with the same binding). A token
    /// outside the reach is "not found"; a bulk revocation outside it is refused.
    pub async fn revoke(
        &self,
        reach: TokenReach,
        target: RevokeTarget,
        reason: Option<String>,
        origin: Origin,
    ) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            let bulk = |what: &str| -> Result<Option<String>, StoreError> {
                match reach.bulk() {
                    Ok(agent) => Ok(agent.map(String::from)),
                    Err(why) => Err(StoreError::Denied(format!("{why}; not by {what}"))),
                }
            };
            let selection = match target.clone() {
                RevokeTarget::Token(id) => {
                    let (token, ancestors) = token_with_ancestors(ctx, &id)?;
                    if !reach.admits(&token, &ancestors) {
                        return Err(StoreError::NotFound(format!("no token {id}")));
                    }
                    Selection::Token(id)
                }
                RevokeTarget::Agent(a) => match bulk("agent")? {
                    Some(own) if own != a => {
                        return Err(StoreError::Denied(
                            "an agent revokes only its own tokens".into(),
                        ));
                    }
                    _ => Selection::Agent(a),
                },
                RevokeTarget::Session(s) => Selection::Session(bulk("session")?, s),
                RevokeTarget::Task(t) => Selection::Task(bulk("task")?, t),
            };
            revoke_in(ctx, &selection, reason.as_deref(), &origin)
        })
        .await
    }
}

/// A token record and the ids of the tokens it was minted from, parent first.
fn token_with_ancestors(
    ctx: &WriteCtx<'_>,
    id: &str,
) -> Result<(TokenRecord, Vec<String>), StoreError> {
    let tx = ctx.kv();
    let token = TOKENS
        .get(&tx, id)?
        .ok_or_else(|| StoreError::NotFound(format!("no token {id}")))?;
    let mut ancestors = Vec::new();
    let mut parent = token.parent.clone();
    while let Some(p) = parent.take() {
        if ancestors.len() >= MAX_DEPTH {
            break;
        }
        parent = TOKENS.get(&tx, p.as_str())?.and_then(|t| t.parent);
        ancestors.push(p);
    }
    Ok((token, ancestors))
}

/// Marks the selected tokens (and every token minted from them) revoked, revokes the leases
/// they opened (all of the agent's for an agent-wide revocation), and audits `token.revoked`;
/// inside the caller's transaction. Returns how many token records were marked.
pub(super) fn revoke_in(
    ctx: &mut WriteCtx<'_>,
    target: &Selection,
    reason: Option<&str>,
    origin: &Origin,
) -> Result<u64, StoreError> {
    let now = crate::util::rfc3339(ctx.now());
    let now_ns = unix_ns(ctx.now());
    let (resource, details, agent_filter): (String, serde_json::Value, TokenFilter) = match target {
        Selection::Token(id) => {
            let id2 = id.clone();
            (
                id.clone(),
                json!({"by": "token"}),
                Box::new(move |t: &TokenRecord| t.id == id2),
            )
        }
        Selection::Agent(agent_id) => {
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
        Selection::Session(agent, s) | Selection::Task(agent, s) => {
            let kind = if matches!(target, Selection::Session(..)) {
                "session"
            } else {
                "task"
            };
            let scope = agent.clone().unwrap_or_else(|| "*".into());
            REVOKED.put(
                &mut ctx.kv(),
                format!("{kind}:{scope}:{s}").as_str(),
                &now_ns,
            )?;
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
    let all = TOKENS.all(&ctx.kv())?;
    let marked: Vec<TokenRecord> = all
        .iter()
        .filter(|t| t.revoked_at.is_none() && agent_filter(t))
        .cloned()
        .collect();
    let count = marked.len() as u64;
    // Leases go with their tokens (and the tokens minted from them), agent, session or task.
    let mut gone: std::collections::HashSet<String> = marked.iter().map(|t| t.id.clone()).collect();
    if !gone.is_empty() {
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
            || match target {
                Selection::Agent(a) => l.agent_id == *a,
                Selection::Session(agent, s) => {
                    l.session_id.as_deref() == Some(s.as_str())
                        && agent.as_ref().is_none_or(|a| *a == l.agent_id)
                }
                Selection::Task(agent, t) => {
                    l.task_id.as_deref() == Some(t.as_str())
                        && agent.as_ref().is_none_or(|a| *a == l.agent_id)
                }
                Selection::Token(_) => false,
            }
    };
    let leases = super::lease_end::revoke_open_leases(ctx, origin, "token revoked", lease_filter)?;
    let mut tx = ctx.kv();
    for mut t in marked {
        t.revoked_at = Some(now.clone());
        TOKENS.put(&mut tx, t.id.as_str(), &t)?;
    }
    let mut details = details;
    details["revoked"] = json!(count);
    details["leases_revoked"] = json!(leases);
    if let Some(r) = reason {
        details["reason"] = json!(r);
    }
    audit(
        ctx,
        origin,
        "token.revoked",
        "",
        &resource,
        "revoke",
        details,
    )?;
    Ok(count)
}
