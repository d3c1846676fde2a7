//! The card dispatcher: turns approval notices into posts and edits on every target (chat or
//! channel) whose routes match the secret's path, one queue per target, each job retried with
//! backoff (honouring `retry_after`) so one platform failing never blocks another. If the
//! dispatcher falls behind the notice stream, it re-syncs the cards of recent approvals from
//! the store instead of leaving them stale.

use std::sync::Arc;
use std::time::Duration;

use bots::{Card, ChannelError, MessageRef};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use super::{Status, Target, card};
use crate::lease::ApprovalState;
use crate::notice::{ApprovalChange, Notice};
use crate::scope::Glob;
use crate::store::{ApprovalRecord, CardRef, Store};

/// How many of the newest approvals a re-sync looks at.
const RESYNC_APPROVALS: usize = 500;

/// What a target's queue does with a card.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Job {
    /// Post a new card (its message ids are stored).
    Post(Card),
    /// Edit every copy already posted on this target.
    Update(Card),
}

/// One target's queue and the path patterns routed to it.
pub(super) struct Queue {
    /// The target's name (`telegram:CHAT` or `discord:CHANNEL`), as stored with card refs.
    pub(super) target: String,
    pub(super) patterns: Vec<Glob>,
    pub(super) tx: mpsc::UnboundedSender<Job>,
}

impl Queue {
    fn routes(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(path))
    }
}

/// Sends every approval notice to the queues whose routes match.
pub(super) async fn dispatch(
    queues: Arc<Vec<Queue>>,
    store: Store,
    mut rx: broadcast::Receiver<Notice>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let notice = tokio::select! {
            n = rx.recv() => n,
            _ = shutdown.changed() => return,
        };
        let (change, approval) = match notice {
            Ok(Notice::Approval { change, approval }) => (change, approval),
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "the card dispatcher fell behind; re-syncing cards"
                );
                resync(&queues, &store);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let c = card(&approval);
        for q in queues.iter().filter(|q| q.routes(&approval.path)) {
            let job = if change == ApprovalChange::Opened {
                Job::Post(c.clone())
            } else {
                Job::Update(c.clone())
            };
            let _ = q.tx.send(job);
        }
    }
}

/// Brings the cards of the newest approvals up to date after missed notices.
fn resync(queues: &[Queue], store: &Store) {
    let recent = match store.list_approvals(false, None, RESYNC_APPROVALS) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot re-sync cards: approvals unreadable");
            return;
        }
    };
    for approval in recent {
        let refs = store.card_refs(&approval.id).unwrap_or_default();
        for q in queues.iter().filter(|q| q.routes(&approval.path)) {
            if let Some(job) = resync_job(&approval, &refs, &q.target) {
                let _ = q.tx.send(job);
            }
        }
    }
}

/// What a re-sync does for one approval on one target: post a pending approval never posted
/// there, edit one that was (to its current state, which may be an outcome), else nothing.
fn resync_job(approval: &ApprovalRecord, refs: &[CardRef], target: &str) -> Option<Job> {
    let posted = refs.iter().any(|r| r.target == target);
    match (posted, approval.tally.state == ApprovalState::Pending) {
        (true, _) => Some(Job::Update(card(approval))),
        (false, true) => Some(Job::Post(card(approval))),
        (false, false) => None,
    }
}

/// Counts a call to the target's platform in the metrics; answers its result.
fn counted<T>(
    store: &Store,
    t: &Target,
    call: crate::metrics::ChatCall,
    result: Result<T, ChannelError>,
) -> Result<T, ChannelError> {
    store.metrics().chat_call(t.channel.name(), call, &result);
    result
}

/// Runs one target's queue: each job retried until done, refused for good, or shutdown.
pub(super) async fn run_target(
    t: Target,
    mut rx: mpsc::UnboundedReceiver<Job>,
    store: Store,
    status: Status,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let job = tokio::select! {
            j = rx.recv() => match j { Some(j) => j, None => return },
            _ = shutdown.changed() => return,
        };
        let mut tries = 0u32;
        loop {
            tries += 1;
            let result = match &job {
                Job::Post(card) => match counted(
                    &store,
                    &t,
                    crate::metrics::ChatCall::Post,
                    t.channel.post(card).await,
                ) {
                    Ok(refs) => {
                        let refs = refs
                            .into_iter()
                            .map(|m: MessageRef| CardRef {
                                target: t.name.clone(),
                                chat_id: m.chat_id,
                                message_id: m.message_id,
                            })
                            .collect();
                        store
                            .add_card_refs(card.approval_id.clone(), refs)
                            .await
                            .map(|()| true)
                            .map_err(|e| ChannelError::Unavailable(e.to_string()))
                    }
                    Err(e) => Err(e),
                },
                Job::Update(card) => {
                    let refs: Vec<MessageRef> = store
                        .card_refs(&card.approval_id)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| r.target == t.name)
                        .map(|r| MessageRef {
                            chat_id: r.chat_id,
                            message_id: r.message_id,
                        })
                        .collect();
                    if refs.is_empty() {
                        // Never posted here (or the post failed for good): nothing to edit,
                        // and nothing learnt about the target's health.
                        Ok(false)
                    } else {
                        counted(
                            &store,
                            &t,
                            crate::metrics::ChatCall::Edit,
                            t.channel.update(card, &refs).await,
                        )
                        .map(|()| true)
                    }
                }
            };
            let wait = match result {
                Ok(reached) => {
                    if reached {
                        status.set(&t.name, "ok".into());
                    }
                    break;
                }
                Err(ChannelError::RateLimited { retry_after_secs }) => {
                    Duration::from_secs(retry_after_secs.clamp(1, 300))
                }
                Err(e) if e.is_retryable() => {
                    Duration::from_millis(500u64.saturating_mul(1 << tries.min(9)))
                }
                Err(e) => {
                    tracing::error!(target = %t.name, error = %e, "card not delivered");
                    status.set(&t.name, e.to_string());
                    break;
                }
            };
            tracing::warn!(target = %t.name, ?wait, "channel busy or down; retrying");
            if tries >= 20 {
                status.set(&t.name, "gave up after 20 tries".into());
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn approval(state: &str) -> ApprovalRecord {
        serde_json::from_value(json!({
            "id": "ap1", "lease_id": "l1", "agent_id": "a1", "agent_name": "bot", "trust_tier": 2,
            "path": "production/db", "namespace": "production", "sensitivity": "sensitive",
            "action": "read", "ttl_seconds": 60, "uses": 1, "keys": null, "reason": "deploy",
            "requested_at": 0, "policy_source": "default",
            "tally": {"votes": [], "quorum": 1, "deadline": 600, "on_deadline": "deny",
                      "state": state, "decided_by": null, "decided_at": null}
        }))
        .unwrap()
    }

    fn posted_on(target: &str) -> Vec<CardRef> {
        vec![CardRef {
            target: target.into(),
            chat_id: "1".into(),
            message_id: "2".into(),
        }]
    }

    #[test]
    fn resync_posts_missing_pending_cards_and_edits_posted_ones() {
        let here = "telegram:1";
        let pending = approval("pending");
        let denied = approval("denied");
        // A pending approval never posted here is posted; one posted is edited.
        assert!(matches!(
            resync_job(&pending, &[], here),
            Some(Job::Post(_))
        ));
        assert!(matches!(
            resync_job(&pending, &posted_on(here), here),
            Some(Job::Update(_))
        ));
        // A decided approval's posted cards are edited to the outcome; unposted ones are left.
        assert!(matches!(
            resync_job(&denied, &posted_on(here), here),
            Some(Job::Update(c)) if c.outcome.is_some()
        ));
        assert_eq!(resync_job(&denied, &[], here), None);
        // Copies on another target do not count as posted here.
        assert!(matches!(
            resync_job(&pending, &posted_on("discord:9"), here),
            Some(Job::Post(_))
        ));
    }
}
