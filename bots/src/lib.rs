//! The approval-channel seam: what the daemon shows approvers and what comes back.
//!
//! The daemon turns a pending approval into a [`Card`] built from server-side
//! state only, hands it to every configured [`ApprovalChannel`] (Telegram,
//! Discord), keeps the returned [`MessageRef`]s, and edits every copy with
//! [`ApprovalChannel::update`] once the card changes or is decided. Button taps
//! come back as [`Vote`]s; the daemon authorises the tapping user against the
//! approver list on every vote, so nothing here decides who may approve.
//!
//! This crate does not depend on the daemon: it takes plain data and reports
//! plain data.
//!
//! - [`telegram`]: the Bot API client (teloxide): cards with inline buttons, updates,
//!   long polling and webhook mode.
//! - [`discord`]: the REST client (serenity) for cards with buttons, and the Interactions
//!   Endpoint's Ed25519 check and parsing.
//! - [`card`]: the text of a card, shared by both platforms.
//! - [`escape`]: escaping for Telegram MarkdownV2 and Discord markdown.
//! - [`callback`]: the ≤ 64-byte, MAC-protected data carried by buttons.

#![forbid(unsafe_code)]

pub mod callback;
pub mod card;
pub mod discord;
pub mod escape;
#[cfg(feature = "fake-api")]
pub mod fake;
pub mod telegram;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use callback::CallbackError;

/// A boxed, `Send` future, so that [`ApprovalChannel`] can be used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything an approver sees about one pending (or decided) approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The approval's id (a ULID, 26 characters).
    pub approval_id: String,
    /// Name of the agent asking for the lease.
    pub requester: String,
    /// The requester's trust tier, 1–5.
    pub trust_tier: u8,
    /// Path of the secret (or secret set) asked for.
    pub secret_path: String,
    /// The secret's sensitivity: `standard`, `sensitive` or `critical`.
    pub sensitivity: String,
    /// What the lease would allow: `read`, `proxy`, …
    pub action: String,
    /// Lease lifetime once granted, in seconds.
    pub ttl_seconds: u64,
    /// How many times the lease may be used.
    pub uses: u32,
    /// For a secret set, the keys asked for; `None` means the whole set.
    pub keys: Option<Vec<String>>,
    /// The requester's stated reason: untrusted, escaped and truncated when shown.
    pub reason: String,
    /// When the lease was requested (RFC 3339).
    pub requested_at: String,
    /// When the approval expires (RFC 3339).
    pub deadline: String,
    /// Approving votes counted so far.
    pub votes: u32,
    /// Approving votes needed (the quorum).
    pub votes_needed: u32,
    /// The decision, once there is one.
    pub outcome: Option<Outcome>,
}

/// How an approval ended, shown on every copy of its card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// What happened.
    pub kind: OutcomeKind,
    /// Display name of whoever decided; `None` when the deadline decided.
    pub decided_by: Option<String>,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
}

/// The ways an approval can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Quorum reached.
    Approved,
    /// An approver denied.
    Denied,
    /// The deadline passed and the rule says deny.
    Expired,
    /// The deadline passed and the rule says grant.
    AutoGranted,
}

/// What an approver's tap asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Grant the lease (counts towards quorum).
    Approve,
    /// Refuse the lease.
    Deny,
}

/// One tap on a card's button, as reported by a channel. Not yet authorised:
/// the daemon checks `platform_user_id` against the approver list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The approval voted on (from MAC-checked callback data).
    pub approval_id: String,
    /// Approve or deny.
    pub decision: Decision,
    /// The channel's [`ApprovalChannel::name`], e.g. `telegram`.
    pub platform: String,
    /// The tapping user's id on that platform (never the chat's id).
    pub platform_user_id: String,
    /// The tapping user's display name, for the card and the audit log.
    pub display_name: String,
}

/// Where a card was posted, so every copy can be edited later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    /// The chat or channel id.
    pub chat_id: String,
    /// The message id within that chat.
    pub message_id: String,
}

/// Why a channel could not post or edit a card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The platform asked us to slow down; try again after this many seconds.
    #[error("rate limited, retry after {retry_after_secs}s")]
    RateLimited {
        /// Seconds to wait before the next attempt.
        retry_after_secs: u64,
    },
    /// The platform could not be reached or failed; worth retrying.
    #[error("channel unavailable: {0}")]
    Unavailable(String),
    /// Our configuration is wrong (bad token, unknown chat); retrying will not help.
    #[error("channel misconfigured: {0}")]
    Misconfigured(String),
    /// The platform refused this particular request (e.g. message too long).
    #[error("rejected by channel: {0}")]
    Rejected(String),
}

impl ChannelError {
    /// Whether the same request may succeed later without a change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

/// A place where approval cards are posted and votes come from (Telegram, Discord).
///
/// Methods return boxed futures so the daemon can hold `Arc<dyn ApprovalChannel>`.
pub trait ApprovalChannel: Send + Sync {
    /// Short, stable name used in [`Vote::platform`] and logs, e.g. `telegram`.
    fn name(&self) -> &str;

    /// Posts a new card to every configured chat and returns where it landed.
    fn post<'a>(&'a self, card: &'a Card) -> BoxFuture<'a, Result<Vec<MessageRef>, ChannelError>>;

    /// Replaces every copy of a card (new vote count, or the outcome without buttons).
    fn update<'a>(
        &'a self,
        card: &'a Card,
        refs: &'a [MessageRef],
    ) -> BoxFuture<'a, Result<(), ChannelError>>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// A pending card with ordinary values, for tests in every module.
    pub(crate) fn sample_card() -> Card {
        Card {
            approval_id: "01HZX3K4M5N6P7Q8R9S0T1V2W3".into(),
            requester: "deploy-bot".into(),
            trust_tier: 2,
            secret_path: "production/openai/api-key".into(),
            sensitivity: "sensitive".into(),
            action: "read".into(),
            ttl_seconds: 900,
            uses: 1,
            keys: None,
            reason: "nightly release".into(),
            requested_at: "2026-05-01T12:00:00Z".into(),
            deadline: "2026-05-01T12:15:00Z".into(),
            votes: 0,
            votes_needed: 1,
            outcome: None,
        }
    }

    /// Records posted cards; proves the trait is usable as `dyn`.
    struct Fake(Mutex<Vec<String>>);

    impl ApprovalChannel for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn post<'a>(
            &'a self,
            card: &'a Card,
        ) -> BoxFuture<'a, Result<Vec<MessageRef>, ChannelError>> {
            Box::pin(async move {
                self.0.lock().unwrap().push(card.approval_id.clone());
                Ok(vec![MessageRef {
                    chat_id: "c".into(),
                    message_id: "1".into(),
                }])
            })
        }
        fn update<'a>(
            &'a self,
            _: &'a Card,
            refs: &'a [MessageRef],
        ) -> BoxFuture<'a, Result<(), ChannelError>> {
            Box::pin(async move {
                if refs.is_empty() {
                    Err(ChannelError::Rejected("no refs".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn ready<T>(mut fut: BoxFuture<'_, T>) -> T {
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("fake future should be ready"),
        }
    }

    #[test]
    fn channel_is_object_safe() {
        let channel: Arc<dyn ApprovalChannel> = Arc::new(Fake(Mutex::new(Vec::new())));
        let card = sample_card();
        let refs = ready(channel.post(&card)).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(ready(channel.update(&card, &refs)), Ok(()));
        assert!(ready(channel.update(&card, &[])).is_err());
        assert_eq!(channel.name(), "fake");
    }

    #[test]
    fn retryable_errors() {
        assert!(
            ChannelError::RateLimited {
                retry_after_secs: 3
            }
            .is_retryable()
        );
        assert!(ChannelError::Unavailable("x".into()).is_retryable());
        assert!(!ChannelError::Misconfigured("x".into()).is_retryable());
        assert!(!ChannelError::Rejected("x".into()).is_retryable());
    }
}
