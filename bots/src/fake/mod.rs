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

/// Serves `app` on a free port of 127.0.0.1 until the test's runtime stops; returns its base
/// URL (`http://127.0.0.1:PORT`).
///
/// # Panics
///
/// If no port of 127.0.0.1 can be bound (test set-up cannot go on without one).
async fn serve(app: axum::Router, what: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{what}: bind 127.0.0.1:0: {e}"));
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{what}: address of a bound listener: {e}"))
    );
    tokio::spawn(async move {
        // Only ends with an I/O error of the listener; the test then sees refused calls.
        let _ = axum::serve(listener, app).await;
    });
    url
}
