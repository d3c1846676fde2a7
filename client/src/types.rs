//! The answers the typed methods read, as this client needs them. Fields the daemon adds later
//! are ignored; wide answers (secret metadata, lists, proxy answers) stay `serde_json::Value`.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `GET /v1/whoami`: the caller's credential.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct WhoAmI {
    /// `admin`, `approver`, `agent` (agent key) or `token` (scoped token).
    pub kind: String,
    /// The credential's id (an approver's name).
    pub id: String,
    /// The agent behind an agent key or scoped token.
    #[serde(default)]
    pub agent: Option<WhoAmIAgent>,
    /// Where relative paths resolve (agents).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `secrets:<action>:<glob>` scopes (agents).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Expiry (RFC 3339), if any.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Path patterns the caller may decide approvals for.
    #[serde(default)]
    pub approves: Vec<String>,
}

impl WhoAmI {
    /// Is this an agent credential (agent key or scoped token)?
    pub fn is_agent(&self) -> bool {
        matches!(self.kind.as_str(), "agent" | "token")
    }

    /// Does some scope allow `action` (`read`, `proxy`, `list`, `write`) anywhere? A scope's
    /// glob still narrows it, and the daemon decides each call: this only says whether an
    /// action can ever succeed with this credential.
    pub fn may(&self, action: &str) -> bool {
        self.scopes.iter().any(|s| {
            let mut parts = s.splitn(3, ':');
            parts.next() == Some("secrets") && parts.next().is_some_and(|a| a == action || a == "*")
        })
    }
}

/// The agent of a credential.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct WhoAmIAgent {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Trust tier 1 to 5.
    pub trust_tier: u8,
}

/// A lease's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Waiting for approvers.
    Pending,
    /// Usable.
    Active,
    /// Every use spent.
    Exhausted,
    /// Its TTL, or its approval's deadline, passed.
    Expired,
    /// Revoked.
    Revoked,
    /// An approver denied it.
    Denied,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

impl LeaseState {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Pending => "pending",
            LeaseState::Active => "active",
            LeaseState::Exhausted => "exhausted",
            LeaseState::Expired => "expired",
            LeaseState::Revoked => "revoked",
            LeaseState::Denied => "denied",
            LeaseState::Unknown => "unknown",
        }
    }
}

/// A lease as the API answers it (`LeaseView`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Lease {
    /// Id.
    pub id: String,
    /// State.
    pub state: LeaseState,
    /// Full secret path.
    pub path: String,
    /// `read` or `proxy`.
    pub action: String,
    /// Uses left.
    #[serde(default)]
    pub uses_left: u32,
    /// Pending: the approval deadline; active: the end of the lease (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The approval, when one was needed.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// Its summary.
    #[serde(default)]
    pub approval: Option<ApprovalSummary>,
    /// Why the agent asked.
    #[serde(default)]
    pub reason: String,
}

/// A lease's approval, as summarised in a lease.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApprovalSummary {
    /// Approval id.
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired`, `auto_granted`, `cancelled`.
    pub state: String,
    /// Approvals needed.
    #[serde(default)]
    pub votes_needed: u32,
    /// Approvals so far.
    #[serde(default)]
    pub votes: u32,
    /// Deadline (RFC 3339).
    #[serde(default)]
    pub deadline: Option<String>,
    /// Who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// The deciding approver's reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A value read through a lease: `value`, or an env_bundle's `entries`.
#[derive(Deserialize)]
pub struct SecretValue {
    /// A single value.
    #[serde(default)]
    pub value: Option<SecretString>,
    /// An env_bundle's entries (those the lease allows).
    #[serde(default)]
    pub entries: Option<BTreeMap<String, SecretString>>,
    /// The lease the value was read through.
    pub lease: Lease,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .field(
                "entries",
                &self.entries.as_ref().map(|e| e.keys().collect::<Vec<_>>()),
            )
            .field("lease", &self.lease.id)
            .finish()
    }
}

/// What the one-call read answered.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Instant: the value (its single-use lease already spent).
    Value(SecretValue),
    /// The lease waits for an approver.
    Pending(Lease),
}

/// `POST /v1/leases`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LeaseRequest {
    /// Secret path (relative to the agent's namespace, or absolute with a leading `/`).
    pub path: String,
    /// `read` or `proxy`.
    pub action: String,
    /// Lifetime once granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// For env_bundles: only these keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Why (shown to approvers).
    pub reason: String,
    /// Session binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Task binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MintToken {
    /// `secrets:<action>:<glob>` scopes, covered by the caller's.
    pub scopes: Vec<String>,
    /// Lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// What it is for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Session binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Task binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

/// A minted scoped token.
#[derive(Deserialize)]
pub struct MintedToken {
    /// The token (a credential: shown once).
    pub token: SecretString,
    /// Its id.
    pub id: String,
    /// Its scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Expiry (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("id", &self.id)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// A new value or env_bundle for `PUT /v1/secrets/{path}`.
#[derive(Default)]
pub struct PutSecret {
    /// The value.
    pub value: Option<SecretString>,
    /// Or an env_bundle's entries.
    pub entries: Option<BTreeMap<String, SecretString>>,
    /// `api_key`, `token`, `password`, … (the daemon's default when None).
    pub secret_type: Option<String>,
    /// `standard`, `sensitive` or `critical`.
    pub sensitivity: Option<String>,
    /// Free-form metadata.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Optimistic concurrency: the version expected current (0 = must not exist).
    pub if_version: Option<u64>,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve.
    Approve,
    /// Deny (one deny decides).
    Deny,
}

impl Decision {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}
