//! Leases and approvals as pure state machines (no I/O), so every transition is unit-tested.
//!
//! Lease: `pending` → `active` → `exhausted` / `expired` / `revoked`, or
//! `pending` → `denied` / `expired` (and `revoked` when its token goes). Approval: votes from
//! distinct approvers until the quorum grants or one deny denies; the deadline is enforced
//! when a vote arrives, not only by the sweeper.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::{OnDeadline, Rule};

mod records;
pub use records::{ApprovalRecord, LeaseRecord};

/// Where a lease is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Waiting for approvers.
    Pending,
    /// Usable.
    Active,
    /// Every use spent.
    Exhausted,
    /// Its TTL (or its approval's deadline) passed.
    Expired,
    /// Revoked (directly, or with its token, agent, session or task).
    Revoked,
    /// An approver denied it.
    Denied,
}

impl LeaseState {
    /// No transition leaves this state.
    pub fn is_final(self) -> bool {
        !matches!(self, LeaseState::Pending | LeaseState::Active)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Pending => "pending",
            LeaseState::Active => "active",
            LeaseState::Exhausted => "exhausted",
            LeaseState::Expired => "expired",
            LeaseState::Revoked => "revoked",
            LeaseState::Denied => "denied",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<LeaseState> {
        [
            Self::Pending,
            Self::Active,
            Self::Exhausted,
            Self::Expired,
            Self::Revoked,
            Self::Denied,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEvent {
    /// Approved (or instant, or auto-granted).
    Grant,
    /// Denied by an approver.
    Deny,
    /// One use of an active lease; `last` when it was the final use.
    Use {
        /// Was it the last use?
        last: bool,
    },
    /// The TTL or deadline passed.
    Expire,
    /// Revoked.
    Revoke,
}

/// A transition the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {state} lease cannot take {event:?}")]
pub struct InvalidTransition {
    /// The state it was in.
    pub state: LeaseState,
    /// What was attempted.
    pub event: LeaseEvent,
}

/// The lease state machine.
pub fn transition(state: LeaseState, event: LeaseEvent) -> Result<LeaseState, InvalidTransition> {
    use LeaseEvent as E;
    use LeaseState as S;
    match (state, event) {
        (S::Pending, E::Grant) => Ok(S::Active),
        (S::Pending, E::Deny) => Ok(S::Denied),
        (S::Pending | S::Active, E::Expire) => Ok(S::Expired),
        (S::Pending | S::Active, E::Revoke) => Ok(S::Revoked),
        (S::Active, E::Use { last: false }) => Ok(S::Active),
        (S::Active, E::Use { last: true }) => Ok(S::Exhausted),
        _ => Err(InvalidTransition { state, event }),
    }
}

/// When an active lease ends: TTL from the grant, capped by the requesting token's expiry.
pub fn active_until(granted_at: i64, ttl_seconds: u64, token_expires_at: Option<i64>) -> i64 {
    let by_ttl = granted_at.saturating_add(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
    token_expires_at.map_or(by_ttl, |t| by_ttl.min(t))
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve.
    Approve,
    /// Deny.
    Deny,
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Collecting votes.
    Pending,
    /// Quorum reached.
    Approved,
    /// An approver denied.
    Denied,
    /// The deadline passed; the lease was denied.
    Expired,
    /// The deadline passed; the rule granted it.
    AutoGranted,
    /// The lease was revoked while pending.
    Cancelled,
}

/// One counted vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    /// Approver name.
    pub approver: String,
    /// Approve or deny.
    pub decision: Decision,
    /// Optional reason.
    pub reason: Option<String>,
    /// When (RFC 3339).
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Through which channel (`api`, `cli`, `telegram`, `discord`).
    pub via: String,
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted; still pending.
    Counted,
    /// The same approver had voted: counted once.
    Duplicate,
    /// This vote decided it.
    Decided(ApprovalState),
    /// Already decided earlier (state, by whom).
    AlreadyDecided(ApprovalState, Option<String>),
    /// The deadline had passed: its rule applied (and this approve did not count).
    Lapsed(ApprovalState),
}

/// The vote tally of one approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tally {
    /// Votes counted, in order.
    pub votes: Vec<Vote>,
    /// Approvals needed.
    pub quorum: u32,
    /// Deadline (RFC 3339).
    #[serde(with = "crate::util::unix_time")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    /// What the deadline does.
    pub on_deadline: OnDeadline,
    /// Current state.
    pub state: ApprovalState,
    /// Who decided (approver name, or `deadline`).
    pub decided_by: Option<String>,
    /// When it was decided (RFC 3339).
    #[serde(default, with = "crate::util::unix_time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<i64>,
}

impl Tally {
    /// A fresh tally for a rule, opened at `now`.
    pub fn open(rule: &Rule, now: i64) -> Tally {
        Tally {
            votes: Vec::new(),
            quorum: rule.quorum.max(1),
            deadline: now.saturating_add(i64::try_from(rule.deadline_seconds).unwrap_or(i64::MAX)),
            on_deadline: rule.on_deadline,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
        }
    }

    /// Approvals counted so far.
    pub fn approvals(&self) -> u32 {
        self.votes
            .iter()
            .filter(|v| v.decision == Decision::Approve)
            .count() as u32
    }

    fn close(&mut self, state: ApprovalState, by: &str, at: i64) {
        self.state = state;
        self.decided_by = Some(by.to_string());
        self.decided_at = Some(at);
    }

    /// Applies the deadline if it has passed; returns the new state when it did.
    pub fn apply_deadline(&mut self, now: i64) -> Option<ApprovalState> {
        if self.state != ApprovalState::Pending || now < self.deadline {
            return None;
        }
        let state = match self.on_deadline {
            OnDeadline::Deny => ApprovalState::Expired,
            OnDeadline::Grant => ApprovalState::AutoGranted,
        };
        self.close(state, "deadline", now);
        Some(state)
    }

    /// Counts a vote from an (already authorised) approver.
    pub fn vote(&mut self, vote: Vote) -> VoteOutcome {
        if self.state != ApprovalState::Pending {
            return VoteOutcome::AlreadyDecided(self.state, self.decided_by.clone());
        }
        if vote.at >= self.deadline {
            // A deny after the deadline is a deny, not a timeout.
            if vote.decision == Decision::Deny {
                let (by, at) = (vote.approver.clone(), vote.at);
                self.votes.push(vote);
                self.close(ApprovalState::Denied, &by, at);
                return VoteOutcome::Decided(ApprovalState::Denied);
            }
            let state = self.apply_deadline(vote.at).unwrap_or(self.state);
            return VoteOutcome::Lapsed(state);
        }
        if self.votes.iter().any(|v| v.approver == vote.approver) {
            return VoteOutcome::Duplicate;
        }
        let (by, at, decision) = (vote.approver.clone(), vote.at, vote.decision);
        self.votes.push(vote);
        if decision == Decision::Deny {
            self.close(ApprovalState::Denied, &by, at);
            return VoteOutcome::Decided(ApprovalState::Denied);
        }
        if self.approvals() >= self.quorum {
            self.close(ApprovalState::Approved, &by, at);
            return VoteOutcome::Decided(ApprovalState::Approved);
        }
        VoteOutcome::Counted
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::Requirement;

    fn rule(quorum: u32, on_deadline: OnDeadline) -> Rule {
        Rule {
            requirement: Requirement::Approval,
            quorum,
            deadline_seconds: 100,
            on_deadline,
            source: "t".into(),
        }
    }

    fn v(who: &str, d: Decision, at: i64) -> Vote {
        Vote {
            approver: who.into(),
            decision: d,
            reason: None,
            at,
            via: "api".into(),
        }
    }

    #[test]
    fn lease_transitions() {
        use LeaseEvent as E;
        use LeaseState as S;
        assert_eq!(transition(S::Pending, E::Grant), Ok(S::Active));
        assert_eq!(transition(S::Pending, E::Deny), Ok(S::Denied));
        assert_eq!(transition(S::Pending, E::Expire), Ok(S::Expired));
        assert_eq!(transition(S::Active, E::Use { last: false }), Ok(S::Active));
        assert_eq!(
            transition(S::Active, E::Use { last: true }),
            Ok(S::Exhausted)
        );
        assert_eq!(transition(S::Active, E::Revoke), Ok(S::Revoked));
        assert!(transition(S::Pending, E::Use { last: true }).is_err());
        assert!(transition(S::Active, E::Grant).is_err());
        for s in [S::Exhausted, S::Expired, S::Revoked, S::Denied] {
            assert!(s.is_final());
            for e in [
                E::Grant,
                E::Deny,
                E::Use { last: true },
                E::Expire,
                E::Revoke,
            ] {
                assert!(transition(s, e).is_err(), "{s} took {e:?}");
            }
        }
        assert_eq!(active_until(1000, 600, None), 1600);
        assert_eq!(
            active_until(1000, 600, Some(1200)),
            1200,
            "never outlives the token"
        );
    }

    #[test]
    fn quorum_duplicates_and_deny() {
        let mut t = Tally::open(&rule(2, OnDeadline::Deny), 0);
        assert_eq!(
            t.vote(v("alice", Decision::Approve, 1)),
            VoteOutcome::Counted
        );
        assert_eq!(
            t.vote(v("alice", Decision::Approve, 2)),
            VoteOutcome::Duplicate
        );
        assert_eq!(t.approvals(), 1);
        assert_eq!(
            t.vote(v("bob", Decision::Approve, 3)),
            VoteOutcome::Decided(ApprovalState::Approved)
        );
        assert_eq!(t.decided_by.as_deref(), Some("bob"));
        assert_eq!(
            t.vote(v("carol", Decision::Deny, 4)),
            VoteOutcome::AlreadyDecided(ApprovalState::Approved, Some("bob".into()))
        );

        let mut t = Tally::open(&rule(2, OnDeadline::Deny), 0);
        t.vote(v("alice", Decision::Approve, 1));
        assert_eq!(
            t.vote(v("bob", Decision::Deny, 2)),
            VoteOutcome::Decided(ApprovalState::Denied)
        );
    }

    #[test]
    fn deadlines_at_vote_time() {
        let mut t = Tally::open(&rule(1, OnDeadline::Deny), 0);
        assert_eq!(
            t.vote(v("alice", Decision::Approve, 100)),
            VoteOutcome::Lapsed(ApprovalState::Expired)
        );
        let mut t = Tally::open(&rule(1, OnDeadline::Grant), 0);
        assert_eq!(
            t.vote(v("alice", Decision::Approve, 150)),
            VoteOutcome::Lapsed(ApprovalState::AutoGranted)
        );
        let mut t = Tally::open(&rule(1, OnDeadline::Grant), 0);
        assert_eq!(
            t.vote(v("alice", Decision::Deny, 150)),
            VoteOutcome::Decided(ApprovalState::Denied),
            "a late deny is a deny"
        );
        let mut t = Tally::open(&rule(1, OnDeadline::Deny), 0);
        assert_eq!(t.apply_deadline(99), None);
        assert_eq!(t.apply_deadline(100), Some(ApprovalState::Expired));
        assert_eq!(t.apply_deadline(101), None, "applied once");
    }
}
