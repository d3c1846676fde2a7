//! Fake Telegram and Discord API servers for tests, one copy shared by this crate's tests
//! and the daemon's end-to-end tests. Behind the opt-in `fake-api` feature, so the daemon's
//! normal build never contains them.
//!
//! Each fake binds a free port of 127.0.0.1, records every call, keeps the messages the bot
//! sent (as last edited) and fails on demand; point a channel's `api_url` at its `url`.
//!
//! - [`telegram`]: the Bot API (teloxide's configurable API URL).
//! - [`discord`]: the REST API (serenity's configurable base URL).

pub mod discord;
pub mod telegram;
