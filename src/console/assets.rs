//! The console's static files, embedded in the binary: htmx (vendored, pinned), the style
//! sheet and the small script that turns server-sent events into htmx refreshes.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::UiError;

/// htmx 2.0.11 (`dist/htmx.min.js` of the npm package `htmx.org`, 0BSD), unchanged: a unit
/// test below holds the file to the released file's SHA-256.
const HTMX: &str = include_str!("assets/htmx-2.0.11.min.js");
#[cfg(test)]
const HTMX_SHA256: &str = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717";
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// `GET /ui/assets/{name}`: cached for a day (the names carry no version, so not longer).
pub async fn serve(Path(name): Path<String>) -> Result<Response, UiError> {
    let (body, kind) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        "console.css" => (CSS, "text/css; charset=utf-8"),
        _ => return Err(UiError::NotFound("no such file".into())),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn the_vendored_htmx_is_the_released_file() {
        let digest = Sha256::digest(super::HTMX.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, super::HTMX_SHA256);
    }
}
