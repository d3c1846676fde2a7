//! Telegram updates: taps and commands by long polling and webhook, answers, webhook set-up.

use bots::ChannelError;
use bots::Decision;
use bots::telegram::{
    Command, Incoming, next_offset, parse_update, parse_update_json, webhook_secret_ok,
};
use serde_json::{Value, json};

use crate::telegram::{GROUP, ID, KEY, channel};
use bots::fake::telegram::{BOT_NAME, FakeTelegram};

/// A tap on the Approve button, exactly as Telegram delivers it.
fn tap_update(update_id: u32) -> Value {
    let data = bots::callback::encode(KEY, ID, Decision::Approve).unwrap();
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": {"id": 777_000_111, "is_bot": false, "first_name": "Alice",
                     "last_name": "Admin", "username": "alice", "language_code": "en"},
            "message": {
                "message_id": 101,
                "from": {"id": 42, "is_bot": true, "first_name": "Latchkey", "username": BOT_NAME},
                "chat": {"id": GROUP, "title": "Approvers", "type": "supergroup"},
                "date": 1_767_225_600,
                "text": "🔐 Approval needed",
                "reply_markup": {"inline_keyboard": [[
                    {"text": "✅ Approve", "callback_data": data},
                    {"text": "❌ Deny", "callback_data": "a:x:n:y"}
                ]]}
            },
            "chat_instance": "-8923743982734",
            "data": data
        }
    })
}

fn command_update(update_id: u32, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": 5,
            "from": {"id": 2222, "is_bot": false, "first_name": "Bob", "last_name": "Builder"},
            "chat": {"id": 2222, "first_name": "Bob", "type": "private"},
            "date": 1_767_225_600,
            "text": text,
            "entities": [{"offset": 0, "length": text.len(), "type": "bot_command"}]
        }
    })
}

#[tokio::test]
async fn taps_and_commands_arrive_by_long_polling() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    fake.push_update(tap_update(10_000));
    fake.push_update(command_update(10_001, "/whoami@latchkey_bot"));

    let updates = tg.get_updates(0, 0).await.unwrap();
    assert_eq!(updates.len(), 2);
    let offset = next_offset(&updates, 0);
    assert_eq!(offset, 10_002);
    let Some(Incoming::Tap {
        callback_query_id,
        user_id,
        user_name,
        data,
        chat_id,
        message_id,
    }) = parse_update(&updates[0])
    else {
        panic!("expected a tap: {:?}", updates[0]);
    };
    assert_eq!(callback_query_id, "4382bfdwdsb323b2d9");
    assert_eq!(user_id, 777_000_111);
    assert_eq!(user_name, "@alice");
    assert_eq!(chat_id, Some(GROUP));
    assert_eq!(message_id, Some(101));
    assert_eq!(
        bots::callback::decode(KEY, &data).unwrap(),
        (ID.to_owned(), Decision::Approve)
    );
    assert_eq!(
        parse_update(&updates[1]),
        Some(Incoming::Command {
            chat_id: 2222,
            user_id: 2222,
            user_name: "Bob Builder".into(),
            command: Command::Whoami,
            mention: Some(BOT_NAME.into()),
        })
    );

    // Delivered once; the next poll sends the new offset and gets nothing.
    assert!(tg.get_updates(offset, 0).await.unwrap().is_empty());
    assert_eq!(next_offset(&[], offset), offset);
    let polls = fake.bodies("getUpdates");
    assert_eq!(polls[0]["offset"], json!(0));
    assert_eq!(polls[1]["offset"], json!(10_002));
    assert_eq!(polls[0]["timeout"], json!(0));
    assert_eq!(
        polls[0]["allowed_updates"],
        json!(["message", "callback_query"])
    );
    // Long waits are capped below the client's own timeout.
    fake.push_update(command_update(10_002, "/pending"));
    assert_eq!(tg.get_updates(offset, 3_600).await.unwrap().len(), 1);
    assert_eq!(fake.bodies("getUpdates")[2]["timeout"], json!(50));
}

#[test]
fn webhook_bodies_parse_like_polled_updates() {
    let tap = serde_json::to_vec(&tap_update(1)).unwrap();
    assert!(matches!(
        parse_update_json(&tap),
        Ok(Some(Incoming::Tap {
            user_id: 777_000_111,
            ..
        }))
    ));
    let cmd = |text: &str| {
        let body = serde_json::to_vec(&command_update(2, text)).unwrap();
        match parse_update_json(&body).unwrap() {
            Some(Incoming::Command { command, .. }) => Some(command),
            _ => None,
        }
    };
    assert_eq!(cmd("/whoami"), Some(Command::Whoami));
    assert_eq!(cmd("/pending"), Some(Command::Pending));
    assert_eq!(cmd("/start"), Some(Command::Start));
    assert_eq!(cmd("/grant x"), Some(Command::Other("grant".into())));
    assert_eq!(cmd("hello"), None);

    // A tap without a sender or without data is dropped, not guessed at.
    let mut no_from = tap_update(3);
    no_from["callback_query"]
        .as_object_mut()
        .unwrap()
        .remove("from");
    let body = serde_json::to_vec(&no_from).unwrap();
    assert_eq!(parse_update_json(&body), Ok(None));
    let mut no_data = tap_update(4);
    no_data["callback_query"]
        .as_object_mut()
        .unwrap()
        .remove("data");
    let body = serde_json::to_vec(&no_data).unwrap();
    assert_eq!(parse_update_json(&body), Ok(None));

    assert!(matches!(
        parse_update_json(b"{not json"),
        Err(ChannelError::Rejected(_))
    ));
    assert!(matches!(
        parse_update_json(b"{}"),
        Err(ChannelError::Rejected(_))
    ));
}

#[tokio::test]
async fn answers_and_replies_respect_telegram_limits() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    tg.answer_tap("q1", &"é".repeat(500), true).await.unwrap();
    let answer = &fake.bodies("answerCallbackQuery")[0];
    assert_eq!(answer["callback_query_id"], json!("q1"));
    assert_eq!(answer["show_alert"], json!(true));
    assert_eq!(answer["text"].as_str().unwrap().chars().count(), 200);

    let r = tg.send_text(2222, &"x".repeat(5_000)).await.unwrap();
    assert_eq!(r.chat_id, "2222");
    let reply = &fake.bodies("sendMessage")[0];
    assert_eq!(reply["text"].as_str().unwrap().chars().count(), 4096);
    assert!(reply.get("parse_mode").is_none());
    assert!(reply.get("reply_markup").is_none());
}

#[tokio::test]
async fn webhooks_are_registered_with_a_secret() {
    let fake = FakeTelegram::start().await;
    let tg = channel(&fake);
    tg.set_webhook("https://latchkey.example.org/telegram", "s3cret_Token-1")
        .await
        .unwrap();
    let set = &fake.bodies("setWebhook")[0];
    assert_eq!(set["url"], json!("https://latchkey.example.org/telegram"));
    assert_eq!(set["secret_token"], json!("s3cret_Token-1"));
    assert_eq!(set["allowed_updates"], json!(["message", "callback_query"]));
    for (url, secret) in [("https://x.example/tg", "bad secret!"), ("not a url", "ok")] {
        let err = tg.set_webhook(url, secret).await.unwrap_err();
        assert!(matches!(err, ChannelError::Misconfigured(_)), "{err:?}");
    }
    assert_eq!(fake.bodies("setWebhook").len(), 1);
    tg.delete_webhook().await.unwrap();
    assert_eq!(fake.bodies("deleteWebhook").len(), 1);
}

#[test]
fn webhook_secret_is_checked() {
    assert!(webhook_secret_ok("s3cret_Token-1", Some("s3cret_Token-1")));
    assert!(!webhook_secret_ok("s3cret_Token-1", Some("s3cret_Token-2")));
    assert!(!webhook_secret_ok(
        "s3cret_Token-1",
        Some("s3cret_Token-1 ")
    ));
    assert!(!webhook_secret_ok("s3cret_Token-1", None));
    assert!(!webhook_secret_ok("", Some("")));
}
