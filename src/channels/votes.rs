//! Taps and clicks become votes: the tapper's platform id is checked against the approver
//! list for the secret's path on every tap (fail closed), refusals are audited, and the answer
//! text says what happened ("already decided by …").

use serde_json::json;

use crate::audit::{Actor, Draft};
use crate::lease::{ApprovalState, Decision, Vote, VoteOutcome};
use crate::state::AppState;
use crate::store::{ApprovalRecord, Origin};

/// What to answer the tapper.
pub struct TapAnswer {
    /// Short text (≤ 200 characters for Telegram).
    pub text: String,
    /// Show it as an alert / ephemeral warning.
    pub alert: bool,
    /// The approval after the tap, when it exists.
    pub approval: Option<ApprovalRecord>,
    /// The approval was decided before this tap: the tapped copy of the card may be stale
    /// (its edit failed or is still queued) and should be edited to show the outcome.
    pub stale_card: bool,
}

fn state_word(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::Expired => "expired",
        ApprovalState::AutoGranted => "auto-granted",
        ApprovalState::Cancelled => "cancelled",
    }
}

/// Applies a tap by `user_id` on `platform` (`telegram` or `discord`).
pub async fn tap(
    state: &AppState,
    platform: &str,
    user_id: &str,
    user_name: &str,
    approval_id: &str,
    decision: bots::Decision,
) -> TapAnswer {
    let answer = |text: String, alert: bool, approval| TapAnswer {
        text,
        alert,
        approval,
        stale_card: false,
    };
    let approval = match state.store.get_approval(approval_id) {
        Ok(Some(a)) => a,
        _ => return answer("this approval no longer exists".into(), true, None),
    };
    // Fail closed: an empty id never matches. The same person may be listed under several
    // approver names (say one for staging, one for production): any entry that may decide
    // this path counts.
    let approver = state.config.approvers.iter().find(|a| {
        let same_user = match platform {
            "telegram" => a
                .telegram_user_id
                .is_some_and(|id| id.to_string() == user_id),
            "discord" => a
                .discord_user_id
                .as_deref()
                .is_some_and(|id| !id.is_empty() && id == user_id),
            _ => false,
        };
        same_user && !user_id.is_empty() && a.may_decide(&approval.path)
    });
    let actor = Actor::new(platform, user_id.to_string());
    let Some(approver) = approver else {
        let _ = state
            .store
            .append_event(Draft {
                event: "approval.vote_rejected",
                actor,
                namespace: approval.namespace.clone(),
                resource_path: approval.path.clone(),
                action: "vote".into(),
                outcome: "denied",
                ip: None,
                details: json!({"approval_id": approval.id, "reason": "not an approver for this path", "via": platform, "user_name": user_name}),
            })
            .await;
        let text: String = format!("you are not an approver for {}", approval.path)
            .chars()
            .take(200)
            .collect();
        return answer(text, true, Some(approval));
    };
    let decision = match decision {
        bots::Decision::Approve => Decision::Approve,
        bots::Decision::Deny => Decision::Deny,
    };
    let vote = Vote {
        approver: approver.name.clone(),
        decision,
        reason: None,
        at: time::OffsetDateTime::now_utc().unix_timestamp(),
        via: platform.to_string(),
    };
    let origin = Origin {
        actor: Actor::new("approver", approver.name.clone()),
        ip: None,
    };
    match state.store.vote(approval.id.clone(), vote, origin).await {
        Ok(r) => {
            let t = &r.approval.tally;
            let text = match &r.outcome {
                VoteOutcome::Counted => format!("vote counted ({}/{})", t.approvals(), t.quorum),
                VoteOutcome::Duplicate => "you already voted; it counts once".to_string(),
                VoteOutcome::Decided(s) => {
                    format!("{}: the lease is now {}", state_word(*s), r.lease.state)
                }
                VoteOutcome::Lapsed(s) => {
                    format!("too late: the deadline had passed ({})", state_word(*s))
                }
                VoteOutcome::AlreadyDecided(s, by) => {
                    let at = t
                        .decided_at
                        .and_then(crate::util::rfc3339_of)
                        .unwrap_or_default();
                    format!(
                        "already {} by {} at {at}",
                        state_word(*s),
                        by.as_deref().unwrap_or("nobody")
                    )
                }
            };
            let alert = matches!(
                r.outcome,
                VoteOutcome::AlreadyDecided(..) | VoteOutcome::Lapsed(..)
            );
            TapAnswer {
                stale_card: matches!(r.outcome, VoteOutcome::AlreadyDecided(..)),
                ..answer(text, alert, Some(r.approval))
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "vote from chat failed");
            answer(
                "the vote could not be recorded; try again".into(),
                true,
                Some(approval),
            )
        }
    }
}
