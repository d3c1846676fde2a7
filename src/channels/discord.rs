//! Discord in the daemon: the Interactions Endpoint `POST /bots/discord/interactions`.
//! Ed25519 over timestamp + body is checked first (401 otherwise, as Discord requires); PING
//! gets PONG; a button click becomes a vote and is answered with the updated card (or an
//! ephemeral refusal).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bots::ApprovalChannel as _;
use bots::discord::{
    Interaction, check_interaction_age, ephemeral, parse_interaction, pong, verify_interaction,
};

use super::votes::tap;
use crate::state::AppState;

/// `POST /bots/discord/interactions`.
pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(dc) = state.channels.discord.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let timestamp = header("x-signature-timestamp");
    if verify_interaction(
        dc.public_key(),
        header("x-signature-ed25519"),
        timestamp,
        &body,
    )
    .is_err()
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // A genuine but old (captured and replayed) request is refused too.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = check_interaction_age(timestamp, now) {
        tracing::warn!(error = %e, "stale Discord interaction refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let interaction = match parse_interaction(&body) {
        Ok(i) => i,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    match &interaction {
        Interaction::Ping => Json(pong()).into_response(),
        Interaction::Other => Json(ephemeral("This interaction is not supported.")).into_response(),
        Interaction::Button {
            user_id,
            user_name,
            channel_id,
            message_id,
            ..
        } => {
            let vote = match dc.vote(&interaction) {
                Ok(v) => v,
                Err(_) => {
                    // Audited like a forged Telegram button.
                    tracing::warn!(user_id = %user_id, "forged or altered button data refused");
                    let _ = state
                        .store
                        .append_event(crate::audit::Draft {
                            event: "approval.vote_rejected",
                            actor: crate::audit::Actor::new("discord", user_id.clone()),
                            namespace: String::new(),
                            resource_path: String::new(),
                            action: "vote".into(),
                            outcome: "denied",
                            ip: None,
                            details: serde_json::json!({"reason": "button data failed its check", "via": "discord", "user_name": user_name}),
                        })
                        .await;
                    return Json(ephemeral("This button is not valid.")).into_response();
                }
            };
            let decision = vote.decision;
            let answer = tap(
                &state,
                "discord",
                user_id,
                user_name,
                &vote.approval_id,
                decision,
            )
            .await;
            if answer.stale_card
                && let (Some(a), Some(channel), Some(message)) = (
                    answer.approval.clone(),
                    channel_id.clone(),
                    message_id.clone(),
                )
            {
                // A click on a card decided earlier: that copy still shows buttons (its edit
                // failed or is queued). The answer tells the clicker who decided; the edit,
                // after the answer (Discord wants one within 3 s), closes the card.
                let dc = dc.clone();
                let metrics = state.metrics.clone();
                tokio::spawn(async move {
                    let at = [bots::MessageRef {
                        chat_id: channel,
                        message_id: message,
                    }];
                    let edited = dc.update(&super::card(&a), &at).await;
                    metrics.chat_call("discord", crate::metrics::ChatCall::Edit, &edited);
                    if let Err(e) = edited {
                        tracing::warn!(error = %e, "could not close a stale Discord card");
                    }
                });
            }
            match (&answer.approval, answer.alert) {
                (Some(a), false) => match dc.update_message(&super::card(a)) {
                    Ok(body) => Json(body).into_response(),
                    Err(_) => Json(ephemeral(&answer.text)).into_response(),
                },
                _ => Json(ephemeral(&answer.text)).into_response(),
            }
        }
    }
}
