//! Policy (pure): grants (deny by default) and the approval matrix — trust tier ×
//! sensitivity → instant, approval, approval auto-granted at the deadline, or instant but
//! flagged — with per-pattern overrides where the most specific pattern wins.

use serde::{Deserialize, Serialize};

use crate::scope::{Action, Glob};

/// What a lease needs before it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Granted at once.
    Instant,
    /// Waits for approvers.
    Approval,
    /// Granted at once, and the audit event is flagged for review.
    Flagged,
}

/// What the deadline of a pending approval does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDeadline {
    /// The lease is denied (state `expired`, no approver decided).
    Deny,
    /// The lease is granted (auto-grant).
    Grant,
}

/// The rule that applies to one lease request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    /// Instant, approval or flagged.
    pub requirement: Requirement,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Seconds a pending approval waits.
    pub deadline_seconds: u64,
    /// What the deadline does.
    pub on_deadline: OnDeadline,
    /// Which rule this is, e.g. `default: tier 2 × sensitive` or `policy production/**`.
    pub source: String,
}

/// An operator's override of the matrix for a path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Full-path glob, e.g. `production/**`.
    pub pattern: String,
    /// Only for these tiers (all when absent).
    #[serde(default)]
    pub tiers: Option<Vec<u8>>,
    /// Only for these sensitivities (all when absent).
    #[serde(default)]
    pub sensitivities: Option<Vec<String>>,
    /// What leases under the pattern need.
    pub requirement: Requirement,
    /// Distinct approvals needed (default 1).
    #[serde(default = "one")]
    pub quorum: u32,
    /// Seconds before the deadline (default: the configured default deadline).
    #[serde(default)]
    pub deadline_seconds: Option<u64>,
    /// What the deadline does (default deny).
    #[serde(default = "deny")]
    pub on_deadline: OnDeadline,
}

fn one() -> u32 {
    1
}
fn deny() -> OnDeadline {
    OnDeadline::Deny
}

impl Override {
    /// Checks the override's fields.
    pub fn validate(&self) -> Result<Glob, String> {
        let glob = Glob::parse(&self.pattern)?;
        if !(1..=10).contains(&self.quorum) {
            return Err(format!("policy {}: quorum must be 1 to 10", self.pattern));
        }
        if let Some(t) = &self.tiers
            && t.iter().any(|t| !(1..=5).contains(t))
        {
            return Err(format!("policy {}: tiers are 1 to 5", self.pattern));
        }
        if let Some(s) = &self.sensitivities
            && s.iter().any(|s| !SENSITIVITIES.contains(&s.as_str()))
        {
            return Err(format!(
                "policy {}: sensitivities are {SENSITIVITIES:?}",
                self.pattern
            ));
        }
        if self.deadline_seconds == Some(0) {
            return Err(format!(
                "policy {}: deadline_seconds must be positive",
                self.pattern
            ));
        }
        Ok(glob)
    }
}

/// The sensitivities, least to most.
pub const SENSITIVITIES: &[&str] = &["standard", "sensitive", "critical"];

/// How long an auto-granting approval waits by default (tier 4 × critical).
pub const AUTO_GRANT_SECONDS: u64 = 24 * 3600;

/// The default matrix.
pub fn default_rule(tier: u8, sensitivity: &str, default_deadline: u64) -> Rule {
    use Requirement::*;
    let (requirement, on_deadline, deadline) = match (tier, sensitivity) {
        (_, "standard") => (Instant, OnDeadline::Deny, default_deadline),
        (1 | 2, _) => (Approval, OnDeadline::Deny, default_deadline),
        (3, "sensitive") => (Instant, OnDeadline::Deny, default_deadline),
        (3, _) => (Approval, OnDeadline::Deny, default_deadline),
        (4, "sensitive") => (Instant, OnDeadline::Deny, default_deadline),
        (4, _) => (Approval, OnDeadline::Grant, AUTO_GRANT_SECONDS),
        (_, "sensitive") => (Instant, OnDeadline::Deny, default_deadline),
        (_, _) => (Flagged, OnDeadline::Deny, default_deadline),
    };
    Rule {
        requirement,
        quorum: 1,
        deadline_seconds: deadline,
        on_deadline,
        source: format!("default: tier {tier} × {sensitivity}"),
    }
}

/// How specific a pattern is: literal segments weigh most, `**` least.
fn specificity(pattern: &str) -> (u32, usize) {
    let score = pattern
        .split('/')
        .map(|s| match s {
            "**" => 0,
            "*" => 1,
            s if s.contains('*') => 2,
            _ => 3,
        })
        .sum();
    (score, pattern.len())
}

/// Picks the rule for a request: the most specific matching override, else the matrix.
pub fn decide(
    tier: u8,
    sensitivity: &str,
    full_path: &str,
    overrides: &[Override],
    default_deadline: u64,
) -> Rule {
    let best = overrides
        .iter()
        .filter(|o| {
            o.tiers.as_ref().is_none_or(|t| t.contains(&tier))
                && o.sensitivities
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|s| s == sensitivity))
                && Glob::parse(&o.pattern).is_ok_and(|g| g.matches(full_path))
        })
        .max_by_key(|o| specificity(&o.pattern));
    match best {
        Some(o) => Rule {
            requirement: o.requirement,
            quorum: o.quorum,
            deadline_seconds: o.deadline_seconds.unwrap_or(default_deadline),
            on_deadline: o.on_deadline,
            source: format!("policy {}", o.pattern),
        },
        None => default_rule(tier, sensitivity, default_deadline),
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    rename_all = "snake_case",
    tag = "kind",
    content = "value",
    deny_unknown_fields
)]
pub enum Subject {
    /// One agent, by id.
    Agent(String),
    /// Every agent whose namespace lies under this prefix (`entities` = all agents).
    Namespace(String),
}

/// Limits a grant puts on the leases it allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest lease.
    pub max_ttl_seconds: Option<u64>,
    /// Most uses per lease.
    pub max_uses: Option<u32>,
    /// Keys of an env_bundle that may be read.
    pub keys: Option<Vec<String>>,
    /// Most leases per agent per hour under this grant.
    pub max_leases_per_hour: Option<u32>,
}

/// A grant: `subject` may do `actions` on paths matching `pattern`, within `limits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Grant {
    /// Id.
    pub id: String,
    /// Who.
    pub subject: Subject,
    /// Full-path glob.
    pub pattern: String,
    /// What.
    pub actions: Vec<Action>,
    /// Within which limits.
    #[serde(default)]
    pub limits: Limits,
    /// When created.
    pub created_at: String,
    /// By whom.
    pub created_by: String,
    /// When it stops applying (RFC 3339), if it is time-bound. Past it the grant allows
    /// nothing; `grant.expired` is audited when the time comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl Grant {
    /// Its expiry in unix seconds (an unreadable one counts as long past: fail closed).
    pub fn expires_unix(&self) -> Option<i64> {
        self.expires_at.as_deref().map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_or(i64::MIN, |t| t.unix_timestamp())
        })
    }

    /// Does it still apply at `now` (unix seconds)?
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_unix().is_none_or(|t| now < t)
    }

    /// Is this agent among the grant's subjects?
    pub fn names(&self, agent_id: &str, agent_namespace: &str) -> bool {
        match &self.subject {
            Subject::Agent(id) => id == agent_id,
            Subject::Namespace(prefix) => {
                agent_namespace == prefix
                    || agent_namespace.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
            }
        }
    }

    /// Does the grant apply to this agent, action and path?
    pub fn applies(
        &self,
        agent_id: &str,
        agent_namespace: &str,
        action: Action,
        full_path: &str,
    ) -> bool {
        self.names(agent_id, agent_namespace)
            && self.actions.contains(&action)
            && Glob::parse(&self.pattern).is_ok_and(|g| g.matches(full_path))
    }
}

/// The outcome of the grant check for a lease request.
#[derive(Debug, Clone, PartialEq)]
pub enum Access<'a> {
    /// Allowed, limited by this grant (if one applies).
    Allowed(Option<&'a Grant>),
    /// Refused, with the reason.
    Denied(&'static str),
}

/// Deny by default: inside its namespace an agent may do anything unless a grant there
/// for it narrows it; outside, only what a grant gives.
pub fn check<'a>(
    agent_id: &str,
    agent_namespace: &str,
    action: Action,
    full_path: &str,
    grants: &'a [Grant],
) -> Access<'a> {
    let own = crate::paths::relative_to(agent_namespace, full_path).is_some();
    // When several grants apply, the most specific pattern decides (its limits apply);
    // on a tie a grant naming the agent beats one naming its namespace.
    let best = grants
        .iter()
        .filter(|g| g.applies(agent_id, agent_namespace, action, full_path))
        .max_by_key(|g| {
            (
                specificity(&g.pattern),
                matches!(g.subject, Subject::Agent(_)),
            )
        });
    match (own, best) {
        (_, Some(g)) => Access::Allowed(Some(g)),
        (true, None) => {
            // A grant in its own namespace for other actions narrows it.
            let narrowed = grants.iter().any(|g| {
                g.subject == Subject::Agent(agent_id.to_string())
                    && Glob::parse(&g.pattern).is_ok_and(|p| p.matches(full_path))
            });
            if narrowed {
                Access::Denied("a grant in the agent's namespace does not allow this action")
            } else {
                Access::Allowed(None)
            }
        }
        (false, None) => Access::Denied("no grant allows this"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Requirement::*;

    #[test]
    fn default_matrix_all_fifteen_cells() {
        let expect = [
            (1, ["instant", "approval", "approval"]),
            (2, ["instant", "approval", "approval"]),
            (3, ["instant", "instant", "approval"]),
            (4, ["instant", "instant", "auto"]),
            (5, ["instant", "instant", "flagged"]),
        ];
        for (tier, cells) in expect {
            for (sens, want) in SENSITIVITIES.iter().zip(cells) {
                let r = default_rule(tier, sens, 3600);
                let got = match (r.requirement, r.on_deadline) {
                    (Instant, _) => "instant",
                    (Flagged, _) => "flagged",
                    (Approval, OnDeadline::Grant) => "auto",
                    (Approval, OnDeadline::Deny) => "approval",
                };
                assert_eq!(got, want, "tier {tier} × {sens}");
                if want == "auto" {
                    assert_eq!(r.deadline_seconds, 24 * 3600);
                }
            }
        }
    }

    fn ov(pattern: &str, req: Requirement, quorum: u32) -> Override {
        Override {
            pattern: pattern.into(),
            tiers: None,
            sensitivities: None,
            requirement: req,
            quorum,
            deadline_seconds: None,
            on_deadline: OnDeadline::Deny,
        }
    }

    #[test]
    fn most_specific_override_wins() {
        let overrides = [
            ov("production/**", Approval, 2),
            ov("production/openai/*", Instant, 1),
            ov("**", Approval, 1),
        ];
        let r = decide(5, "standard", "production/stripe/key", &overrides, 60);
        assert_eq!(
            (r.requirement, r.quorum, r.source.as_str()),
            (Approval, 2, "policy production/**")
        );
        let r = decide(1, "critical", "production/openai/key", &overrides, 60);
        assert_eq!(
            (r.requirement, r.source.as_str()),
            (Instant, "policy production/openai/*")
        );
        let r = decide(1, "critical", "staging/x", &overrides, 60);
        assert_eq!(r.source, "policy **");
        let r = decide(1, "critical", "staging/x", &[], 60);
        assert!(r.source.starts_with("default"));
        let mut only_critical = ov("staging/**", Approval, 3);
        only_critical.sensitivities = Some(vec!["critical".into()]);
        assert_eq!(
            decide(5, "standard", "staging/a", &[only_critical.clone()], 60).requirement,
            Instant
        );
        assert_eq!(
            decide(5, "critical", "staging/a", &[only_critical], 60).quorum,
            3
        );
    }

    fn grant(subject: Subject, pattern: &str, actions: &[Action]) -> Grant {
        Grant {
            id: "g".into(),
            subject,
            pattern: pattern.into(),
            actions: actions.to_vec(),
            limits: Limits::default(),
            created_at: String::new(),
            created_by: String::new(),
            expires_at: None,
        }
    }

    #[test]
    fn a_grant_lives_until_its_expiry() {
        let mut g = grant(Subject::Agent("a".into()), "**", &[Action::Read]);
        assert!(g.is_live(i64::MAX - 1));
        g.expires_at = Some("1970-01-01T00:01:40Z".into());
        assert!(g.is_live(99));
        assert!(!g.is_live(100));
        g.expires_at = Some("soon".into());
        assert!(!g.is_live(0), "unreadable: fail closed");
    }

    #[test]
    fn grants_deny_by_default() {
        let ns = "entities/a1";
        assert_eq!(
            check("a1", ns, Action::Read, "entities/a1/x", &[]),
            Access::Allowed(None)
        );
        assert!(matches!(
            check("a1", ns, Action::Read, "production/x", &[]),
            Access::Denied(_)
        ));
        let gs = [grant(
            Subject::Agent("a1".into()),
            "production/**",
            &[Action::Read],
        )];
        assert!(matches!(
            check("a1", ns, Action::Read, "production/x", &gs),
            Access::Allowed(Some(_))
        ));
        assert!(matches!(
            check("a1", ns, Action::Write, "production/x", &gs),
            Access::Denied(_)
        ));
        assert!(matches!(
            check("a2", "entities/a2", Action::Read, "production/x", &gs),
            Access::Denied(_)
        ));
        let all = [grant(
            Subject::Namespace("entities".into()),
            "shared/*",
            &[Action::Proxy],
        )];
        assert!(matches!(
            check("a9", "entities/a9", Action::Proxy, "shared/k", &all),
            Access::Allowed(Some(_))
        ));
        let narrow = [grant(
            Subject::Agent("a1".into()),
            "entities/a1/prod/*",
            &[Action::Proxy],
        )];
        assert!(matches!(
            check("a1", ns, Action::Read, "entities/a1/prod/k", &narrow),
            Access::Denied(_)
        ));
        assert!(matches!(
            check("a1", ns, Action::Read, "entities/a1/dev/k", &narrow),
            Access::Allowed(None)
        ));
    }

    #[test]
    fn the_most_specific_grant_decides() {
        let mut narrow = grant(Subject::Agent("a1".into()), "bundles/*", &[Action::Read]);
        narrow.limits.keys = Some(vec!["K".into()]);
        let broad = grant(Subject::Namespace("entities".into()), "**", &[Action::Read]);
        let gs = [broad, narrow];
        match check("a1", "entities/a1", Action::Read, "bundles/x", &gs) {
            Access::Allowed(Some(g)) => assert_eq!(g.pattern, "bundles/*"),
            other => panic!("{other:?}"),
        }
    }
}
