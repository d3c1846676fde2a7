//! The Telegram channel against a fake Bot API: cards, buttons, edits, errors, updates.

use bots::telegram::{TelegramChannel, TelegramConfig};
use bots::{ApprovalChannel, Card, ChannelError, Decision, MessageRef, Outcome, OutcomeKind};
use serde_json::{Value, json};

use bots::fake::telegram::{BOT_NAME, FakeTelegram, TOKEN};

pub(crate) const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
pub(crate) const ID: &str = "01HZX3K4M5N6P7Q8R9S0T1V2W3";
pub(crate) const GROUP: i64 = -1_001_234_567_890;
pub(crate) const PRIVATE: i64 = 1_111_111;
const EVIL: &str = "*bold* [x](http://evil) <b>";

pub(crate) fn channel_with(url: &str, token: &str, chats: Vec<i64>) -> TelegramChannel {
    TelegramChannel::new(TelegramConfig {
        token: token.into(),
        api_url: Some(url.to_owned()),
        chats,
        callback_key: KEY.to_vec().into(),
    })
    .unwrap()
}

pub(crate) fn channel(fake: &FakeTelegram) -> TelegramChannel {
    channel_with(&fake.url, TOKEN, vec![GROUP, PRIVATE])
}

pub(crate) fn card() -> Card {
    Card {
        approval_id: ID.into(),
        requester: "deploy-bot".into(),
        trust_tier: 2,
        secret_path: "production/openai/api-key".into(),
        sensitivity: "sensitive".into(),
        action: "read".into(),
        ttl_seconds: 900,
        uses: 1,
        keys: None,
        reason: EVIL.into(),
        requested_at: "2026-05-01T12:00:00Z".into(),
        deadline: "2026-05-01T12:15:00Z".into(),
        votes: 0,
        votes_needed: 2,
        outcome: None,
    }
}

fn decided() -> Card {
    Card {
        votes: 2,
        outcome: Some(Outcome {
            kind: OutcomeKind::Approved,
            decided_by: Some("@alice".into()),
            decided_at: "2026-05-01T12:03:00Z".into(),
        }),
        ..card()
    }
}

/// The callback data of every button in a request body, decoded with [`KEY`].
fn decoded_buttons(body: &Value) -> Vec<(String, (String, Decision))> {
    let rows = body["reply_markup"]["inline_keyboard"].as_array().unwrap();
    rows.iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|b| {
            let data = b["callback_data"].as_str().unwrap();
            assert!(data.len() <= 64, "{data}");
            let label = b["text"].as_str().unwrap().to_owned();
            (label, bots::callback::decode(KEY, data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn check_reports_username_or_refused_token() {
    let fake = FakeTelegram::start().await;
    assert_eq!(channel(&fake).check().await.unwrap(), BOT_NAME);
    let wrong = channel_with(&fake.url, "999:wrong-token", vec![GROUP]);
    let err = wrong.check().await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::Misconfigured("the Telegram bot token was refused".into())
    );
    assert!(!err.to_string().contains("wrong-token"));
    // A trailing slash on the API URL is fine.
    let slash = channel_with(&format!("{}/", fake.url), TOKEN, vec![]);
    assert_eq!(slash.check().await.unwrap(), BOT_NAME);
}

#[tokio::test]
async fn post_sends_plain_text_with_two_signed_buttons() {
    let fake = FakeTelegram::start().await;
    let refs = channel(&fake).post(&card()).await.unwrap();
    assert_eq!(
        refs,
        [
            MessageRef {
                chat_id: GROUP.to_string(),
                message_id: "101".into()
            },
            MessageRef {
                chat_id: PRIVATE.to_string(),
                message_id: "102".into()
            },
        ]
    );
    let sent = fake.bodies("sendMessage");
    assert_eq!(sent.len(), 2);
    for (body, chat) in sent.iter().zip([GROUP, PRIVATE]) {
        assert_eq!(body["chat_id"], json!(chat));
        // Plain text: no parse mode, so the reason is shown literally.
        assert!(body.get("parse_mode").is_none(), "{body}");
        let text = body["text"].as_str().unwrap();
        assert!(text.contains(&format!("Why: {EVIL}\n")), "{text}");
        assert!(text.contains("Votes: 0/2"), "{text}");
        assert_eq!(body["link_preview_options"]["is_disabled"], json!(true));
        assert_eq!(
            decoded_buttons(body),
            [
                ("✅ Approve".to_owned(), (ID.to_owned(), Decision::Approve)),
                ("❌ Deny".to_owned(), (ID.to_owned(), Decision::Deny)),
            ]
        );
    }
}

#[tokio::test]
async fn update_edits_every_copy_and_outcome_removes_buttons() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    let refs = tg.post(&card()).await.unwrap();

    let voted = Card { votes: 1, ..card() };
    tg.update(&voted, &refs).await.unwrap();
    tg.update(&decided(), &refs).await.unwrap();

    let edits = fake.bodies("editMessageText");
    assert_eq!(edits.len(), 4);
    for (body, r) in edits[..2].iter().zip(&refs) {
        assert_eq!(body["chat_id"].to_string(), r.chat_id);
        assert_eq!(body["message_id"].to_string(), r.message_id);
        assert!(body["text"].as_str().unwrap().contains("Votes: 1/2"));
        assert_eq!(decoded_buttons(body).len(), 2);
    }
    for body in &edits[2..] {
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("Outcome: ✅ approved by @alice at 2026-05-01T12:03:00Z"),
            "{text}"
        );
        assert!(text.starts_with("🔐 Approval closed"), "{text}");
        assert_eq!(body["reply_markup"], json!({"inline_keyboard": []}));
    }
}

#[tokio::test]
async fn unchanged_message_counts_as_updated() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    let refs = tg.post(&card()).await.unwrap();
    let description = "Bad Request: message is not modified: specified new message content and \
        reply markup are exactly the same as a current content and reply markup of the message";
    fake.fail_next("*", 2, 400, description, None);
    assert_eq!(tg.update(&card(), &refs).await, Ok(()));
    fake.fail_next("*", 1, 400, "Bad Request: message to edit not found", None);
    let err = tg.update(&card(), &refs[..1]).await.unwrap_err();
    assert!(matches!(err, ChannelError::Rejected(_)), "{err:?}");
    let bad_ref = MessageRef {
        chat_id: "abc".into(),
        message_id: "1".into(),
    };
    let err = tg.update(&card(), &[bad_ref]).await.unwrap_err();
    assert!(matches!(err, ChannelError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn rate_limit_maps_to_retry_after() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    fake.rate_limit_next("*", 1);
    let limited = ChannelError::RateLimited {
        retry_after_secs: 1,
    };
    assert_eq!(tg.post_to(GROUP, &card()).await, Err(limited.clone()));
    let refs = tg.post(&card()).await.unwrap();
    // An update stops at the first rate limit instead of hammering on.
    fake.rate_limit_next("*", 1);
    assert_eq!(tg.update(&decided(), &refs).await, Err(limited));
    assert_eq!(fake.calls_to("editMessageText").len(), 1);
}

#[tokio::test]
async fn unknown_chat_and_forbidden_are_misconfigured() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    fake.fail_next("*", 1, 400, "Bad Request: chat not found", None);
    let err = tg.post_to(GROUP, &card()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Misconfigured(_)), "{err:?}");
    fake.fail_next(
        "*",
        1,
        403,
        "Forbidden: bot was kicked from the supergroup chat",
        None,
    );
    let err = tg.post_to(GROUP, &card()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Misconfigured(_)), "{err:?}");
    // One chat failing does not lose the copy that was posted.
    fake.fail_next("*", 1, 403, "Forbidden: bot was blocked by the user", None);
    let refs = tg.post(&card()).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].chat_id, PRIVATE.to_string());
    // No chat at all is an error.
    fake.fail_next("*", 2, 400, "Bad Request: chat not found", None);
    assert!(matches!(
        tg.post(&card()).await,
        Err(ChannelError::Misconfigured(_))
    ));
}

/// teloxide waits 10 s after any 5xx before returning, so this test takes that long.
#[tokio::test]
async fn server_errors_and_unreachable_api_are_unavailable() {
    let fake = FakeTelegram::start().await;
    fake.server_error_next("*", 1);
    let err = channel(&fake).post_to(GROUP, &card()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Unavailable(_)), "{err:?}");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = channel_with(&url, TOKEN, vec![GROUP])
        .check()
        .await
        .unwrap_err();
    assert!(matches!(&err, ChannelError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("LkTgSecret"), "{err}");
}
