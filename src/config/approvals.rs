//! Lease and approval settings, and the approvers who may decide approvals.

use serde::{Deserialize, Serialize};

/// Lease and approval settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long a pending approval waits before its deadline rule applies.
    pub default_deadline_seconds: u64,
    /// Lease lifetime when the request names none.
    pub default_lease_ttl_seconds: u64,
    /// Longest lease lifetime (grants may lower it).
    pub max_lease_ttl_seconds: u64,
    /// Most uses one lease may carry.
    pub max_lease_uses: u32,
    /// The admin token also counts as an approver for every path (`serve --dev` sets it).
    pub admin_is_approver: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            default_deadline_seconds: 3600,
            default_lease_ttl_seconds: 300,
            max_lease_ttl_seconds: 3600,
            max_lease_uses: 1000,
            admin_is_approver: false,
        }
    }
}

/// One approver: a person who may decide approvals for some paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverConfig {
    /// Unique name, shown on cards and in the audit log.
    pub name: String,
    /// Full-path globs this approver may decide (`production/**`); default: everything.
    #[serde(default = "everything")]
    pub patterns: Vec<String>,
    /// Telegram user id, for taps on Telegram cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_user_id: Option<i64>,
    /// Discord user id, for clicks on Discord cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_user_id: Option<String>,
}

fn everything() -> Vec<String> {
    vec!["**".into()]
}

impl ApproverConfig {
    /// May this approver decide for the full path?
    pub fn may_decide(&self, full_path: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| crate::scope::Glob::parse(p).is_ok_and(|g| g.matches(full_path)))
    }
}
