//! Announcements to the approvers' chats (rotation reminders, digests, failing webhooks):
//! plain text sent to every Telegram chat and Discord channel whose route pattern matches the
//! subject path (all routes for general notices).

use tokio::sync::watch;

use crate::notice::Notice;
use crate::scope::Glob;
use crate::state::AppState;

/// Delivers announcements until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if !state.channels.any() {
        return;
    }
    let tg = state.channels.telegram.clone();
    let mut rx = state.store.notices().subscribe_local();
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
        if let Some(tg) = &tg {
            for chat in chats {
                let sent = tg.send_text(chat, &text).await;
                state
                    .metrics
                    .chat_call("telegram", crate::metrics::ChatCall::Notice, &sent);
                if let Err(e) = sent {
                    tracing::warn!(chat, error = %e, "announcement not delivered");
                }
            }
        }
        let matches = |pattern: &str| {
            path.as_deref()
                .is_none_or(|p| Glob::parse(pattern).is_ok_and(|g| g.matches(p)))
        };
        for (channel, dc) in state.channels.discord_notices.iter() {
            let routed = state
                .config
                .channels
                .discord
                .routes
                .iter()
                .any(|r| r.channel_id == *channel && matches(&r.pattern));
            if !routed {
                continue;
            }
            let sent = dc.send_text(&text).await;
            state
                .metrics
                .chat_call("discord", crate::metrics::ChatCall::Notice, &sent);
            if let Err(e) = sent {
                tracing::warn!(channel, error = %e, "announcement not delivered to Discord");
            }
        }
    }
}
