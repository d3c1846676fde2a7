//! The page frame: head, navigation (with the pending count, kept live), sign-out, and the
//! headers every console page carries (no caching, no framing, a strict CSP, no referrer).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Viewer;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Approvals,
    Audit,
    Secrets,
    Agents,
    Webhooks,
}

/// A rendered page.
pub struct Page(Markup);

/// Served with every page: scripts and styles only from the daemon, forms only to it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.0.into_string(),
        )
            .into_response()
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx's own inline indicator styles would break the CSP.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
            title { (title) " · Latchkey" }
            link rel="stylesheet" href="/ui/assets/console.css";
            script src="/ui/assets/htmx.min.js" defer {}
            script src="/ui/assets/console.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                header.top { span.brand { "Latchkey" } }
                main { (body) }
            }
        }
    })
}

/// A console page for a signed-in viewer.
pub fn page(v: &Viewer, nav: Nav, title: &str, pending: usize, body: Markup) -> Page {
    let entry = |n: Nav, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(n == nav).then_some("page")] { (label) }
        }
    };
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-live="1" {
                header.top {
                    a.brand href="/ui/approvals" { "Latchkey" }
                    nav {
                        a href="/ui/approvals" aria-current=[(nav == Nav::Approvals).then_some("page")] {
                            "Approvals "
                            span #pending-count .badge hx-get="/ui/approvals/count"
                                hx-trigger="lk-change from:body" hx-swap="outerHTML" {
                                (pending)
                            }
                        }
                        @if v.is_admin() {
                            (entry(Nav::Audit, "/ui/audit", "Audit"))
                            (entry(Nav::Secrets, "/ui/secrets", "Secrets"))
                            (entry(Nav::Agents, "/ui/agents", "Agents"))
                            (entry(Nav::Webhooks, "/ui/webhooks", "Webhooks"))
                        }
                    }
                    form.signout method="post" action="/ui/logout" {
                        (v.csrf_field())
                        span.who { (v.label()) }
                        button type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    })
}

/// A page fragment (htmx swaps), with the same headers.
pub fn fragment(body: Markup) -> Page {
    Page(body)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A serde enum's name (`auto_granted`), for labels.
pub fn label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
