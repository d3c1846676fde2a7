//! Who is calling: admin tokens, agent keys and scoped tokens, resolved from the
//! `Authorization: Bearer` header into a [`Caller`]; path resolution and the scope check
//! that every secret endpoint applies. Refusals are audited.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use crate::audit::{Actor, Draft};
use crate::error::ApiError;
use crate::paths;
use crate::scope::{Action, Scope};
use crate::state::AppState;
use crate::store::{AgentRecord, CredentialKind, Origin, TokenRecord};

/// Prefix of scoped tokens.
pub const TOKEN_PREFIX: &str = "lk_tok_";

/// What a scoped token carries, signed with HMAC-SHA256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Token id.
    pub id: String,
    /// Agent id.
    pub agent: String,
    /// Namespace.
    pub ns: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Parent token id.
    pub parent: Option<String>,
    /// Session binding.
    pub sid: Option<String>,
    /// Task binding.
    pub tid: Option<String>,
}

/// Signs claims into a token string.
pub fn sign_token(key: &[u8; 32], claims: &Claims) -> Result<String, ApiError> {
    let body = serde_json::to_vec(claims).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = URL_SAFE_NO_PAD.encode(body);
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).map_err(|e| ApiError::Internal(e.to_string()))?;
    mac.update(body.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{TOKEN_PREFIX}{body}.{sig}"))
}

/// Checks a token's signature and decodes its claims (expiry is checked by the caller).
pub fn verify_token(key: &[u8; 32], token: &str) -> Option<Claims> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (body, sig) = rest.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(body.as_bytes());
    mac.verify_slice(&sig).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// The authenticated principal.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per request, never stored in bulk
pub enum Identity {
    /// An operator with an admin token.
    Admin {
        /// The admin token's id.
        id: String,
    },
    /// A configured approver, through an approver token.
    Approver {
        /// The approver's name.
        name: String,
    },
    /// An agent, through its key or a scoped token.
    Agent {
        /// The agent.
        agent: AgentRecord,
        /// The scoped token, when one was used.
        token: Option<TokenRecord>,
        /// The tokens it was minted from, parent first (empty for the agent key).
        ancestors: Vec<String>,
        /// What the credential allows, relative to the agent's namespace.
        scopes: Vec<Scope>,
        /// When the credential expires (unix seconds), for tokens.
        expires_at: Option<i64>,
    },
}

/// An authenticated request: who, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal.
    pub identity: Identity,
    /// Actor and client address, for audit events.
    pub origin: Origin,
}

/// The client address of a request.
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<String> {
    if state.config.http.trust_forwarded_for
        && let Some(fwd) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        && let Some(first) = fwd.split(',').next()
    {
        return Some(first.trim().to_string());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Authenticates a request from its `Authorization: Bearer` header (refusals are audited as
/// `auth.failed`). Called once per request by the route guard (`crate::access`).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let ip = client_ip(parts, state);
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let resource: String = parts.uri.path().chars().take(256).collect();
    let action = parts.method.as_str().to_lowercase();
    authenticate_credential(state, presented, ip, &resource, &action).await
}

/// Authenticates a presented credential (the Bearer header's, or one pasted into the
/// console's sign-in form); refusals are audited as `auth.failed` on `resource`/`action`.
pub async fn authenticate_credential(
    state: &AppState,
    presented: Option<&str>,
    ip: Option<String>,
    resource: &str,
    action: &str,
) -> Result<Caller, ApiError> {
    let result = match presented {
        Some(cred) if !cred.is_empty() => identify(state, cred).await,
        _ => Err(Fail::Refused("missing bearer credential")),
    };
    match result {
        Ok(identity) => {
            let actor = match &identity {
                Identity::Admin { id } => Actor::new("admin", id.clone()),
                Identity::Approver { name } => Actor::new("approver", name.clone()),
                Identity::Agent {
                    agent,
                    token: Some(t),
                    ..
                } => Actor {
                    kind: "token".into(),
                    id: format!("{}/{}", agent.id, t.id),
                    agent_id: Some(agent.id.clone()),
                },
                Identity::Agent {
                    agent, token: None, ..
                } => Actor {
                    kind: "agent".into(),
                    id: agent.id.clone(),
                    agent_id: Some(agent.id.clone()),
                },
            };
            Ok(Caller {
                identity,
                origin: Origin { actor, ip },
            })
        }
        // The store could not answer: 503, and nothing to audit (the store is what failed).
        Err(Fail::Store(e)) => Err(e.into()),
        Err(Fail::Refused(reason)) => {
            let draft = Draft {
                event: "auth.failed",
                actor: Actor::anonymous(),
                namespace: String::new(),
                resource_path: resource.to_string(),
                action: action.to_string(),
                outcome: "denied",
                ip,
                details: json!({"reason": reason}),
            };
            state.store.append_event(draft).await?;
            Err(ApiError::Unauthorized)
        }
    }
}

/// Why a credential was not accepted: refused (401, audited) or the store failed (503).
enum Fail {
    Refused(&'static str),
    Store(crate::store::StoreError),
}

impl From<&'static str> for Fail {
    fn from(why: &'static str) -> Fail {
        Fail::Refused(why)
    }
}

/// A lookup's record, or the refusal `why` when there is none; a store failure stays one.
fn found<T>(r: Result<Option<T>, crate::store::StoreError>, why: &'static str) -> Result<T, Fail> {
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Fail::Refused(why)),
        Err(e) => Err(Fail::Store(e)),
    }
}

async fn identify(state: &AppState, cred: &str) -> Result<Identity, Fail> {
    let store = &state.store;
    if cred.starts_with(TOKEN_PREFIX) {
        let keyring = store.keyring();
        let claims = verify_token(keyring.signing_key(), cred).ok_or("bad token signature")?;
        if claims.exp <= time::OffsetDateTime::now_utc().unix_timestamp() {
            return Err(Fail::Refused("token expired"));
        }
        let rec = found(store.get_token(&claims.id), "unknown token")?;
        let agent = found(store.get_agent(&rec.agent_id), "unknown agent")?;
        if agent.disabled {
            return Err(Fail::Refused("agent disabled"));
        }
        let ancestors = found(store.live_token_ancestors(&rec, &agent), "token revoked")?;
        let scopes = rec
            .scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "bad token scopes")?;
        return Ok(Identity::Agent {
            agent,
            expires_at: Some(rec.expires_at),
            token: Some(rec),
            ancestors,
            scopes,
        });
    }
    let hash = crate::util::sha256_hex(cred.as_bytes());
    let (found, agent) = found(store.find_credential_and_agent(&hash), "unknown credential")?;
    if found.revoked_at.is_some() {
        return Err(Fail::Refused("credential revoked"));
    }
    match found.kind {
        CredentialKind::Admin => Ok(Identity::Admin { id: found.id }),
        CredentialKind::Approver => {
            let name = found.approver.ok_or("approver token without approver")?;
            if !state.config.approvers.iter().any(|a| a.name == name) {
                return Err(Fail::Refused("approver no longer configured"));
            }
            Ok(Identity::Approver { name })
        }
        CredentialKind::Agent => {
            if found.agent_id.is_none() {
                return Err(Fail::Refused("agent key without agent"));
            }
            let agent = agent.ok_or("unknown agent")?;
            if agent.disabled {
                return Err(Fail::Refused("agent disabled"));
            }
            if agent.key_id != found.id {
                return Err(Fail::Refused("credential revoked"));
            }
            Ok(Identity::Agent {
                agent,
                token: None,
                ancestors: Vec::new(),
                scopes: Scope::full(),
                expires_at: None,
            })
        }
    }
}

impl Caller {
    /// Is this an admin?
    pub fn is_admin(&self) -> bool {
        matches!(self.identity, Identity::Admin { .. })
    }

    /// The agent behind the credential, if any. Private on purpose: `None` here also means
    /// "an approver", so it must never decide what a caller may reach (`crate::access` does).
    fn agent(&self) -> Option<&AgentRecord> {
        match &self.identity {
            Identity::Agent { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// The approver this caller acts as: a configured approver, or the admin when
    /// `approvals.admin_is_approver` is set (`serve --dev`), deciding every path.
    pub fn approver(&self, state: &AppState) -> Option<crate::config::ApproverConfig> {
        match &self.identity {
            Identity::Approver { name } => state
                .config
                .approvers
                .iter()
                .find(|a| a.name == *name)
                .cloned(),
            Identity::Admin { .. } if state.config.approvals.admin_is_approver => {
                Some(crate::config::ApproverConfig {
                    name: "admin".into(),
                    patterns: vec!["**".into()],
                    telegram_user_id: None,
                    discord_user_id: None,
                })
            }
            _ => None,
        }
    }

    /// Turns a path as the caller wrote it into a full path. Admins write full paths; agents
    /// write paths relative to their namespace, or absolute ones with a leading `/`.
    pub fn resolve_path(&self, raw: &str) -> Result<String, ApiError> {
        let full = match (&self.identity, raw.strip_prefix('/')) {
            (Identity::Admin { .. } | Identity::Approver { .. }, Some(abs)) => abs.to_string(),
            (Identity::Admin { .. } | Identity::Approver { .. }, None) => raw.to_string(),
            (Identity::Agent { .. }, Some(abs)) => abs.to_string(),
            (Identity::Agent { agent, .. }, None) => paths::join(&agent.namespace, raw),
        };
        paths::validate(&full)?;
        Ok(full)
    }

    /// How the caller sees a full path: relative inside its own namespace.
    pub fn display_path(&self, full: &str) -> String {
        match self
            .agent()
            .and_then(|a| paths::relative_to(&a.namespace, full))
        {
            Some(rel) => rel.to_string(),
            None if self.is_admin() => full.to_string(),
            None => format!("/{full}"),
        }
    }

    /// May the caller do `action` on the full path? Agents need a scope of their credential
    /// and, outside their namespace, a grant (deny by default); the grant that allowed it is
    /// returned for its limits. A refusal is audited as `access.denied`.
    pub async fn authorize(
        &self,
        state: &AppState,
        action: Action,
        full: &str,
    ) -> Result<Option<crate::policy::Grant>, ApiError> {
        let (agent, scopes) = match &self.identity {
            Identity::Admin { .. } => return Ok(None),
            Identity::Approver { .. } => {
                self.deny(
                    state,
                    paths::namespace_of(full),
                    full,
                    action.as_str(),
                    "approvers decide approvals; they do not use secrets",
                )
                .await?;
                return Ok(None);
            }
            Identity::Agent { agent, scopes, .. } => (agent, scopes),
        };
        let relative = paths::relative_to(&agent.namespace, full);
        if !crate::scope::any_allows(scopes, action, relative, full) {
            self.deny(
                state,
                paths::namespace_of(full),
                full,
                action.as_str(),
                "no scope of the credential allows this",
            )
            .await?;
        }
        let grants = state.store.live_grants()?;
        match crate::policy::check(&agent.id, &agent.namespace, action, full, &grants) {
            crate::policy::Access::Allowed(g) => Ok(g.cloned()),
            crate::policy::Access::Denied(reason) => {
                let reason = if relative.is_none() && reason == "no grant allows this" {
                    "outside the agent's namespace and no grant allows this"
                } else {
                    reason
                };
                self.deny(
                    state,
                    paths::namespace_of(full),
                    full,
                    action.as_str(),
                    reason,
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Audits an `access.denied` event and returns the 403.
    pub async fn deny(
        &self,
        state: &AppState,
        namespace: &str,
        resource: &str,
        action: &str,
        reason: &str,
    ) -> Result<(), ApiError> {
        let draft = Draft {
            event: "access.denied",
            actor: self.origin.actor.clone(),
            namespace: namespace.to_string(),
            resource_path: resource.to_string(),
            action: action.to_string(),
            outcome: "denied",
            ip: self.origin.ip.clone(),
            details: json!({"reason": reason}),
        };
        state.store.append_event(draft).await?;
        Err(ApiError::AccessDenied(format!("access denied: {reason}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_sign_verify_and_tamper() {
        let key = [9u8; 32];
        let claims = Claims {
            id: "t1".into(),
            agent: "a".into(),
            ns: "entities/a".into(),
            scopes: vec!["secrets:read:**".into()],
            exp: 10,
            parent: None,
            sid: None,
            tid: None,
        };
        let tok = sign_token(&key, &claims).unwrap();
        assert_eq!(verify_token(&key, &tok).unwrap().id, "t1");
        assert!(verify_token(&[8u8; 32], &tok).is_none());
        let (body, sig) = tok
            .strip_prefix(TOKEN_PREFIX)
            .unwrap()
            .split_once('.')
            .unwrap();
        let mut forged = claims.clone();
        forged.scopes = vec!["secrets:*:**".into()];
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_ne!(forged_body, body);
        assert!(verify_token(&key, &format!("{TOKEN_PREFIX}{forged_body}.{sig}")).is_none());
        assert!(verify_token(&key, "lk_tok_garbage").is_none());
    }
}
