//! Signing in and out of the console: a one-time link (`latchkey console link`) or a pasted
//! admin or approver credential opens a server-side session held in an HttpOnly, SameSite=
//! Strict cookie; the [`Viewer`] extractor finds it on every request, checks that the
//! credential behind it still stands, and carries the CSRF token forms must echo.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::UiError;
use super::layout::bare;
use crate::audit::{Actor, Draft};
use crate::auth::{Caller, Identity};
use crate::http::Path;
use crate::state::AppState;
use crate::store::{ConsoleSession, ConsoleWho, CredentialKind, NewSession, Origin, StoreError};

const COOKIE: &str = "lk_console";

/// A signed-in console user: the session and the caller it acts as.
pub struct Viewer {
    /// The caller, as the API's handlers take it.
    pub caller: Caller,
    /// The session.
    pub session: ConsoleSession,
}

impl Viewer {
    /// An operator (not only an approver)?
    pub fn is_admin(&self) -> bool {
        self.caller.is_admin()
    }

    /// Who is signed in, for the header.
    pub fn label(&self) -> String {
        match &self.session.who {
            ConsoleWho::Admin { .. } => "admin".into(),
            ConsoleWho::Approver { name } => name.clone(),
        }
    }

    /// The hidden field every state-changing form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }

    /// Refuses (403, audited as `access.denied`) a form whose CSRF token is not the session's.
    pub async fn check_csrf(
        &self,
        state: &AppState,
        presented: &str,
        what: &str,
    ) -> Result<(), UiError> {
        let expected = self.session.csrf.as_bytes();
        let ok = presented.len() == expected.len()
            && presented
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if ok {
            return Ok(());
        }
        self.caller
            .deny(state, "", what, "post", "missing or wrong CSRF token")
            .await
            .map_err(UiError::Api)?;
        Err(UiError::Forbidden(
            "this form is stale or did not come from the console: reload the page and try again"
                .into(),
        ))
    }

    /// Refuses (403, audited) an approver on an operator's page.
    pub async fn admin_only(&self, state: &AppState, what: &str) -> Result<(), UiError> {
        if self.is_admin() {
            return Ok(());
        }
        self.caller
            .deny(state, "", what, "get", "approvers see the approvals only")
            .await
            .map_err(UiError::Api)?;
        Err(UiError::Forbidden(
            "approvers see the approvals; this page is for operators".into(),
        ))
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Does the credential behind a session still stand (not revoked; an approver still
/// configured)?
fn still_stands(state: &AppState, s: &ConsoleSession) -> Result<bool, StoreError> {
    let Some((cred, _)) = state.store.find_credential_and_agent(&s.credential)? else {
        return Ok(false);
    };
    let cred_ok = cred.revoked_at.is_none()
        && matches!(cred.kind, CredentialKind::Admin | CredentialKind::Approver);
    let who_ok = match &s.who {
        ConsoleWho::Admin { .. } => cred.kind == CredentialKind::Admin,
        ConsoleWho::Approver { name } => state.config.approvers.iter().any(|a| &a.name == name),
    };
    Ok(cred_ok && who_ok)
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let secret = cookie_value(&parts.headers).ok_or(UiError::SignIn)?;
        let session = state
            .store
            .console_session(&secret)?
            .ok_or(UiError::SignIn)?;
        if !still_stands(state, &session)? {
            return Err(UiError::SignIn);
        }
        let identity = match &session.who {
            ConsoleWho::Admin { token_id } => Identity::Admin {
                id: token_id.clone(),
            },
            ConsoleWho::Approver { name } => Identity::Approver { name: name.clone() },
        };
        let origin = Origin {
            actor: session.who.actor(),
            ip: crate::auth::client_ip(parts, state),
        };
        Ok(Viewer {
            caller: Caller { identity, origin },
            session,
        })
    }
}

/// Refuses a POST another site's page sent (a login CSRF, or a form without a session yet):
/// browsers say where a request comes from in `Sec-Fetch-Site` and `Origin`.
pub fn same_site(headers: &HeaderMap) -> Result<(), UiError> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
        return Err(UiError::Forbidden(
            "the console accepts forms from its own pages only".into(),
        ));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let (Some(origin), Some(host)) = (origin, host) {
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        if origin != "null" && origin_host != host {
            return Err(UiError::Forbidden(
                "the console accepts forms from its own pages only".into(),
            ));
        }
    }
    Ok(())
}

fn set_cookie(state: &AppState, secret: &str) -> HeaderValue {
    let ttl = state.config.console.session_ttl_seconds;
    let secure = if state.config.console.is_tls() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lk_console=; Path=/ui"))
}

fn signed_in(state: &AppState, secret: &str) -> Response {
    let mut resp = Redirect::to("/ui/approvals").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(state, secret));
    resp
}

fn new_session(state: &AppState) -> NewSession {
    NewSession::random(
        i64::try_from(state.config.console.session_ttl_seconds).unwrap_or(i64::MAX / 2),
    )
}

fn login_form(error: Option<&str>) -> Markup {
    html! {
        section.card.signin {
            h1 { "Sign in" }
            p { "Use the one-time link from " code { "latchkey console link" } ", or paste an admin token or an approver token (" code { "lk_appr_…" } "). Agent keys cannot sign in." }
            @if let Some(e) = error { p.flash.bad role="alert" { (e) } }
            form method="post" action="/ui/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button.primary type="submit" { "Sign in" }
            }
        }
    }
}

/// `GET /ui/login`.
pub async fn login_page() -> impl IntoResponse {
    bare("Sign in", login_form(None))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /ui/login`: a pasted admin or approver credential opens a session.
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, UiError> {
    same_site(&parts.headers)?;
    let ip = crate::auth::client_ip(&parts, &state);
    let token = form.token.trim();
    let caller =
        match crate::auth::authenticate_credential(&state, Some(token), ip, "/ui/login", "sign_in")
            .await
        {
            Ok(c) => c,
            Err(crate::error::ApiError::Unauthorized) => {
                let page = bare("Sign in", login_form(Some("That token is not valid.")));
                return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
            }
            Err(e) => return Err(e.into()),
        };
    let who = match &caller.identity {
        Identity::Admin { id } => ConsoleWho::Admin {
            token_id: id.clone(),
        },
        Identity::Approver { name } => ConsoleWho::Approver { name: name.clone() },
        Identity::Agent { .. } => {
            caller
                .deny(
                    &state,
                    "",
                    "/ui/login",
                    "sign_in",
                    "agent credentials cannot sign in to the console",
                )
                .await?;
            return Err(UiError::Forbidden(
                "agent credentials cannot sign in to the console".into(),
            ));
        }
    };
    let new = new_session(&state);
    let secret = new.secret.clone();
    let credential = crate::util::sha256_hex(token.as_bytes());
    state
        .store
        .open_console_session(who, credential, new, caller.origin.clone())
        .await?;
    Ok(signed_in(&state, &secret))
}

/// `GET /ui/link/{secret}`: a confirmation page (a link previewer fetching the URL does not use
/// it up; the button's POST does).
pub async fn link_page(
    State(state): State<AppState>,
    Path(secret): Path<String>,
) -> Result<Response, UiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let link = state
        .store
        .console_link(&secret)?
        .ok_or_else(|| UiError::NotFound("no such sign-in link".into()))?;
    if link.used_at.is_some() {
        return Err(UiError::Api(crate::error::ApiError::Conflict(
            "this sign-in link was already used: ask for a new one (latchkey console link)".into(),
        )));
    }
    if link.expires_at <= now {
        return Err(UiError::BadRequest(
            "this sign-in link has expired: ask for a new one (latchkey console link)".into(),
        ));
    }
    let who = match &link.who {
        ConsoleWho::Admin { .. } => "the operator (admin)".to_string(),
        ConsoleWho::Approver { name } => format!("approver {name}"),
    };
    let body = html! {
        section.card.signin {
            h1 { "Sign in" }
            p { "Sign in to Latchkey as " strong { (who) } "? The link works once." }
            form method="post" {
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    Ok(bare("Sign in", body).into_response())
}

/// `POST /ui/link/{secret}`: uses the link (once) and opens a session.
pub async fn redeem(
    State(state): State<AppState>,
    parts: Parts,
    Path(secret): Path<String>,
) -> Result<Response, UiError> {
    same_site(&parts.headers)?;
    let ip = crate::auth::client_ip(&parts, &state);
    let new = new_session(&state);
    let cookie = new.secret.clone();
    let origin = Origin {
        actor: Actor::anonymous(),
        ip: ip.clone(),
    };
    match state.store.redeem_console_link(&secret, new, origin).await {
        Ok(_) => Ok(signed_in(&state, &cookie)),
        Err(e @ (StoreError::Conflict(_) | StoreError::Invalid(_) | StoreError::NotFound(_))) => {
            state
                .store
                .append_event(Draft {
                    event: "auth.failed",
                    actor: Actor::anonymous(),
                    namespace: String::new(),
                    resource_path: "/ui/link".into(),
                    action: "sign_in".into(),
                    outcome: "denied",
                    ip,
                    details: json!({"reason": e.to_string()}),
                })
                .await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session (event `console.signed_out`).
pub async fn logout(
    State(state): State<AppState>,
    v: Viewer,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, UiError> {
    v.check_csrf(&state, &form.csrf, "/ui/logout").await?;
    state
        .store
        .end_console_session(v.session.id.clone(), "signed_out", v.caller.origin.clone())
        .await?;
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("lk_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}
