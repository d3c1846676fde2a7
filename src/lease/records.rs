//! The lease and approval records: what a lease and its approval are, as stored and as the
//! API shows them. The store keeps them; the state machines beside them decide their changes.

use serde::{Deserialize, Serialize};

use super::{LeaseState, Tally};
use crate::policy::Rule;
use crate::scope::Action;

/// A lease as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaseRecord {
    /// Id (ULID).
    pub id: String,
    /// Requesting agent.
    pub agent_id: String,
    /// Its name.
    pub agent_name: String,
    /// Its trust tier when it asked.
    pub trust_tier: u8,
    /// Requesting token, when a scoped token asked.
    pub token_id: Option<String>,
    /// The tokens that token was minted from, parent first: they (and the agent key) reach
    /// the lease too, see `crate::access::LeaseGate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_lineage: Vec<String>,
    /// That token's expiry: the lease never outlives it.
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub token_expires_at: Option<i64>,
    /// Full secret path.
    pub path: String,
    /// Namespace of the secret.
    pub namespace: String,
    /// The secret's sensitivity.
    pub sensitivity: String,
    /// `read` or `proxy`.
    pub action: Action,
    /// Lifetime once granted.
    pub ttl_seconds: u64,
    /// Uses granted.
    pub uses: u32,
    /// Uses left.
    pub uses_left: u32,
    /// For env_bundles: the keys this lease may read (all when absent).
    pub keys: Option<Vec<String>>,
    /// Why the agent asks.
    pub reason: String,
    /// Session binding.
    pub session_id: Option<String>,
    /// Task binding.
    pub task_id: Option<String>,
    /// Current state.
    pub state: LeaseState,
    /// The rule that applied and why.
    pub policy: Rule,
    /// Granted without approval but flagged for review (tier 5 × critical).
    pub flagged: bool,
    /// The grant that allowed it, outside the agent's namespace.
    pub grant_id: Option<String>,
    /// Requested (RFC 3339).
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Granted (RFC 3339).
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub granted_at: Option<i64>,
    /// Pending: the approval deadline. Active: the end of the lease (RFC 3339).
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
    /// When it reached a final state.
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<i64>,
    /// Its approval, when one was needed.
    pub approval_id: Option<String>,
}

/// An approval as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    /// Id (ULID).
    pub id: String,
    /// The lease it decides.
    pub lease_id: String,
    /// Requesting agent id and name, and tier.
    pub agent_id: String,
    /// Agent name.
    pub agent_name: String,
    /// Agent tier.
    pub trust_tier: u8,
    /// Full path.
    pub path: String,
    /// Namespace.
    pub namespace: String,
    /// Sensitivity.
    pub sensitivity: String,
    /// Action.
    pub action: Action,
    /// Lease TTL once granted.
    pub ttl_seconds: u64,
    /// Uses.
    pub uses: u32,
    /// env_bundle keys asked for.
    pub keys: Option<Vec<String>>,
    /// The agent's reason.
    pub reason: String,
    /// Requested (RFC 3339).
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: i64,
    /// Which rule asked for approval.
    pub policy_source: String,
    /// Votes, quorum, deadline, state.
    pub tally: Tally,
}
