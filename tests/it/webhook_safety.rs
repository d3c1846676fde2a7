//! Audit webhooks that must not hurt the daemon or each other: unsafe destinations and
//! redirects refused, a hanging consumer does not slow another, and a failing subscription is
//! announced in the approvers' Telegram chats and Discord channels.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Daemon, code};
use crate::receiver::{Mode, Receiver};
use crate::webhook_delivery::{dev, subscribe};

#[tokio::test]
async fn unsafe_destinations_and_redirects_are_refused() {
    let d = Daemon::start().await;
    let admin = d.admin.clone();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://localhost/x",
        "ftp://example.com/x",
        "http://[::1]/x",
    ] {
        let (s, b) = d
            .call(
                Method::POST,
                "/v1/webhooks",
                Some(&admin),
                Some(json!({"url": url, "events": ["audit.*"]})),
            )
            .await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{url}: {b}"
        );
    }
    let (s, _) = d
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&admin),
            Some(json!({"url": "https://example.com/x", "events": ["secret.*"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "patterns start with audit.");
    d.stop().await;

    // With loopback allowed, a redirecting consumer is not followed.
    let d = Daemon::start_with(dev).await;
    let r = Receiver::start().await;
    let sub = subscribe(&d, &r, json!({"events": ["audit.secret.*"]})).await;
    r.set_mode(Mode::FailNext(302, 1));
    let admin = d.admin.clone();
    d.put(&admin, "redir/k", json!({"value": "v"})).await;
    r.wait_for(Duration::from_secs(10), |g| {
        g.iter().any(|x| x.answered == 200)
    })
    .await;
    let (_, deliveries) = d
        .get(&format!(
            "/v1/webhooks/{}/deliveries",
            sub["id"].as_str().unwrap()
        ))
        .await;
    let first = deliveries.as_array().unwrap().last().unwrap();
    assert_eq!(first["status"], 302);
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    d.stop().await;
}

#[tokio::test]
async fn a_hanging_consumer_does_not_slow_another() {
    let d = Daemon::start_with(|c| {
        dev(c);
        c.webhooks.timeout_seconds = 30;
    })
    .await;
    let hang = Receiver::start().await;
    let fine = Receiver::start().await;
    subscribe(&d, &hang, json!({"events": ["audit.*"]})).await;
    subscribe(&d, &fine, json!({"events": ["audit.secret.*"]})).await;
    hang.set_mode(Mode::Hang);
    let admin = d.admin.clone();
    let start = std::time::Instant::now();
    for i in 0..5 {
        d.put(&admin, &format!("iso/k{i}"), json!({"value": "v"}))
            .await;
    }
    let got = fine
        .wait_for(Duration::from_secs(10), |g| g.len() >= 5)
        .await;
    assert_eq!(got.len(), 5);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the API and the other subscription are not held up: {:?}",
        start.elapsed()
    );
    // Stopping does not wait for the hanging request to time out.
    let stop = std::time::Instant::now();
    d.stop().await;
    assert!(stop.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_failing_subscription_is_announced_in_the_approvers_chats() {
    use bots::fake::discord::FakeDiscord;
    use bots::fake::telegram::FakeTelegram;
    let tg = FakeTelegram::start().await;
    let dc = FakeDiscord::start(&[555]).await;
    let (tg_url, dc_url) = (tg.url.clone(), dc.url.clone());
    let d = Daemon::start_with(move |c| {
        dev(c);
        c.webhooks.retry_for_seconds = 1;
        c.channels.telegram.enabled = true;
        c.channels.telegram.token =
            latchkey::config::Credential(bots::fake::telegram::TOKEN.into());
        c.channels.telegram.api_url = tg_url.clone();
        c.channels.telegram.routes = vec![latchkey::config::TelegramRoute {
            pattern: "**".into(),
            chat_id: -42,
        }];
        c.channels.discord.enabled = true;
        c.channels.discord.bot_token =
            latchkey::config::Credential(bots::fake::discord::TOKEN.into());
        c.channels.discord.application_id = 1_100_000_000_000_000_001;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        c.channels.discord.public_key = key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        c.channels.discord.api_url = dc_url.clone();
        c.channels.discord.routes = vec![latchkey::config::DiscordRoute {
            pattern: "**".into(),
            channel_id: 555,
        }];
    })
    .await;
    let r = Receiver::start().await;
    r.set_mode(Mode::Always(500));
    let sub = subscribe(&d, &r, json!({"events": ["audit.secret.*"]})).await;
    let admin = d.admin.clone();
    d.put(&admin, "fail/k", json!({"value": "v"})).await;
    let id = sub["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (mut tg_seen, mut dc_seen) = (false, false);
    while std::time::Instant::now() < deadline && !(tg_seen && dc_seen) {
        tg_seen = tg.bodies("sendMessage").iter().any(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains(id) && t.contains("stopped delivering"))
        });
        dc_seen = dc.calls_with("POST").iter().any(|c| {
            c.body["content"]
                .as_str()
                .is_some_and(|t| t.contains("stopped delivering"))
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(tg_seen, "the Telegram chat got the notice");
    assert!(dc_seen, "the Discord channel got the notice");
    assert_eq!(
        d.get(&format!("/v1/webhooks/{id}")).await.1["status"],
        "failing"
    );
    assert_eq!(d.events("webhook.failing").await.len(), 1);
    d.stop().await;
}
