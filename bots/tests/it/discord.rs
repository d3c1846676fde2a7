//! The Discord channel against a fake Discord REST API: posting, editing, errors.

use bots::discord::{DiscordChannel, DiscordConfig};
use bots::{
    ApprovalChannel, Card, ChannelError, Decision, MessageRef, Outcome, OutcomeKind, callback,
};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use bots::fake::discord::{BOT_NAME, Failure, FakeDiscord, TOKEN};

pub const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const CHANNELS: [u64; 2] = [1_200_000_000_000_000_100, 1_200_000_000_000_000_200];

/// The application's signing key, standing in for Discord's.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn config(api_url: &str) -> DiscordConfig {
    DiscordConfig {
        bot_token: TOKEN.into(),
        application_id: 1_100_000_000_000_000_000,
        public_key_hex: hex(signing_key().verifying_key().as_bytes()),
        api_url: Some(api_url.into()),
        channels: CHANNELS.to_vec(),
        callback_key: KEY.to_vec(),
    }
}

/// The Telegram tests' card with an ordinary reason and a quorum of one.
pub fn card() -> Card {
    Card {
        reason: "nightly release".into(),
        votes_needed: 1,
        ..crate::telegram::card()
    }
}

async fn setup() -> (FakeDiscord, DiscordChannel) {
    let fake = FakeDiscord::start(&CHANNELS).await;
    let channel = DiscordChannel::new(config(&fake.url)).unwrap();
    (fake, channel)
}

fn buttons(body: &Value) -> &Vec<Value> {
    let rows = body["components"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one action row: {body}");
    assert_eq!(rows[0]["type"], 1);
    rows[0]["components"].as_array().unwrap()
}

#[tokio::test]
async fn post_sends_the_card_with_approve_and_deny_to_every_channel() {
    let (fake, channel) = setup().await;
    let card = card();
    let refs = channel.post(&card).await.unwrap();
    assert_eq!(channel.name(), "discord");
    assert_eq!(refs.len(), 2);
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    for ((call, r), channel_id) in calls.iter().zip(&refs).zip(CHANNELS) {
        assert_eq!(call.method, "POST");
        assert_eq!(
            call.path,
            format!("/api/v10/channels/{channel_id}/messages")
        );
        assert_eq!(
            call.authorization.as_deref(),
            Some(&*format!("Bot {TOKEN}"))
        );
        assert_eq!(r.chat_id, channel_id.to_string());
        let stored = fake.message(&r.chat_id, &r.message_id).unwrap();
        assert_eq!(stored["content"], call.body["content"]);

        let buttons = buttons(&call.body);
        assert_eq!(buttons.len(), 2);
        let expected = [
            ("Approve", 3, Decision::Approve),
            ("Deny", 4, Decision::Deny),
        ];
        for (button, (label, style, decision)) in buttons.iter().zip(expected) {
            assert_eq!(button["type"], 2);
            assert_eq!(button["label"], label);
            assert_eq!(button["style"], style);
            let custom_id = button["custom_id"].as_str().unwrap();
            assert_eq!(
                callback::decode(KEY, custom_id).unwrap(),
                (card.approval_id.clone(), decision)
            );
        }
        let content = call.body["content"].as_str().unwrap();
        assert!(
            content.contains("What: read production/openai/api-key"),
            "{content}"
        );
        assert!(content.contains("Why: nightly release"), "{content}");
    }
}

#[tokio::test]
async fn a_hostile_reason_cannot_ping_format_or_link() {
    let (fake, channel) = setup().await;
    let mut card = card();
    card.reason = "@everyone **x** [a](http://evil)".into();
    channel.post(&card).await.unwrap();
    for call in fake.calls() {
        let content = call.body["content"].as_str().unwrap();
        assert!(!content.contains("@everyone"), "{content}");
        assert!(
            content.contains("@\u{200B}everyone \\*\\*x\\*\\* \\[a\\](http://evil)"),
            "{content}"
        );
        assert_eq!(call.body["allowed_mentions"], json!({ "parse": [] }));
    }
}

#[tokio::test]
async fn update_edits_every_copy_and_a_decided_card_loses_its_buttons() {
    let (fake, channel) = setup().await;
    let mut card = card();
    card.votes_needed = 2;
    let refs = channel.post(&card).await.unwrap();

    card.votes = 1;
    channel.update(&card, &refs).await.unwrap();
    card.outcome = Some(Outcome {
        kind: OutcomeKind::Approved,
        decided_by: Some("ada".into()),
        decided_at: "2026-05-01T12:03:00Z".into(),
    });
    card.votes = 2;
    channel.update(&card, &refs).await.unwrap();

    let calls = fake.calls();
    assert_eq!(calls.len(), 6);
    let (first_edit, last_edit) = (&calls[2..4], &calls[4..6]);
    for (call, r) in first_edit.iter().zip(&refs) {
        assert_eq!(call.method, "PATCH");
        assert_eq!(
            call.path,
            format!("/api/v10/channels/{}/messages/{}", r.chat_id, r.message_id)
        );
        assert_eq!(buttons(&call.body).len(), 2, "still pending: buttons stay");
        assert!(
            call.body["content"]
                .as_str()
                .unwrap()
                .contains("Votes: 1/2")
        );
    }
    for (call, r) in last_edit.iter().zip(&refs) {
        assert_eq!(call.body["components"], json!([]));
        assert_eq!(call.body["allowed_mentions"], json!({ "parse": [] }));
        let content = call.body["content"].as_str().unwrap();
        assert!(
            content.contains("Outcome: ✅ approved by ada at 2026-05-01T12:03:00Z"),
            "{content}"
        );
        let stored = fake.message(&r.chat_id, &r.message_id).unwrap();
        assert_eq!(stored["components"], json!([]));
    }
}

#[tokio::test]
async fn rate_limit_and_server_errors_are_retryable() {
    let (fake, channel) = setup().await;
    fake.fail_next("*", Failure::RateLimited, 1);
    let err = channel.post(&card()).await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after_secs: 1
        }
    );
    assert!(err.is_retryable());

    fake.fail_next("*", Failure::ServerError, 1);
    let err = channel.post(&card()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Unavailable(_)), "{err:?}");

    // The failures are used up: the next post goes through.
    let refs = channel.post(&card()).await.unwrap();
    assert_eq!(refs.len(), 2);

    // An edit stops at a retryable error instead of hammering on.
    fake.fail_next("*", Failure::RateLimited, 2);
    let before = fake.calls().len();
    let err = channel.update(&card(), &refs).await.unwrap_err();
    assert!(matches!(err, ChannelError::RateLimited { .. }), "{err:?}");
    assert_eq!(fake.calls().len(), before + 1);
}

#[tokio::test]
async fn check_returns_the_bot_name() {
    let (fake, channel) = setup().await;
    assert_eq!(channel.check().await.unwrap(), BOT_NAME);
    let calls = fake.calls();
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", "/api/v10/users/@me")
    );
}

#[tokio::test]
async fn a_refused_token_is_a_misconfiguration() {
    let fake = FakeDiscord::start(&CHANNELS).await;
    let channel = DiscordChannel::new(DiscordConfig {
        bot_token: "another-token".into(),
        ..config(&fake.url)
    })
    .unwrap();
    let refused = ChannelError::Misconfigured("the Discord bot token was refused".into());
    assert_eq!(channel.check().await.unwrap_err(), refused);
    assert_eq!(channel.post(&card()).await.unwrap_err(), refused);
    assert!(!refused.is_retryable());
}

#[tokio::test]
async fn unknown_channels_and_deleted_messages() {
    let fake = FakeDiscord::start(&CHANNELS[..1]).await;
    let channel = DiscordChannel::new(config(&fake.url)).unwrap();
    let err = channel.post(&card()).await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Misconfigured(m) if m.contains("Unknown Channel")),
        "{err:?}"
    );

    // A deleted copy does not stop the others from being edited.
    let (fake, channel) = setup().await;
    let refs = channel.post(&card()).await.unwrap();
    let gone = MessageRef {
        chat_id: refs[0].chat_id.clone(),
        message_id: "999".into(),
    };
    let err = channel
        .update(&card(), &[gone, refs[1].clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected(m) if m.contains("Unknown Message")),
        "{err:?}"
    );
    assert_eq!(
        fake.calls().last().unwrap().path,
        format!(
            "/api/v10/channels/{}/messages/{}",
            refs[1].chat_id, refs[1].message_id
        )
    );

    let bogus = MessageRef {
        chat_id: "0".into(),
        message_id: "x".into(),
    };
    let err = channel.update(&card(), &[bogus]).await.unwrap_err();
    assert!(matches!(err, ChannelError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let channel = DiscordChannel::new(config(&url)).unwrap();
    let err = channel.post(&card()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Unavailable(_)), "{err:?}");
    let err = channel.check().await.unwrap_err();
    assert!(matches!(err, ChannelError::Unavailable(_)), "{err:?}");
}

#[test]
fn bad_configuration_is_refused_and_secrets_never_printed() {
    let base = config("http://127.0.0.1:9");
    let shown = format!("{base:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    let channel = DiscordChannel::new(base.clone()).unwrap();
    assert!(!format!("{channel:?}").contains(TOKEN));
    assert_eq!(channel.application_id(), base.application_id);

    type Change = fn(&mut DiscordConfig);
    let cases: [(&str, Change); 8] = [
        ("public key not hex", |c| c.public_key_hex = "zz".repeat(32)),
        ("public key too short", |c| c.public_key_hex.truncate(62)),
        ("short callback key", |c| c.callback_key.truncate(15)),
        ("no channels", |c| c.channels.clear()),
        ("channel 0", |c| c.channels.push(0)),
        ("application 0", |c| c.application_id = 0),
        ("empty token", |c| c.bot_token = " ".into()),
        ("api url scheme", |c| c.api_url = Some("127.0.0.1:9".into())),
    ];
    for (what, change) in cases {
        let mut cfg = base.clone();
        change(&mut cfg);
        let err = DiscordChannel::new(cfg).unwrap_err();
        assert!(
            matches!(err, ChannelError::Misconfigured(_)),
            "{what}: {err:?}"
        );
    }
}
