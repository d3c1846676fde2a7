//! A small audit-webhook consumer: verifies every delivery with the Standard Webhooks rules
//! and prints each event as one JSON line on stdout — the "feed an entity graph" pattern
//! (pipe it into your loader). Refused deliveries get 401 and a line on stderr.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_… cargo run -p webhooks --example consumer -- 127.0.0.1:9000
//! latchkey … # then: POST /v1/webhooks {"url": "http://127.0.0.1:9000/", "events": ["audit.*"]}
//! ```
//! (The daemon refuses loopback destinations unless `webhooks.allow_loopback` is set; `serve
//! --dev` sets it.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use webhooks::{Secret, WebhookHeaders, verify};

async fn receive(
    State(secrets): State<Vec<Secret>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let checked = WebhookHeaders::from_pairs(pairs)
        .and_then(|h| verify(&secrets, &h, &body, Duration::from_secs(300), now).map(|()| h));
    match checked {
        Ok(h) => match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(event) => {
                // One line per event: the id lets a consumer drop the duplicates that
                // at-least-once delivery may bring.
                println!(
                    "{}",
                    serde_json::json!({"webhook_id": h.id, "event": event})
                );
                StatusCode::NO_CONTENT
            }
            Err(e) => {
                eprintln!("refused: body is not JSON: {e}");
                StatusCode::BAD_REQUEST
            }
        },
        Err(e) => {
            eprintln!("refused: {e}");
            StatusCode::UNAUTHORIZED
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let raw = std::env::var("WEBHOOK_SECRET").map_err(
        |_| "set WEBHOOK_SECRET to the subscription's whsec_… secret (several: space-separated)",
    )?;
    let secrets = raw
        .split_whitespace()
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let app = axum::Router::new().fallback(receive).with_state(secrets);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{addr}/");
    axum::serve(listener, app).await?;
    Ok(())
}
