//! Discord interactions: signature checks, parsing clicks as Discord sends them, answers.

use bots::discord::{
    DiscordChannel, Interaction, ephemeral, parse_interaction, parse_public_key, pong,
    update_message, verify_interaction, vote,
};
use bots::{ChannelError, Decision, Outcome, OutcomeKind, callback};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::discord::{KEY, card, config, hex, signing_key};

const TIMESTAMP: &str = "1777636800";
const GUILD_CHANNEL: &str = "1200000000000000100";
const MESSAGE: &str = "1300000000000000001";

fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    hex(&key.sign(&signed).to_bytes())
}

fn approve_id() -> String {
    callback::encode(KEY, &card().approval_id, Decision::Approve).unwrap()
}

/// A user object as Discord sends it.
fn user(id: &str, username: &str) -> Value {
    json!({
        "avatar": null, "avatar_decoration_data": null, "clan": null, "collectibles": null,
        "discriminator": "0", "global_name": "Approver (display name)", "id": id,
        "primary_guild": null, "public_flags": 0, "username": username,
    })
}

/// The message the button was on, as Discord includes it in the interaction.
fn clicked_message(channel_id: &str) -> Value {
    json!({
        "application_id": "1100000000000000000", "attachments": [],
        "author": {"avatar": null, "bot": true, "discriminator": "0000", "global_name": null,
                   "id": "1100000000000000000", "public_flags": 524288, "username": "latchkey"},
        "channel_id": channel_id,
        "components": [{"type": 1, "id": 1, "components": [
            {"type": 2, "id": 2, "custom_id": approve_id(), "label": "Approve", "style": 3},
        ]}],
        "content": "🔐 Approval needed", "edited_timestamp": null, "embeds": [], "flags": 0,
        "id": MESSAGE, "mention_everyone": false, "mention_roles": [], "mentions": [],
        "pinned": false, "timestamp": "2026-05-01T12:00:00.000000+00:00", "tts": false, "type": 0,
    })
}

/// A button click in a server channel: the clicker is in `member.user`.
fn guild_click() -> Value {
    json!({
        "app_permissions": "562949953601536",
        "application_id": "1100000000000000000",
        "attachment_size_limit": 10485760,
        "authorizing_integration_owners": {"0": "1200000000000000000"},
        "channel": {"flags": 0, "guild_id": "1200000000000000000", "id": GUILD_CHANNEL,
                    "last_message_id": MESSAGE, "name": "approvals", "nsfw": false,
                    "parent_id": null, "permissions": "2248473465835073", "position": 0,
                    "rate_limit_per_user": 0, "topic": null, "type": 0},
        "channel_id": GUILD_CHANNEL,
        "context": 0,
        "data": {"component_type": 2, "custom_id": approve_id(), "id": 2},
        "entitlement_sku_ids": [],
        "entitlements": [],
        "guild": {"features": [], "id": "1200000000000000000", "locale": "en-US"},
        "guild_id": "1200000000000000000",
        "guild_locale": "en-US",
        "id": "1300000000000000042",
        "locale": "en-GB",
        "member": {"avatar": null, "banner": null, "communication_disabled_until": null,
                   "deaf": false, "flags": 0, "joined_at": "2024-01-01T00:00:00.000000+00:00",
                   "mute": false, "nick": "boss", "pending": false,
                   "permissions": "2248473465835073", "premium_since": null, "roles": [],
                   "unusual_dm_activity_until": null, "user": user("400000000000000001", "ada")},
        "message": clicked_message(GUILD_CHANNEL),
        "token": "aW50ZXJhY3Rpb246MTMwMDAwMDAwMDAwMDAwMDA0Mjp0b2tlbg",
        "type": 3,
        "version": 1,
    })
}

/// A button click in a DM with the bot: the clicker is in `user`.
fn dm_click() -> Value {
    json!({
        "app_permissions": "1126881521982656",
        "application_id": "1100000000000000000",
        "authorizing_integration_owners": {"0": "0"},
        "channel": {"flags": 0, "id": "1250000000000000000", "last_message_id": MESSAGE,
                    "recipients": [user("400000000000000002", "grace")], "type": 1},
        "channel_id": "1250000000000000000",
        "context": 1,
        "data": {"component_type": 2, "custom_id": approve_id(), "id": 2},
        "entitlement_sku_ids": [],
        "entitlements": [],
        "id": "1300000000000000043",
        "locale": "en-US",
        "message": clicked_message("1250000000000000000"),
        "token": "aW50ZXJhY3Rpb246MTMwMDAwMDAwMDAwMDAwMDA0Mzp0b2tlbg",
        "type": 3,
        "user": user("400000000000000002", "grace"),
        "version": 1,
    })
}

fn parse(value: &Value) -> Result<Interaction, ChannelError> {
    parse_interaction(&serde_json::to_vec(value).unwrap())
}

#[test]
fn signatures_are_checked_over_timestamp_and_body() {
    let key = signing_key();
    let public = parse_public_key(&hex(key.verifying_key().as_bytes())).unwrap();
    let body = br#"{"type":1}"#;
    let good = sign(&key, TIMESTAMP, body);
    assert_eq!(
        verify_interaction(&public, Some(&good), Some(TIMESTAMP), body),
        Ok(())
    );
    assert_eq!(
        verify_interaction(&public, Some(&good.to_uppercase()), Some(TIMESTAMP), body),
        Ok(())
    );

    let other_key = SigningKey::from_bytes(&[8; 32]);
    type Case<'a> = (&'a str, Option<String>, Option<&'a str>, &'a [u8]);
    let cases: [Case; 8] = [
        (
            "tampered body",
            Some(good.clone()),
            Some(TIMESTAMP),
            br#"{"type":3}"#,
        ),
        (
            "other timestamp",
            Some(good.clone()),
            Some("1777636801"),
            body,
        ),
        ("no signature", None, Some(TIMESTAMP), body),
        ("no timestamp", Some(good.clone()), None, body),
        (
            "empty timestamp",
            Some(sign(&key, "", body)),
            Some(""),
            body,
        ),
        ("not hex", Some("zz".repeat(64)), Some(TIMESTAMP), body),
        ("short", Some(good[..126].to_owned()), Some(TIMESTAMP), body),
        (
            "other key",
            Some(sign(&other_key, TIMESTAMP, body)),
            Some(TIMESTAMP),
            body,
        ),
    ];
    for (what, signature, timestamp, body) in cases {
        let result = verify_interaction(&public, signature.as_deref(), timestamp, body);
        assert!(
            matches!(result, Err(ChannelError::Rejected(_))),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn ping_is_answered_with_pong() {
    let ping = json!({
        "application_id": "1100000000000000000",
        "entitlements": [],
        "id": "1300000000000000040",
        "token": "aW50ZXJhY3Rpb246MTMwMDAwMDAwMDAwMDAwMDA0MDp0b2tlbg",
        "type": 1,
        "user": user("643945264868098049", "discord"),
        "version": 1,
    });
    assert_eq!(parse(&ping), Ok(Interaction::Ping));
    assert_eq!(pong(), json!({ "type": 1 }));
}

#[test]
fn a_server_click_names_the_member_and_a_dm_click_the_user() {
    let expected =
        |id: &str, user_id: &str, name: &str, channel: &str, token: &str| Interaction::Button {
            id: id.into(),
            token: token.into(),
            custom_id: approve_id(),
            user_id: user_id.into(),
            user_name: name.into(),
            channel_id: Some(channel.into()),
            message_id: Some(MESSAGE.into()),
        };
    let guild = guild_click();
    assert_eq!(
        parse(&guild),
        Ok(expected(
            "1300000000000000042",
            "400000000000000001",
            "ada",
            GUILD_CHANNEL,
            guild["token"].as_str().unwrap()
        ))
    );
    let dm = dm_click();
    assert_eq!(
        parse(&dm),
        Ok(expected(
            "1300000000000000043",
            "400000000000000002",
            "grace",
            "1250000000000000000",
            dm["token"].as_str().unwrap()
        ))
    );
}

#[test]
fn a_click_without_a_clicker_is_rejected() {
    let mut no_member = guild_click();
    no_member.as_object_mut().unwrap().remove("member");
    // In a server a top-level `user` is not trusted in place of `member.user`.
    let mut only_user = no_member.clone();
    only_user["user"] = user("400000000000000009", "mallory");
    let mut member_without_user = guild_click();
    member_without_user["member"]
        .as_object_mut()
        .unwrap()
        .remove("user");
    let mut dm_without_user = dm_click();
    dm_without_user.as_object_mut().unwrap().remove("user");
    let mut bad_id = dm_click();
    bad_id["user"]["id"] = json!("");
    let mut no_token = dm_click();
    no_token.as_object_mut().unwrap().remove("token");
    for (what, body) in [
        ("guild without member", no_member),
        ("guild with user only", only_user),
        ("member without user", member_without_user),
        ("dm without user", dm_without_user),
        ("empty user id", bad_id),
        ("no token", no_token),
    ] {
        let result = parse(&body);
        assert!(
            matches!(result, Err(ChannelError::Rejected(_))),
            "{what}: {result:?}"
        );
    }
    let result = parse_interaction(b"{not json");
    assert!(
        matches!(result, Err(ChannelError::Rejected(_))),
        "{result:?}"
    );
}

#[test]
fn other_interactions_are_not_ours() {
    let mut command = guild_click();
    command["type"] = json!(2);
    command["data"] = json!({"id": "1", "name": "approve", "type": 1});
    assert_eq!(parse(&command), Ok(Interaction::Other));
    let mut select = guild_click();
    select["data"] = json!({"component_type": 3, "custom_id": "x", "values": ["a"]});
    assert_eq!(parse(&select), Ok(Interaction::Other));
}

#[test]
fn a_click_becomes_a_vote_only_with_a_valid_mac() {
    let click = parse(&guild_click()).unwrap();
    let ballot = vote(KEY, &click).unwrap();
    assert_eq!(ballot.approval_id, card().approval_id);
    assert_eq!(ballot.decision, Decision::Approve);
    assert_eq!(ballot.platform, "discord");
    assert_eq!(ballot.platform_user_id, "400000000000000001");
    assert_eq!(ballot.display_name, "ada");
    let channel = DiscordChannel::new(config("http://127.0.0.1:9")).unwrap();
    assert_eq!(channel.vote(&click), Ok(ballot));

    let mut forged = guild_click();
    forged["data"]["custom_id"] = json!(approve_id().replacen(":y:", ":n:", 1));
    let result = vote(KEY, &parse(&forged).unwrap());
    assert!(
        matches!(result, Err(ChannelError::Rejected(_))),
        "{result:?}"
    );
    assert!(vote(KEY, &Interaction::Ping).is_err());
}

#[test]
fn answers_have_discords_shapes() {
    let mut card = card();
    let pending = update_message(&card, KEY).unwrap();
    assert_eq!(pending["type"], 7);
    assert_eq!(pending["data"]["allowed_mentions"], json!({ "parse": [] }));
    let buttons = pending["data"]["components"][0]["components"]
        .as_array()
        .unwrap();
    assert_eq!(buttons.len(), 2);

    card.outcome = Some(Outcome {
        kind: OutcomeKind::Denied,
        decided_by: Some("ada".into()),
        decided_at: "2026-05-01T12:03:00Z".into(),
    });
    let decided = update_message(&card, KEY).unwrap();
    assert_eq!(decided["data"]["components"], json!([]));
    let content = decided["data"]["content"].as_str().unwrap();
    assert!(content.contains("Outcome: ❌ denied by ada"), "{content}");
    let channel = DiscordChannel::new(config("http://127.0.0.1:9")).unwrap();
    assert_eq!(channel.update_message(&card), Ok(decided));

    let note = ephemeral("already decided by @everyone at 12:03");
    assert_eq!(note["type"], 4);
    assert_eq!(note["data"]["flags"], 64);
    assert_eq!(note["data"]["allowed_mentions"], json!({ "parse": [] }));
    assert_eq!(
        note["data"]["content"],
        "already decided by @\u{200B}everyone at 12:03"
    );
}
