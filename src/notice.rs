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

/// The sending side, shared by the writer; receivers come from [`Notices::subscribe`].
#[derive(Clone)]
pub struct Notices {
    tx: broadcast::Sender<Notice>,
}

impl Notices {
    /// A stream with room for `capacity` notices per slow receiver.
    pub fn new(capacity: usize) -> Notices {
        Notices {
            tx: broadcast::channel(capacity).0,
        }
    }

    /// Publishes (no receivers is fine).
    pub fn publish(&self, n: Notice) {
        let _ = self.tx.send(n);
    }

    /// A new receiver, seeing notices published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}
