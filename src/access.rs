//! Authorization in one place. Every `/v1` route is registered with a [`Class`] (who may call
//! it), checked by one middleware before any handler runs; what agents own is reached only
//! through [`LeaseGate`] (leases) and [`TokenReach`] (tokens), which the store's operations
//! on those records require. A handler therefore cannot reach a lease or revoke a token
//! without the rule below having been applied, and an approver — who holds no agent — can
//! never fall through a check written for agents.
//!
//! The rules (README, "Security model"):
//! - the admin reaches everything; approvers reach approvals only;
//! - an agent credential reaches its own agent's leases and tokens, narrowed by the
//!   credential: a lease is used, shown, listed and revoked only by a credential whose scopes
//!   cover the lease's path and action *and* that opened it or is an ancestor of the one that
//!   did (the agent key is the ancestor of all its tokens);
//! - a token is revoked by the admin, by its agent's key, or by itself or an ancestor token;
//!   revoking by agent, session or task is for the admin and agent keys.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::auth::{Caller, Identity};
use crate::error::ApiError;
use crate::scope::{Scope, any_allows};
use crate::state::AppState;
use crate::store::{LeaseRecord, TokenRecord};

/// Who a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Admin tokens only.
    Admin,
    /// The admin and agent credentials (agent keys, scoped tokens); what an agent reaches is
    /// narrowed further by the handler's resource checks.
    Holder,
    /// Agent credentials only.
    Agent,
    /// Approvers and the admin.
    Decider,
    /// Any valid credential (who am I, is the daemon up): nothing of anyone else's is reached.
    Any,
}

impl Class {
    /// Does the class admit this principal?
    pub fn admits(self, who: &Identity) -> bool {
        matches!(
            (self, who),
            (Class::Admin, Identity::Admin { .. })
                | (
                    Class::Holder,
                    Identity::Admin { .. } | Identity::Agent { .. }
                )
                | (Class::Agent, Identity::Agent { .. })
                | (
                    Class::Decider,
                    Identity::Admin { .. } | Identity::Approver { .. }
                )
                | (Class::Any, _)
        )
    }

    fn refusal(self) -> &'static str {
        match self {
            Class::Admin => "an admin token is required",
            Class::Holder => {
                "this endpoint is for the admin and agents; approvers decide approvals"
            }
            Class::Agent => "this endpoint is for agents (an agent key or a scoped token)",
            Class::Decider => "this endpoint is for approvers",
            Class::Any => "a valid credential is required",
        }
    }
}

/// Puts every method of `routes` behind authentication and `class`.
pub fn guard(
    state: &AppState,
    class: Class,
    routes: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    routes.route_layer(axum::middleware::from_fn_with_state(
        (state.clone(), class),
        check,
    ))
}

/// The middleware: authenticates the request (refusals audited as `auth.failed`), refuses a
/// principal outside the route's class (audited as `access.denied`), and hands the [`Caller`]
/// to the handler.
async fn check(
    State((state, class)): State<(AppState, Class)>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match crate::auth::authenticate(&parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if !class.admits(&caller.identity) {
        let resource: String = parts.uri.path().chars().take(256).collect();
        let action = parts.method.as_str().to_lowercase();
        return match caller
            .deny(&state, "", &resource, &action, class.refusal())
            .await
        {
            Err(e) => e.into_response(),
            Ok(()) => ApiError::AccessDenied(class.refusal().into()).into_response(),
        };
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// The caller the route's guard authenticated. A handler on a route without a guard gets
    /// 401: an unguarded route fails closed.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .remove::<Caller>()
            .ok_or(ApiError::Unauthorized)
    }
}

/// A caller known to hold an admin token (the extractor refuses anyone else).
pub struct Admin(pub Caller);

impl std::ops::Deref for Admin {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Admin(caller))
        } else {
            Err(ApiError::AccessDenied(Class::Admin.refusal().into()))
        }
    }
}

/// What a credential reaches among an agent's records.
#[derive(Debug, Clone)]
enum Reach {
    /// Everything (the admin).
    All,
    /// One agent's records, through one credential.
    Credential {
        agent_id: String,
        namespace: String,
        /// The scoped token, or None for the agent key.
        token: Option<String>,
        scopes: Vec<Scope>,
    },
}

fn reach(caller: &Caller) -> Result<Reach, ApiError> {
    match &caller.identity {
        Identity::Admin { .. } => Ok(Reach::All),
        Identity::Agent {
            agent,
            token,
            scopes,
            ..
        } => Ok(Reach::Credential {
            agent_id: agent.id.clone(),
            namespace: agent.namespace.clone(),
            token: token.as_ref().map(|t| t.id.clone()),
            scopes: scopes.clone(),
        }),
        Identity::Approver { .. } => Err(ApiError::AccessDenied(
            "approvers decide approvals; leases and tokens belong to agents".into(),
        )),
    }
}

/// Which leases a credential may use, see, list and revoke: the one rule, applied by the
/// store's lease operations (which take a gate).
#[derive(Debug, Clone)]
pub struct LeaseGate(Reach);

impl LeaseGate {
    /// The caller's gate; approvers have none.
    pub fn of(caller: &Caller) -> Result<LeaseGate, ApiError> {
        reach(caller).map(LeaseGate)
    }

    /// May the credential touch this lease? Its agent's, within the credential's scopes for
    /// the lease's path and action, and opened by the credential or a token minted from it.
    pub fn admits(&self, lease: &LeaseRecord) -> bool {
        match &self.0 {
            Reach::All => true,
            Reach::Credential {
                agent_id,
                namespace,
                token,
                scopes,
            } => {
                let relative = crate::paths::relative_to(namespace, &lease.path);
                *agent_id == lease.agent_id
                    && token.as_ref().is_none_or(|t| {
                        lease.token_id.as_ref() == Some(t) || lease.token_lineage.contains(t)
                    })
                    && any_allows(scopes, lease.action, relative, &lease.path)
            }
        }
    }

    /// The agent whose leases the gate can admit (None: every agent's).
    pub fn agent_id(&self) -> Option<&str> {
        match &self.0 {
            Reach::All => None,
            Reach::Credential { agent_id, .. } => Some(agent_id),
        }
    }
}

/// Which tokens a credential may revoke.
#[derive(Debug, Clone)]
pub struct TokenReach(Reach);

impl TokenReach {
    /// The caller's reach; approvers have none.
    pub fn of(caller: &Caller) -> Result<TokenReach, ApiError> {
        reach(caller).map(TokenReach)
    }

    /// May the credential revoke `token`, whose ancestors (parent first) are given? The admin
    /// any; an agent key its agent's; a scoped token itself and the tokens minted from it.
    pub fn admits(&self, token: &TokenRecord, ancestors: &[String]) -> bool {
        match &self.0 {
            Reach::All => true,
            Reach::Credential {
                agent_id,
                token: me,
                ..
            } => {
                *agent_id == token.agent_id
                    && me
                        .as_ref()
                        .is_none_or(|me| token.id == *me || ancestors.contains(me))
            }
        }
    }

    /// For revocation by agent, session or task: `Ok(None)` for the admin (any agent),
    /// `Ok(Some(agent))` for an agent key (its own agent only); scoped tokens may not.
    pub fn bulk(&self) -> Result<Option<&str>, &'static str> {
        match &self.0 {
            Reach::All => Ok(None),
            Reach::Credential {
                agent_id,
                token: None,
                ..
            } => Ok(Some(agent_id)),
            Reach::Credential { token: Some(_), .. } => Err(
                "a scoped token revokes only itself and the tokens minted from it (by token_id)",
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scope::Action;

    fn cred(token: Option<&str>, scopes: &[&str]) -> Reach {
        Reach::Credential {
            agent_id: "a1".into(),
            namespace: "entities/a1".into(),
            token: token.map(String::from),
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        }
    }

    fn lease(path: &str, action: Action, token: Option<&str>, lineage: &[&str]) -> LeaseRecord {
        let mut v: LeaseRecord = serde_json::from_value(serde_json::json!({
            "id": "l1", "agent_id": "a1", "agent_name": "bot", "trust_tier": 2,
            "token_id": token, "token_expires_at": null, "path": path, "namespace": "prod",
            "sensitivity": "standard", "action": action, "ttl_seconds": 60, "uses": 1,
            "uses_left": 1, "keys": null, "reason": "", "session_id": null, "task_id": null,
            "state": "active", "policy": {"requirement": "instant", "quorum": 0, "deadline_seconds": 0, "on_deadline": "deny", "source": "default"},
            "flagged": false, "grant_id": null, "created_at": 0, "granted_at": 0,
            "expires_at": 60, "ended_at": null, "approval_id": null,
        }))
        .unwrap();
        v.token_lineage = lineage.iter().map(|s| s.to_string()).collect();
        v
    }

    #[test]
    fn a_lease_is_reached_within_scope_and_lineage_only() {
        let key = LeaseGate(cred(None, &["secrets:*:**", "secrets:*:/**"]));
        let staging = LeaseGate(cred(Some("t1"), &["secrets:list:staging/**"]));
        let reader = LeaseGate(cred(Some("t1"), &["secrets:read:/prod/**"]));
        let child = LeaseGate(cred(Some("t2"), &["secrets:read:/prod/**"]));
        let by_key = lease("prod/db", Action::Read, None, &[]);
        let by_t1 = lease("prod/db", Action::Read, Some("t1"), &["t1"]);
        let by_t2 = lease("prod/db", Action::Read, Some("t2"), &["t2", "t1"]);
        // The agent key reaches all its agent's leases.
        assert!(key.admits(&by_key) && key.admits(&by_t1) && key.admits(&by_t2));
        // The attack: a list-only token on staging/** used the key's lease on prod/db.
        assert!(!staging.admits(&by_key));
        assert!(
            !staging.admits(&by_t1),
            "scope does not cover prod/db for read"
        );
        // A token reaches what it and its descendants opened, not its parent's or siblings'.
        assert!(reader.admits(&by_t1) && reader.admits(&by_t2));
        assert!(!reader.admits(&by_key));
        assert!(!child.admits(&by_t1) && child.admits(&by_t2));
        // Action matters: a read scope does not reach a proxy lease.
        assert!(!reader.admits(&lease("prod/db", Action::Proxy, Some("t1"), &["t1"])));
        // Another agent's lease is never reached.
        let mut other = by_key.clone();
        other.agent_id = "a2".into();
        assert!(!key.admits(&other));
        assert!(LeaseGate(Reach::All).admits(&other));
    }

    #[test]
    fn tokens_are_revoked_by_admin_key_or_ancestors() {
        let t: TokenRecord = serde_json::from_value(serde_json::json!({
            "id": "t2", "agent_id": "a1", "parent": "t1", "scopes": [], "session_id": null,
            "task_id": null, "description": "", "issued_ns": 1, "expires_at": 9, "revoked_at": null,
        }))
        .unwrap();
        let ancestors = ["t1".to_string()];
        assert!(TokenReach(Reach::All).admits(&t, &ancestors));
        assert!(TokenReach(cred(None, &[])).admits(&t, &ancestors));
        assert!(TokenReach(cred(Some("t1"), &[])).admits(&t, &ancestors));
        assert!(TokenReach(cred(Some("t2"), &[])).admits(&t, &ancestors));
        assert!(!TokenReach(cred(Some("t3"), &[])).admits(&t, &ancestors));
        let mut other = t.clone();
        other.agent_id = "a2".into();
        assert!(!TokenReach(cred(None, &[])).admits(&other, &[]));
        assert_eq!(TokenReach(Reach::All).bulk(), Ok(None));
        assert_eq!(TokenReach(cred(None, &[])).bulk(), Ok(Some("a1")));
        assert!(TokenReach(cred(Some("t1"), &[])).bulk().is_err());
    }
}
