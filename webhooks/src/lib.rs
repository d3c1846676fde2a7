//! Standard Webhooks (<https://www.standardwebhooks.com/>) signing, verification and delivery.
//!
//! Latchkey streams audit events to outside systems as webhooks signed with
//! HMAC-SHA256 exactly as the Standard Webhooks specification describes, so any
//! consumer can verify them with an off-the-shelf library. The crate knows nothing of the
//! daemon or its storage: signing and verification take bytes and header values; delivery
//! takes events from a [`worker::Feed`] the daemon implements and reports attempts back.
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
//! - [`mod@deliver`]: the HTTP sender (no redirects, bounded answers, destination policy
//!   checked at DNS time) and the backoff schedule.
//! - [`mod@worker`]: one subscription's ordered, at-least-once delivery loop.

#![forbid(unsafe_code)]

pub mod deliver;
pub mod sign;
pub mod verify;
pub mod worker;

pub use sign::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_SECRET_LEN, MIN_SECRET_LEN, Secret, sign,
    signature_header,
};
pub use verify::{DEFAULT_TOLERANCE, VerifyError, WebhookHeaders, verify};
