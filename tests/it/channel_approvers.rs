//! What an approver sees and does on the fake platforms: an approval's cards as posted or
//! edited on Telegram and Discord, their buttons, taps delivered by getUpdates or the Telegram
//! webhook, chat commands, and Discord interactions signed as Discord signs them.

use std::sync::atomic::Ordering;

use bots::fake::telegram::{self as fake_telegram, tap_update};
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::channel_world::{APP_ID, DC_CHANNEL, MAIN_CHAT, World, eventually, hex};

/// Telegram: cards, taps, commands, callback answers, the webhook.
impl World {
    /// Every Telegram copy of an approval's card, as last sent or edited.
    pub(crate) fn tg_cards(&self, approval: &str) -> Vec<Value> {
        self.tg
            .messages()
            .into_iter()
            .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(approval)))
            .collect()
    }

    /// The (first) Telegram card of an approval, once posted.
    pub(crate) async fn tg_card(&self, approval: &str) -> Value {
        eventually("the Telegram card", || {
            self.tg_cards(approval).into_iter().next()
        })
        .await
    }

    /// The Telegram card once its text contains `text`.
    pub(crate) async fn tg_card_showing(&self, approval: &str, text: &str) -> Value {
        eventually(&format!("the Telegram card to show {text:?}"), || {
            self.tg_cards(approval)
                .into_iter()
                .find(|m| m["text"].as_str().unwrap().contains(text))
        })
        .await
    }

    /// sendMessage calls that carried an approval's card (failed ones included).
    pub(crate) fn tg_sends(&self, approval: &str) -> Vec<fake_telegram::Call> {
        self.tg
            .calls_to("sendMessage")
            .into_iter()
            .filter(|c| {
                c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(approval))
            })
            .collect()
    }

    /// Delivers a tap on `card`'s button by getUpdates; returns the callback query's id.
    pub(crate) fn tap(&self, user: i64, name: &str, card: &Value, data: &str) -> String {
        let id = self.next_update.fetch_add(1, Ordering::SeqCst);
        let qid = format!("cbq-{id}");
        self.tg
            .push_update(tap_update(id, &qid, user, name, card, data));
        qid
    }

    /// Delivers a `/command` typed by `user` in the main chat by getUpdates.
    pub(crate) fn command(&self, user: i64, text: &str) {
        let id = self.next_update.fetch_add(1, Ordering::SeqCst);
        let name = text.split_whitespace().next().unwrap_or_default();
        self.tg.push_update(json!({
            "update_id": id,
            "message": {"message_id": id, "date": fake_telegram::DATE, "text": text,
                        "from": {"id": user, "is_bot": false, "first_name": "User"},
                        "chat": {"id": MAIN_CHAT, "title": "Approvers", "type": "supergroup"},
                        "entities": [{"offset": 0, "length": name.len(), "type": "bot_command"}]}
        }));
    }

    /// The answerCallbackQuery call for a query id.
    pub(crate) async fn answer(&self, qid: &str) -> Value {
        eventually(&format!("the answer to {qid}"), || {
            self.tg
                .bodies("answerCallbackQuery")
                .into_iter()
                .find(|b| b["callback_query_id"] == qid)
        })
        .await
    }

    /// POSTs a Telegram update to the webhook route with `secret` in the header.
    pub(crate) async fn webhook(&self, body: &str, secret: Option<&str>) -> StatusCode {
        let mut req = self
            .http
            .post(format!("{}/bots/telegram/webhook", self.d.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        req.send().await.unwrap().status()
    }
}

/// Discord: cards and signed interactions.
impl World {
    /// The Discord card of an approval, once posted.
    pub(crate) async fn dc_card(&self, approval: &str) -> Value {
        self.dc_card_showing(approval, approval).await
    }

    pub(crate) async fn dc_card_showing(&self, approval: &str, text: &str) -> Value {
        eventually(&format!("the Discord card to show {text:?}"), || {
            self.dc.messages().into_iter().find(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|t| t.contains(approval) && t.contains(text))
            })
        })
        .await
    }

    /// POSTs an interaction, signed by `key` over timestamp + body as Discord does (`None`:
    /// no signature headers).
    pub(crate) async fn interact(
        &self,
        body: &str,
        key: Option<&SigningKey>,
    ) -> (StatusCode, Value) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.interact_at(body, key, now).await
    }

    /// As [`Self::interact`], signed with the timestamp `at` (unix seconds).
    pub(crate) async fn interact_at(
        &self,
        body: &str,
        key: Option<&SigningKey>,
        at: i64,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/bots/discord/interactions", self.d.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            let timestamp = at.to_string();
            let mut signed = timestamp.as_bytes().to_vec();
            signed.extend_from_slice(body.as_bytes());
            req = req
                .header("X-Signature-Ed25519", hex(&key.sign(&signed).to_bytes()))
                .header("X-Signature-Timestamp", timestamp);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The callback data of a Telegram card's buttons: (approve, deny).
pub(crate) fn tg_buttons(card: &Value) -> (String, String) {
    let rows = card["reply_markup"]["inline_keyboard"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{card}");
    let row = rows[0].as_array().unwrap();
    assert_eq!(row.len(), 2, "two buttons: {card}");
    let data = |i: usize| row[i]["callback_data"].as_str().unwrap().to_string();
    (data(0), data(1))
}

/// The custom ids of a Discord card's buttons: (approve, deny).
pub(crate) fn dc_buttons(msg: &Value) -> (String, String) {
    let rows = msg["components"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{msg}");
    let row = rows[0]["components"].as_array().unwrap();
    assert_eq!(row.len(), 2, "two buttons: {msg}");
    let id = |i: usize| row[i]["custom_id"].as_str().unwrap().to_string();
    (id(0), id(1))
}

/// A button click in a server channel, as Discord sends it: the clicker is `member.user`.
pub(crate) fn click(user_id: &str, username: &str, msg: &Value, custom_id: &str) -> String {
    json!({
        "app_permissions": "562949953601536",
        "application_id": APP_ID.to_string(),
        "channel": {"id": DC_CHANNEL.to_string(), "guild_id": "1200000000000000000",
                    "name": "approvals", "type": 0},
        "channel_id": DC_CHANNEL.to_string(),
        "context": 0,
        "data": {"component_type": 2, "custom_id": custom_id, "id": 2},
        "entitlements": [],
        "guild": {"features": [], "id": "1200000000000000000", "locale": "en-US"},
        "guild_id": "1200000000000000000",
        "guild_locale": "en-US",
        "id": "1300000000000000042",
        "locale": "en-GB",
        "member": {"nick": "boss", "roles": [], "permissions": "2248473465835073",
                   "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                   "user": {"id": user_id, "username": username, "discriminator": "0",
                            "global_name": "Display Name", "avatar": null, "public_flags": 0}},
        "message": msg,
        "token": "aW50ZXJhY3Rpb246MTMwMDAwMDAwMDAwMDAwMDA0Mjp0b2tlbg",
        "type": 3,
        "version": 1,
    })
    .to_string()
}
