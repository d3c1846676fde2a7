//! Integration tests of the approval channels, one test binary for the crate.

#![allow(clippy::unwrap_used)]

mod discord;
mod discord_interactions;
mod telegram;
mod telegram_updates;
