//! Telegram in the daemon: the getUpdates long-poll loop (polling mode), the webhook route
//! `POST /bots/telegram/webhook` (webhook mode, secret token checked on every update), and
//! what an update does — a tap becomes a vote and is always answered; `/whoami` and
//! `/pending` reply in the chat.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bots::telegram::{Command, Incoming, parse_update, parse_update_json, webhook_secret_ok};
use tokio::sync::watch;

use super::votes::tap;
use crate::state::AppState;

/// Handles one parsed update.
pub async fn handle(state: &AppState, incoming: Incoming) {
    let Some(tg) = state.channels.telegram.clone() else {
        return;
    };
    match incoming {
        Incoming::Tap {
            callback_query_id,
            user_id,
            user_name,
            data,
            chat_id,
            message_id,
        } => {
            let mut stale = None;
            let (text, alert) = match bots::callback::decode(&state.channels.key, &data) {
                Ok((approval_id, decision)) => {
                    let a = tap(
                        state,
                        "telegram",
                        &user_id.to_string(),
                        &user_name,
                        &approval_id,
                        decision,
                    )
                    .await;
                    if a.stale_card {
                        stale = a.approval;
                    }
                    (a.text, a.alert)
                }
                Err(_) => {
                    tracing::warn!(user_id, "forged or altered callback data refused");
                    let _ = state
                        .store
                        .append_event(crate::audit::Draft {
                            event: "approval.vote_rejected",
                            actor: crate::audit::Actor::new("telegram", user_id.to_string()),
                            namespace: String::new(),
                            resource_path: String::new(),
                            action: "vote".into(),
                            outcome: "denied",
                            ip: None,
                            details: serde_json::json!({"reason": "callback data failed its check", "via": "telegram"}),
                        })
                        .await;
                    ("this button is not valid".to_string(), true)
                }
            };
            let answered = tg.answer_tap(&callback_query_id, &text, alert).await;
            state
                .metrics
                .chat_call("telegram", crate::metrics::ChatCall::Answer, &answered);
            if let Err(e) = answered {
                tracing::warn!(error = %e, "answerCallbackQuery failed");
            }
            // A tap on a card decided earlier: that copy still shows buttons (its edit
            // failed or is queued), so show the outcome on it now.
            if let (Some(a), Some(chat), Some(message)) = (stale, chat_id, message_id) {
                let at = bots::MessageRef {
                    chat_id: chat.to_string(),
                    message_id: message.to_string(),
                };
                let edited = tg.edit(&super::card(&a), &at).await;
                state
                    .metrics
                    .chat_call("telegram", crate::metrics::ChatCall::Edit, &edited);
                if let Err(e) = edited {
                    tracing::warn!(error = %e, "could not close a stale Telegram card");
                }
            }
        }
        Incoming::Command {
            chat_id,
            user_id,
            command,
            mention,
            ..
        } => {
            // In a group, `/pending@other_bot` is for another bot.
            if !state.channels.telegram_command_is_ours(mention.as_deref()) {
                return;
            }
            let reply = match command {
                Command::Whoami => format!("Your Telegram user id is {user_id}; this chat's id is {chat_id}. Put them in the Latchkey config ([[approvers]] telegram_user_id, [[channels.telegram.routes]] chat_id)."),
                Command::Pending => pending_for(state, user_id),
                Command::Start => "Latchkey approval bot. /whoami shows your ids; /pending lists approvals you may decide.".into(),
                Command::Other(_) => return,
            };
            let sent = tg.send_text(chat_id, &reply).await;
            state
                .metrics
                .chat_call("telegram", crate::metrics::ChatCall::Reply, &sent);
            if let Err(e) = sent {
                tracing::warn!(error = %e, "reply failed");
            }
        }
    }
}

fn pending_for(state: &AppState, user_id: i64) -> String {
    let Some(ap) = state
        .config
        .approvers
        .iter()
        .find(|a| a.telegram_user_id == Some(user_id))
    else {
        return "You are not an approver.".into();
    };
    let open: Vec<String> = state
        .store
        .list_approvals(true, None, 50)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| ap.may_decide(&a.path))
        .map(|a| {
            format!(
                "• {} — {} ({}/{}) id {}",
                a.path,
                a.agent_name,
                a.tally.approvals(),
                a.tally.quorum,
                a.id
            )
        })
        .collect();
    if open.is_empty() {
        "No pending approvals for you.".into()
    } else {
        format!("Pending approvals:\n{}", open.join("\n"))
    }
}

/// The getUpdates loop (polling mode); one per bot token.
pub async fn poll(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(tg) = state.channels.telegram.clone() else {
        return;
    };
    let deleted = tg.delete_webhook().await;
    state
        .metrics
        .chat_call("telegram", crate::metrics::ChatCall::Webhook, &deleted);
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "deleteWebhook failed");
    }
    let mut offset = 0;
    let mut failures = 0u32;
    // Several daemons on one PostgreSQL database: one polls at a time (Telegram answers 409 to
    // a second poller). The duty lasts 15 s, so a poll waits at most 10 s before it is renewed.
    let shared = state.store.postgres().is_some();
    let wait_secs = if shared { 10 } else { 30 };
    loop {
        if shared {
            let store = state.store.clone();
            let held = tokio::task::spawn_blocking(move || store.holds_duty("telegram-polling"))
                .await
                .unwrap_or(false);
            if !held {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        }
        let got = tokio::select! {
            r = tg.get_updates(offset, wait_secs) => r,
            _ = shutdown.changed() => return,
        };
        state
            .metrics
            .chat_call("telegram", crate::metrics::ChatCall::Poll, &got);
        match got {
            Ok(updates) => {
                if failures > 0 {
                    // Recovered: the error recorded below no longer describes the channel.
                    state.channels.status.set("telegram", "ok".into());
                }
                failures = 0;
                offset = bots::telegram::next_offset(&updates, offset);
                for u in &updates {
                    if let Some(i) = parse_update(u) {
                        let st = state.clone();
                        tokio::spawn(async move { handle(&st, i).await });
                    }
                }
            }
            Err(e) => {
                failures += 1;
                let wait = match e {
                    bots::ChannelError::RateLimited { retry_after_secs } => {
                        Duration::from_secs(retry_after_secs.max(1))
                    }
                    _ => Duration::from_millis(500u64.saturating_mul(1 << failures.min(6))),
                };
                tracing::warn!(error = %e, ?wait, "getUpdates failed");
                state.channels.status.set("telegram", e.to_string());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// `POST /bots/telegram/webhook`: refuses any update without the configured secret token.
pub async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let expected = &state.config.channels.telegram.webhook_secret.0;
    let header = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    if state.channels.telegram.is_none() || !webhook_secret_ok(expected, header) {
        return StatusCode::UNAUTHORIZED;
    }
    match parse_update_json(&body) {
        Ok(Some(i)) => {
            // Answer Telegram at once; the vote and the answer to the tap follow.
            let st = state.clone();
            tokio::spawn(async move { handle(&st, i).await });
            StatusCode::OK
        }
        Ok(None) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}
