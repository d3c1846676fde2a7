//! Announcements to the approvers' chats (rotation reminders, digests, failing webhooks):
//! plain text sent to every Telegram route whose pattern matches the subject path (all routes
//! for general notices). Discord announcements are not sent yet; the audit log has each one.

use tokio::sync::watch;

use crate::notice::Notice;
use crate::scope::Glob;
use crate::state::AppState;

/// Delivers announcements until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(tg) = state.channels.telegram.clone() else {
        return;
    };
    let mut rx = state.store.notices().subscribe();
    loop {
        let n = tokio::select! {
            n = rx.recv() => n,
            _ = shutdown.changed() => return,
        };
        let (path, text) = match n {
            Ok(Notice::Announcement { path, text }) => (path, text),
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let mut chats: Vec<i64> = state
            .config
            .channels
            .telegram
            .routes
            .iter()
            .filter(|r| {
                path.as_deref()
                    .is_none_or(|p| Glob::parse(&r.pattern).is_ok_and(|g| g.matches(p)))
            })
            .map(|r| r.chat_id)
            .collect();
        chats.sort_unstable();
        chats.dedup();
        for chat in chats {
            if let Err(e) = tg.send_text(chat, &text).await {
                tracing::warn!(chat, error = %e, "announcement not delivered");
            }
        }
    }
}
