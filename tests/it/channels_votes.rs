//! Votes cast on both platforms: a quorum of two reached across Telegram and Discord, and
//! the taps that must not count — non-approvers, forged callback data, double taps, and taps
//! after the decision (which close a card left stale by a failed edit).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bots::fake::telegram::tap_update;
use reqwest::StatusCode;
use serde_json::json;

use crate::channel_approvers::{click, dc_buttons, tg_buttons};
use crate::channel_world::{
    ALICE_DC, ALICE_TG, BOB_DC, BOB_TG, CAROL_TG, MALLORY_DC, MALLORY_TG, Setup, discord_key,
    eventually, world,
};

#[tokio::test]
async fn quorum_of_two_across_telegram_and_discord() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/quorum/key", "two people").await;
    let card = w.tg_card(&approval).await;
    let msg = w.dc_card(&approval).await;
    assert!(card["text"].as_str().unwrap().contains("Votes: 0/2"));

    // Alice approves in Telegram: counted, both cards show 1/2 and keep their buttons.
    let (yes, _) = tg_buttons(&card);
    let qid = w.tap(ALICE_TG, "alice", &card, &yes);
    let answer = w.answer(&qid).await;
    assert_eq!(answer["text"], "vote counted (1/2)");
    let card1 = w.tg_card_showing(&approval, "Votes: 1/2").await;
    assert!(card1.get("reply_markup").is_some(), "{card1}");
    let msg1 = w.dc_card_showing(&approval, "Votes: 1/2").await;
    assert_eq!(
        msg1["components"][0]["components"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(w.lease(&lease).await["state"], "pending");

    // Bob approves in Discord: quorum, both cards closed.
    let (dc_yes, _) = dc_buttons(&msg);
    let (s, b) = w
        .interact(&click(BOB_DC, "bob", &msg, &dc_yes), Some(&discord_key()))
        .await;
    assert_eq!((s, b["type"].as_u64()), (StatusCode::OK, Some(7)), "{b}");
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Outcome: ✅ approved by bob"),
        "{b}"
    );
    assert_eq!(w.lease(&lease).await["state"], "active");
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert!(closed["text"].as_str().unwrap().contains("Votes: 2/2"));
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let closed = w
        .dc_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert_eq!(closed["components"], json!([]));
    let voted = w.events("approval.voted").await;
    let mut via: Vec<&str> = voted
        .iter()
        .map(|e| e["details"]["via"].as_str().unwrap())
        .collect();
    via.sort();
    assert_eq!(via, ["discord", "telegram"]);
    w.assert_no_tokens().await;
    w.d.stop().await;
}

#[tokio::test]
async fn refusals_forgeries_double_taps_and_late_taps() {
    let w = world(Setup::default()).await;
    let (lease, approval) = w.pending("/quorum/key", "").await;
    let card = w.tg_card(&approval).await;
    let (yes, no) = tg_buttons(&card);

    // Mallory is nobody; Carol decides staging only: both refused with an alert, audited.
    for (user, name) in [(MALLORY_TG, "mallory"), (CAROL_TG, "carol")] {
        let qid = w.tap(user, name, &card, &yes);
        let answer = w.answer(&qid).await;
        assert_eq!(answer["show_alert"], true, "{answer}");
        assert!(
            answer["text"].as_str().unwrap().contains("not an approver"),
            "{answer}"
        );
    }
    let rejected = w.events("approval.vote_rejected").await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let mut ids: Vec<&str> = rejected
        .iter()
        .map(|e| e["actor_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["3333", "6666"]);
    assert!(rejected.iter().all(|e| e["actor_type"] == "telegram"));
    assert!(
        rejected
            .iter()
            .all(|e| e["details"]["approval_id"] == approval)
    );

    // Forged callback data (decision flipped, or another tag): refused, audited.
    let flipped = yes.replacen(":y:", ":n:", 1);
    let retagged = format!("{}AAAAAAAAAAA", &yes[..yes.len() - 11]);
    for data in [flipped, retagged, "a:../x:y:AAAAAAAAAAA".to_string()] {
        let qid = w.tap(ALICE_TG, "alice", &card, &data);
        let answer = w.answer(&qid).await;
        assert_eq!(answer["show_alert"], true, "{answer}");
        assert!(
            answer["text"].as_str().unwrap().contains("not valid"),
            "{answer}"
        );
    }
    assert_eq!(w.events("approval.vote_rejected").await.len(), 5);
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());

    // Discord: a non-approver and a forged button get an ephemeral refusal.
    let msg = w.dc_card(&approval).await;
    let (dc_yes, _) = dc_buttons(&msg);
    let (s, b) = w
        .interact(
            &click(MALLORY_DC, "mallory", &msg, &dc_yes),
            Some(&discord_key()),
        )
        .await;
    assert_eq!((s, b["type"].as_u64()), (StatusCode::OK, Some(4)), "{b}");
    assert_eq!(b["data"]["flags"], 64, "ephemeral: {b}");
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not an approver")
    );
    let forged = dc_yes.replacen(":y:", ":n:", 1);
    let (_, b) = w
        .interact(
            &click(ALICE_DC, "alice", &msg, &forged),
            Some(&discord_key()),
        )
        .await;
    assert_eq!(
        (b["type"].as_u64(), b["data"]["flags"].as_u64()),
        (Some(4), Some(64))
    );
    assert!(
        b["data"]["content"].as_str().unwrap().contains("not valid"),
        "{b}"
    );
    assert_eq!(w.events("approval.vote_rejected").await.len(), 7);

    // A double tap (two callback queries in one batch) counts once.
    let first = w.next_update.fetch_add(2, Ordering::SeqCst);
    w.tg.push_update(tap_update(first, "dbl-1", ALICE_TG, "alice", &card, &yes));
    w.tg.push_update(tap_update(
        first + 1,
        "dbl-2",
        ALICE_TG,
        "alice",
        &card,
        &yes,
    ));
    let mut texts = vec![
        w.answer("dbl-1").await["text"]
            .as_str()
            .unwrap()
            .to_string(),
        w.answer("dbl-2").await["text"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    texts.sort();
    assert_eq!(
        texts,
        ["vote counted (1/2)", "you already voted; it counts once"]
    );
    assert_eq!(w.events("approval.voted").await.len(), 1);

    // Bob decides; the edit of the Telegram card fails once, so that copy keeps its buttons.
    w.tg_card_showing(&approval, "Votes: 1/2").await;
    w.tg.fail_next(
        "editMessageText",
        1,
        400,
        "Bad Request: message can't be edited",
        None,
    );
    let qid = w.tap(BOB_TG, "bob", &card, &yes);
    assert!(
        w.answer(&qid).await["text"]
            .as_str()
            .unwrap()
            .starts_with("approved")
    );
    w.lease_becomes(&lease, "active").await;
    eventually("the failed edit", || {
        w.tg.calls_to("editMessageText")
            .iter()
            .any(|c| c.status == 400)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = w.tg_card(&approval).await;
    assert!(stale.get("reply_markup").is_some(), "still stale: {stale}");

    // A tap after the decision: "already approved by bob at …", and the tapped card closes.
    let qid = w.tap(ALICE_TG, "alice", &stale, &no);
    let answer = w.answer(&qid).await;
    assert_eq!(answer["show_alert"], true, "{answer}");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("already approved by bob at "),
        "{answer}"
    );
    let closed = w
        .tg_card_showing(&approval, "Outcome: ✅ approved by bob")
        .await;
    assert!(closed.get("reply_markup").is_none(), "{closed}");
    let (_, b) = w
        .interact(
            &click(ALICE_DC, "alice", &msg, &dc_yes),
            Some(&discord_key()),
        )
        .await;
    assert!(
        b["data"]["content"]
            .as_str()
            .unwrap()
            .contains("already approved by bob"),
        "{b}"
    );
    assert_eq!(w.lease(&lease).await["state"], "active");
    assert_eq!(w.events("approval.voted").await.len(), 2);
    w.assert_no_tokens().await;
    w.d.stop().await;
}
