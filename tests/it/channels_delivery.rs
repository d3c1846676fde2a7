//! How cards are delivered and kept true: platform rate limits delay cards but never the API,
//! a reason's markup is shown literally, expiry and lease revocation close every card, and
//! /readyz reports each channel's (and each chat's) state without leaking a token.

use std::time::{Duration, Instant};

use bots::fake::discord::Failure;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::channel_approvers::{click, dc_buttons, tg_buttons};
use crate::channel_world::{
    ALICE_DC, ALICE_TG, BAD_DC_TOKEN, BAD_TG_TOKEN, BOB_DC, DC_CHANNEL, MAIN_CHAT, Setup, WAIT,
    discord_key, world,
};

#[tokio::test]
async fn rate_limits_delay_the_card_but_never_the_api() {
    let w = world(Setup::default()).await;
    w.tg.rate_limit_next("sendMessage", 2);
    w.dc.fail_next("POST", Failure::RateLimited, 2);

    let started = Instant::now();
    let (lease, approval) = w.pending("/production/db", "while throttled").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the request does not wait for the platforms"
    );
    // The API answers at once while the channels wait out the rate limits.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(w.lease(&lease).await["state"], "pending");
        let (s, _) = w.d.get(&format!("/v1/approvals/{approval}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(t.elapsed() < Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The cards arrive once the platforms recover, after waiting retry_after each time.
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    let sends = w.tg_sends(&approval);
    let statuses: Vec<u16> = sends.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    for pair in sends.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "retry_after honoured"
        );
    }
    let posts = w.dc.calls_with("POST");
    let statuses: Vec<u16> = posts.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    for pair in posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "Discord's retry_after honoured"
        );
    }
    assert_eq!(w.lease(&lease).await["state"], "pending");
    let (s, r) = w.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a rate limit is not a misconfiguration: {r}"
    );

    // getUpdates itself is rate limited once: /readyz says so, then recovers.
    w.tg.rate_limit_next("getUpdates", 1);
    w.readyz_shows("channel:telegram", |v| v.starts_with("rate limited"))
        .await;
    let r = w.readyz_shows("channel:telegram", |v| v == "ok").await;
    assert_eq!(r["status"], "ready");

    // Discord fails once with a 500 when the card is edited; the edit is retried.
    w.dc.fail_next("PATCH", Failure::ServerError, 1);
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    w.answer(&qid).await;
    w.lease_becomes(&lease, "active").await;
    let closed = w
        .dc_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    assert_eq!(closed["components"], json!([]));
    assert_eq!(closed["id"], msg["id"]);
    let patches: Vec<u16> = w.dc.calls_with("PATCH").iter().map(|c| c.status).collect();
    assert_eq!(patches, [500, 200]);
    w.tg_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn markup_in_a_reason_is_shown_literally() {
    let w = world(Setup::default()).await;
    let reason = "*bold* <b>x</b> [link](http://evil) @everyone _u_ `c`";
    let (_, approval) = w.pending("/markup/key", reason).await;
    let card = w.tg_card(&approval).await;
    let send = w.tg_sends(&approval).pop().unwrap().body;
    assert!(send.get("parse_mode").is_none(), "plain text: {send}");
    assert!(send.get("entities").is_none(), "{send}");
    assert_eq!(send["link_preview_options"]["is_disabled"], true, "{send}");
    assert!(
        card["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Why: {reason}\n")),
        "{card}"
    );

    let msg = w.dc_card(&approval).await;
    let content = msg["content"].as_str().unwrap();
    let escaped =
        "Why: \\*bold\\* <b\\>x</b\\> \\[link\\](http://evil) @\u{200B}everyone \\_u\\_ \\`c\\`";
    assert!(content.contains(escaped), "{content}");
    assert!(!content.contains("@everyone"));
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));

    // The decided cards (edit and click answer) are just as literal.
    let (_, no) = dc_buttons(&msg);
    let (_, b) = w
        .interact(&click(ALICE_DC, "alice", &msg, &no), Some(&discord_key()))
        .await;
    assert!(
        b["data"]["content"].as_str().unwrap().contains(escaped),
        "{b}"
    );
    assert_eq!(b["data"]["allowed_mentions"], json!({"parse": []}));
    w.tg_card_showing(&approval, "denied by alice").await;
    let edit =
        w.tg.bodies("editMessageText")
            .into_iter()
            .rfind(|b| b["text"].as_str().unwrap().contains(&approval))
            .unwrap();
    assert!(edit.get("parse_mode").is_none(), "{edit}");
    assert!(edit["text"].as_str().unwrap().contains(reason));
    let edited = w.dc_card_showing(&approval, "denied by alice").await;
    assert_eq!(edited["allowed_mentions"], json!({"parse": []}));
    w.d.stop().await;
}

#[tokio::test]
async fn expiry_closes_every_card() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/short/key", "in a hurry").await;
    // The deadline is a second away: under load the card may already be closed when it is
    // first read, so its buttons are taken from the card as it was sent.
    let mut card = w.tg_card(&approval).await;
    let sent = w.tg_sends(&approval);
    card["reply_markup"] = sent[0].body["reply_markup"].clone();
    w.dc_card(&approval).await;
    w.lease_becomes(&lease, "expired").await;
    let closed = w.tg_card_showing(&approval, "Outcome: ⌛ expired").await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let msg = w.dc_card_showing(&approval, "Outcome: ⌛ expired").await;
    assert_eq!(msg["components"], json!([]));
    // A late tap is told so, and changes nothing.
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let answer = w.answer(&qid).await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already expired"),
        "{answer}"
    );
    assert_eq!(w.lease(&lease).await["state"], "expired");

    // A pending request withdrawn by revoking its lease closes its cards as well.
    let (lease, approval) = w.pending("/production/db", "never mind").await;
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    let (s, b) =
        w.d.call(
            Method::DELETE,
            &format!("/v1/leases/{lease}"),
            Some(&w.agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    w.tg_card_showing(&approval, "Outcome: ⌛ expired by lease revocation")
        .await;
    let closed =
        w.tg.message(MAIN_CHAT, card["message_id"].as_i64().unwrap())
            .unwrap();
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    w.dc_card_showing(&approval, "Outcome: ⌛ expired by lease revocation")
        .await;
    let closed =
        w.dc.message(&DC_CHANNEL.to_string(), msg["id"].as_str().unwrap())
            .unwrap();
    assert_eq!(closed["components"], json!([]));
    w.d.stop().await;
}

#[tokio::test]
async fn readiness_reports_each_channel_check() {
    let good = world(Setup::default()).await;
    let (s, r) = good.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["channel:telegram"], "ok");
    assert_eq!(r["checks"]["channel:discord"], "ok");
    assert_eq!(good.tg.calls_to("getMe").len(), 1);

    // A chat that refuses the card is reported, and stays reported when the approval
    // closes (there is no copy there to edit, which says nothing about the chat).
    good.tg
        .fail_next("sendMessage", 1, 400, "Bad Request: chat not found", None);
    let (lease, approval) = good.pending("/production/db", "lost").await;
    let target = format!("channel:telegram:{MAIN_CHAT}");
    good.readyz_shows(&target, |v| v.contains("chat not found"))
        .await;
    let msg = good.dc_card(&approval).await;
    let (_, no) = dc_buttons(&msg);
    good.interact(&click(BOB_DC, "bob", &msg, &no), Some(&discord_key()))
        .await;
    good.lease_becomes(&lease, "denied").await;
    good.dc_card_showing(&approval, "denied by bob").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, r) = good.d.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(
        r["checks"][&target],
        "channel misconfigured: Telegram: Bad Request: chat not found"
    );
    good.d.stop().await;

    let bad = world(Setup {
        tg_token: BAD_TG_TOKEN.into(),
        dc_token: BAD_DC_TOKEN.into(),
        ..Setup::default()
    })
    .await;
    let until = Instant::now() + WAIT;
    let r = loop {
        let (s, r) = bad.d.call(Method::GET, "/readyz", None, None).await;
        let checked = ["channel:telegram", "channel:discord"]
            .iter()
            .all(|c| r["checks"][c].as_str().is_some_and(|v| v != "starting"));
        if checked {
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{r}");
            break r;
        }
        assert!(Instant::now() < until, "never checked: {r}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(r["status"], "not_ready");
    assert_eq!(
        r["checks"]["channel:telegram"],
        "channel misconfigured: the Telegram bot token was refused"
    );
    assert_eq!(
        r["checks"]["channel:discord"],
        "channel misconfigured: the Discord bot token was refused"
    );
    assert_eq!(r["checks"]["store"], "ok");
    let me = bad.tg.calls_to("getMe");
    assert!(!me.is_empty() && me.iter().all(|c| !c.token_ok && c.status == 401));
    // The API itself still works, and no token shows anywhere.
    let (_, approval) = bad.pending("/production/db", "no channel").await;
    let (s, _) = bad.d.get(&format!("/v1/approvals/{approval}")).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    bad.assert_no_tokens().await;
    bad.d.stop().await;
}
