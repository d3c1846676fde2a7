//! Standard Webhooks (<https://www.standardwebhooks.com/>) signing and verification.
//!
//! Latchkey streams audit events to outside systems as webhooks signed with
//! HMAC-SHA256 exactly as the Standard Webhooks specification describes, so any
//! consumer can verify them with an off-the-shelf library. This crate is pure:
//! it knows nothing about HTTP clients, the daemon or storage. It takes bytes and
//! header values and returns signatures or a verdict.
//!
//! - [`mod@sign`]: the [`Secret`] type (`whsec_…`), [`sign()`] and [`signature_header`].
//! - [`mod@verify`]: [`verify()`], [`VerifyError`] and [`WebhookHeaders`], the
//!   abstraction over request headers that keeps this crate free of any HTTP library.
//!
//! ```
//! use std::time::Duration;
//! use webhooks::{Secret, WebhookHeaders, verify};
//!
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"type":"audit.lease.granted"}"#;
//! let headers = WebhookHeaders::signed(&[secret.clone()], "msg_1", 1_700_000_000, body);
//! // ...sent as HTTP headers; the receiver rebuilds them from (name, value) pairs:
//! let received = WebhookHeaders::from_pairs(headers.pairs())?;
//! verify(&[secret], &received, body, Duration::from_secs(300), 1_700_000_010)?;
//! # Ok::<(), webhooks::VerifyError>(())
//! ```
//!
//! The delivery worker (`deliver.rs`: a per-subscription cursor, ordered
//! at-least-once delivery, retries with backoff and replay from a sequence
//! number) comes in a later issue; it will build on [`WebhookHeaders::signed`].

#![forbid(unsafe_code)]

pub mod sign;
pub mod verify;

pub use sign::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_SECRET_LEN, MIN_SECRET_LEN, Secret, sign,
    signature_header,
};
pub use verify::{DEFAULT_TOLERANCE, VerifyError, WebhookHeaders, verify};
