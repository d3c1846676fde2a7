//! Discord approvals end to end: PINGs and button clicks are accepted only when signed with
//! the configured key over a fresh timestamp; a genuine click denies, answers with the
//! updated card, and the posted message is edited to show the outcome.

use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::json;

use crate::channel_approvers::{click, dc_buttons};
use crate::channel_world::{ALICE_DC, APP_ID, BOB_DC, DC_CHANNEL, Setup, discord_key, hex, world};

#[tokio::test]
async fn discord_signed_click_denies_and_updates_the_card() {
    let w = world(Setup {
        telegram: false,
        ..Setup::default()
    })
    .await;
    // PING: signed → PONG; unsigned, wrongly signed or altered → 401.
    let ping = json!({"type": 1, "id": "1300000000000000001", "application_id": APP_ID.to_string(),
                      "token": "ping-token", "version": 1})
    .to_string();
    let (s, b) = w.interact(&ping, Some(&discord_key())).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"type": 1})));
    let other = SigningKey::from_bytes(&[8u8; 32]);
    assert_eq!(w.interact(&ping, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.interact(&ping, Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (lease, approval) = w.pending("/production/db", "hotfix").await;
    let msg = w.dc_card(&approval).await;
    let post =
        w.dc.calls_with("POST")
            .into_iter()
            .find(|c| c.status == 200)
            .unwrap();
    assert_eq!(
        post.path,
        format!("/api/v10/channels/{DC_CHANNEL}/messages")
    );
    assert_eq!(post.body["allowed_mentions"], json!({"parse": []}));
    let (yes, no) = dc_buttons(&msg);
    assert_eq!(
        bots::callback::decode(&w.cb_key, &yes).unwrap(),
        (approval.clone(), bots::Decision::Approve)
    );
    assert_eq!(
        bots::callback::decode(&w.cb_key, &no).unwrap(),
        (approval.clone(), bots::Decision::Deny)
    );

    // Bob clicks Deny; unsigned, badly signed or altered clicks are refused first.
    let deny = click(BOB_DC, "bob", &msg, &no);
    assert_eq!(w.interact(&deny, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.interact(&deny, Some(&other)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let timestamp = "1777636800";
    let signed = [timestamp.as_bytes(), deny.as_bytes()].concat();
    let sig = hex(&discord_key().sign(&signed).to_bytes());
    let altered = deny.replace(BOB_DC, ALICE_DC);
    let r = w
        .http
        .post(format!("{}/bots/discord/interactions", w.d.base))
        .header("X-Signature-Ed25519", &sig)
        .header("X-Signature-Timestamp", timestamp)
        .body(altered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A genuine click captured and replayed an hour later is refused too.
    let hour_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let (s, _) = w.interact_at(&deny, Some(&discord_key()), hour_ago).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a stale interaction");
    assert_eq!(w.lease(&lease).await["state"], "pending");
    assert!(w.events("approval.voted").await.is_empty());

    let (s, b) = w.interact(&deny, Some(&discord_key())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["type"], 7, "UPDATE_MESSAGE: {b}");
    assert_eq!(b["data"]["components"], json!([]), "no buttons: {b}");
    assert_eq!(b["data"]["allowed_mentions"], json!({"parse": []}));
    let content = b["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("Outcome: ❌ denied by bob at"),
        "{content}"
    );
    assert_eq!(w.lease(&lease).await["state"], "denied");
    assert_eq!(w.events("approval.denied").await.len(), 1);
    let voted = w.events("approval.voted").await;
    assert_eq!(voted[0]["details"]["via"], "discord");
    assert_eq!(voted[0]["details"]["decision"], "deny");

    // The posted message itself is edited too (every copy shows the outcome).
    let edited = w.dc_card_showing(&approval, "❌ denied by bob").await;
    assert_eq!(edited["components"], json!([]));
    let patch = w.dc.calls_with("PATCH");
    assert!(
        patch.iter().any(|c| c.path
            == format!(
                "/api/v10/channels/{DC_CHANNEL}/messages/{}",
                msg["id"].as_str().unwrap()
            )),
        "{patch:?}"
    );
    w.assert_no_tokens().await;
    w.d.stop().await;
}
