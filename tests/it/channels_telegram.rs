//! Telegram approvals end to end: a card reaches each routed chat once, a tap arriving by long
//! polling approves and wakes the agent's long-poll, the card is edited with the outcome,
//! /whoami and /pending answer in the chat, and webhook mode checks its secret token, counts a
//! re-delivered update once and picks the approver entry that may decide the path.

use std::time::{Duration, Instant};

use bots::fake::telegram::tap_update;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::channel_approvers::tg_buttons;
use crate::channel_world::{
    ALICE_TG, BOB_TG, CAROL_TG, MAIN_CHAT, STAGING_CHAT, Setup, WAIT, WEBHOOK_SECRET, WEBHOOK_URL,
    eventually, long_poll, world,
};

#[tokio::test]
async fn telegram_polling_tap_approves_wakes_the_agent_and_closes_the_card() {
    let w = world(Setup {
        discord: false,
        ..Setup::default()
    })
    .await;
    let (lease, approval) = w.pending("/production/db", "nightly deploy").await;

    // The card reaches the routed chat once (two routes name it), and no other chat.
    let card = w.tg_card(&approval).await;
    assert_eq!(card["chat"]["id"], MAIN_CHAT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends = w.tg_sends(&approval);
    assert_eq!(sends.len(), 1, "one copy per chat: {sends:?}");
    assert_eq!(sends[0].body["chat_id"], MAIN_CHAT);
    let text = card["text"].as_str().unwrap();
    for line in [
        "🔐 Approval needed",
        "Who: agent-1 (tier 1)",
        "What: read production/db (critical)",
        "Why: nightly deploy",
        "Votes: 0/1",
    ] {
        assert!(text.contains(line), "{line:?} missing from {text}");
    }
    let (yes, no) = tg_buttons(&card);
    for (data, decision) in [(&yes, bots::Decision::Approve), (&no, bots::Decision::Deny)] {
        assert!(data.len() <= 64, "{data}");
        assert_eq!(
            bots::callback::decode(&w.cb_key, data).unwrap(),
            (approval.clone(), decision)
        );
    }

    // The agent long-polls; Alice taps Approve; the poll wakes at once.
    let poll = long_poll(&w, &lease);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tapped = Instant::now();
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let (elapsed, body) = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(body["state"], "active", "{body}");
    assert!(elapsed >= Duration::from_millis(300), "the poll waited");
    assert!(
        tapped.elapsed() < Duration::from_secs(5),
        "woke within seconds of the tap (long-poll hold included)"
    );
    let answer = w.answer(&qid).await;
    assert_eq!(answer["show_alert"], false, "{answer}");
    assert!(
        answer["text"].as_str().unwrap().contains("approved"),
        "{answer}"
    );

    // The card is edited: outcome shown, no keyboard.
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by alice at")
        .await;
    assert!(
        closed["text"]
            .as_str()
            .unwrap()
            .starts_with("🔐 Approval closed")
    );
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let edit =
        w.tg.bodies("editMessageText")
            .into_iter()
            .rfind(|b| b["text"].as_str().unwrap().contains(&approval))
            .unwrap();
    assert_eq!(edit["chat_id"], MAIN_CHAT);
    assert_eq!(edit["message_id"], card["message_id"]);
    assert_eq!(edit["reply_markup"]["inline_keyboard"], json!([]));

    // The update is confirmed (the next getUpdates asks for a higher offset).
    eventually("the update to be confirmed", || {
        (w.tg.unconfirmed() == 0).then_some(())
    })
    .await;
    let voted = w.events("approval.voted").await;
    assert_eq!(voted.len(), 1);
    assert_eq!(voted[0]["details"]["via"], "telegram");
    assert_eq!(voted[0]["details"]["approver"], "alice");

    // A staging card goes to the staging chat and the main chat.
    let (_, staging) = w.pending("/staging/db", "").await;
    eventually("both staging copies", || {
        let mut chats: Vec<i64> = w
            .tg_cards(&staging)
            .iter()
            .map(|m| m["chat"]["id"].as_i64().unwrap())
            .collect();
        chats.sort();
        (chats == [STAGING_CHAT, MAIN_CHAT]).then_some(())
    })
    .await;

    // /whoami and /pending answer in the chat; a command naming another bot is not ours.
    w.command(ALICE_TG, "/whoami@other_bot");
    w.command(ALICE_TG, "/pending");
    let reply = eventually("the /pending reply", || {
        w.tg.bodies("sendMessage")
            .into_iter()
            .find(|b| b["text"].as_str().unwrap().starts_with("Pending approvals"))
    })
    .await;
    assert!(
        reply["text"].as_str().unwrap().contains(&staging),
        "{reply}"
    );
    w.command(BOB_TG, "/whoami@Latchkey_Bot");
    let whoami = |b: &Value| {
        b["text"]
            .as_str()
            .unwrap()
            .starts_with("Your Telegram user id")
    };
    let reply = eventually("the /whoami reply", || {
        w.tg.bodies("sendMessage").into_iter().find(whoami)
    })
    .await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains(&BOB_TG.to_string()),
        "{reply}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies =
        w.tg.bodies("sendMessage")
            .into_iter()
            .filter(whoami)
            .count();
    assert_eq!(replies, 1, "/whoami@other_bot is for another bot");
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn telegram_webhook_mode_checks_the_secret_token() {
    let w = world(Setup {
        discord: false,
        webhook: true,
        ..Setup::default()
    })
    .await;
    let set = eventually("setWebhook", || {
        w.tg.bodies("setWebhook").into_iter().next()
    })
    .await;
    assert_eq!(set["url"], WEBHOOK_URL);
    assert_eq!(set["secret_token"], WEBHOOK_SECRET);

    let (lease, approval) = w.pending("/production/db", "webhook").await;
    let card = w.tg_card(&approval).await;
    let (yes, _) = tg_buttons(&card);
    let update = tap_update(1, "cbq-hook", ALICE_TG, "alice", &card, &yes).to_string();

    // Wrong, empty or missing secret: 401 and nothing happens.
    for secret in [None, Some(""), Some("wrong"), Some(&WEBHOOK_SECRET[1..])] {
        assert_eq!(
            w.webhook(&update, secret).await,
            StatusCode::UNAUTHORIZED,
            "{secret:?}"
        );
    }
    assert_eq!(
        w.webhook("not json", Some(WEBHOOK_SECRET)).await,
        StatusCode::BAD_REQUEST
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.tg.bodies("answerCallbackQuery").is_empty());
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());
    // No poller runs in webhook mode.
    assert!(w.tg.calls_to("getUpdates").is_empty());

    // The right secret: the tap counts.
    assert_eq!(
        w.webhook(&update, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    w.lease_becomes(&lease, "active").await;
    let answer = w.answer("cbq-hook").await;
    assert!(
        answer["text"].as_str().unwrap().contains("approved"),
        "{answer}"
    );
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by alice")
        .await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");

    // Telegram re-delivers an update it is unsure about: it counts once.
    let again = tap_update(1, "cbq-hook-2", ALICE_TG, "alice", &card, &yes).to_string();
    assert_eq!(
        w.webhook(&again, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    let answer = w.answer("cbq-hook-2").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already approved by alice at"),
        "{answer}"
    );
    assert_eq!(w.events("approval.voted").await.len(), 1);

    // A person listed under two approver names: the entry that may decide the path counts.
    let (lease, approval) = w.pending("/production/db", "carol's turn").await;
    let card = w.tg_card(&approval).await;
    let (yes, _) = tg_buttons(&card);
    let update = tap_update(2, "cbq-carol", CAROL_TG, "carol", &card, &yes).to_string();
    assert_eq!(
        w.webhook(&update, Some(WEBHOOK_SECRET)).await,
        StatusCode::OK
    );
    let answer = w.answer("cbq-carol").await;
    assert_eq!(answer["show_alert"], false, "{answer}");
    w.lease_becomes(&lease, "active").await;
    w.tg_card_showing(&approval, "Outcome: ✅ approved by carol-prod")
        .await;
    assert!(w.tg.calls_to("getUpdates").is_empty());
    w.assert_no_tokens().await;
    w.d.stop().await;
}
