//! The internal event stream (the notification seam): every approval that opens, gains a
//! vote or closes, and every lease state change, is published here after its commit is
//! durable. Chat channels and long-polls subscribe.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::lease::ApprovalRecord;
use crate::lease::LeaseState;

/// What happened to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalChange {
    /// A card should be posted.
    Opened,
    /// A vote was counted; still pending.
    Voted,
    /// Decided, expired, auto-granted or cancelled: every card should show the outcome.
    Closed,
}

/// One published notice (serialisable: on PostgreSQL the daemons pass them to each other).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// An approval changed.
    Approval {
        /// How.
        change: ApprovalChange,
        /// Its state after the change.
        approval: Box<ApprovalRecord>,
    },
    /// A message for the approvers' chats (job reminders, digests, failing webhooks).
    Announcement {
        /// Routes matching this path get it; all routes when None.
        path: Option<String>,
        /// Plain text.
        text: String,
    },
    /// A lease changed state.
    Lease {
        /// Lease id.
        id: String,
        /// New state.
        state: LeaseState,
    },
}

/// The sending side, shared by the writer; receivers come from [`Notices::subscribe`] (every
/// notice, this daemon's and, on PostgreSQL, the other daemons') or
/// [`Notices::subscribe_local`] (this daemon's commits only: chat cards are posted and edited
/// by the daemon that made the change, so each is posted once however many daemons run).
#[derive(Clone)]
pub struct Notices {
    everything: broadcast::Sender<Notice>,
    local: broadcast::Sender<Notice>,
}

impl Notices {
    /// A stream with room for `capacity` notices per slow receiver.
    pub fn new(capacity: usize) -> Notices {
        Notices {
            everything: broadcast::channel(capacity).0,
            local: broadcast::channel(capacity).0,
        }
    }

    /// Publishes a notice of this daemon's commit (no receivers is fine).
    pub fn publish(&self, n: Notice) {
        let _ = self.local.send(n.clone());
        let _ = self.everything.send(n);
    }

    /// Publishes a notice another daemon sent.
    pub fn publish_remote(&self, n: Notice) {
        let _ = self.everything.send(n);
    }

    /// A new receiver of every notice, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.everything.subscribe()
    }

    /// A new receiver of this daemon's own notices, from now on.
    pub fn subscribe_local(&self) -> broadcast::Receiver<Notice> {
        self.local.subscribe()
    }
}
