//! Tap phase (issue 4): from a fake Telegram delivering an Approve tap to the daemon's
//! webhook route, to the agent's waiting long-poll answering — the real teloxide client code
//! posts the card to the local fake Bot API (`bots::fake::telegram`), whose button data the
//! "approver" then taps.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
pub use bots::fake::telegram::FakeTelegram;
use bots::fake::telegram::tap_update;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::stats::{Goal, Stats, cores_since, cpu_now, micros};

const LABEL: &str = "tap     (Telegram tap delivered → long-poll answered):";
/// Approvals tapped.
const ROUNDS: usize = 200;
/// The webhook secret token the daemon checks.
pub const SECRET: &str = "bench-webhook-secret";
/// The approver's Telegram user id.
pub const USER: i64 = 4242;
/// The approvers' chat.
pub const CHAT: i64 = -100_777;

/// The card posted for an approval, once it reaches the fake (bounded wait).
async fn card(tg: &FakeTelegram, approval_id: &str) -> anyhow::Result<Value> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let found = tg
            .messages()
            .into_iter()
            .find(|m| m["text"].as_str().is_some_and(|t| t.contains(approval_id)));
        if let Some(m) = found {
            return Ok(m);
        }
        ensure!(Instant::now() < until, "no card for approval {approval_id}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sets the daemon up for the phase: one approver with a Telegram id, one routed chat,
/// webhook mode.
pub fn configure(cfg: &mut latchkey::config::Config, fake_url: &str) {
    cfg.approvers.push(latchkey::config::ApproverConfig {
        name: "tapper".into(),
        patterns: vec!["bench/tap/**".into()],
        telegram_user_id: Some(USER),
        discord_user_id: None,
    });
    let tg = &mut cfg.channels.telegram;
    tg.enabled = true;
    tg.token = latchkey::config::Credential(bots::fake::telegram::TOKEN.into());
    tg.api_url = fake_url.to_string();
    tg.mode = "webhook".into();
    tg.webhook_url = "https://bench.invalid/bots/telegram/webhook".into();
    tg.webhook_secret = latchkey::config::Credential(SECRET.into());
    tg.routes = vec![latchkey::config::TelegramRoute {
        pattern: "bench/tap/**".into(),
        chat_id: CHAT,
    }];
}

/// [`ROUNDS`] approvals: a pending lease, its card at the fake, a long-poll on the lease, then
/// the tap (a `callback_query` update with the card's Approve data) posted to the webhook
/// route. Prints tap sent → poll answered. Returns 0 (its audit events are not counted).
pub async fn run(api: &Api, agent: &str, tg: &FakeTelegram) -> anyhow::Result<u64> {
    api.admin(
        Method::PUT,
        "/v1/approval-policies/bench/tap/**",
        json!({"requirement": "approval"}),
    )
    .await?;
    api.put_secret("bench/tap/s", "v").await?;
    let mut total = Stats::default();
    let (start, cpu0) = (Instant::now(), cpu_now());
    for round in 0..ROUNDS {
        let lease = api
            .lease(
                agent,
                json!({"path": "/bench/tap/s", "ttl_seconds": 3600}),
                "pending",
            )
            .await?;
        let id = lease["id"]
            .as_str()
            .context("lease without id")?
            .to_string();
        let aid = lease["approval"]["id"].as_str().context("no approval")?;
        let card = card(tg, aid).await?;
        let data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .context("card without buttons")?
            .to_string();
        let url = format!("{}/v1/leases/{id}?wait=30", api.base);
        let (http, key) = (api.http.clone(), agent.to_string());
        let poll = tokio::spawn(async move {
            let resp = http.get(url).bearer_auth(key).send().await?;
            let body: Value = resp.json().await?;
            anyhow::Ok((Instant::now(), body))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let query = format!("q{round}");
        let update = tap_update(10_000 + round as i64, &query, USER, "tapper", &card, &data);
        let t0 = Instant::now();
        let resp = api
            .http
            .post(format!("{}/bots/telegram/webhook", api.base))
            .header("x-telegram-bot-api-secret-token", SECRET)
            .json(&update)
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "webhook route answered {}",
            resp.status()
        );
        let (t1, seen) = poll.await??;
        ensure!(seen["state"] == "active", "the long-poll answered {seen}");
        total.lat.push(micros(t1 - t0));
    }
    (total.secs, total.cpu) = (start.elapsed().as_secs_f64(), cores_since(start, cpu0));
    total.lat.sort_unstable();
    total.print(
        LABEL,
        Goal {
            rate: None,
            p99_ms: Some(50.0),
        },
    );
    Ok(0)
}
