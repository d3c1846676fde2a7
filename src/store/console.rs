//! Console sign-in: one-time links and sessions, stored (as hashes of their secrets) in the
//! store so that every daemon on one database honours them, with their audit events.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit_append::audit;
use super::kv::{Records, Table};
use super::{Origin, Store, StoreError};
use crate::audit::Actor;

/// Links by the SHA-256 (hex) of their secret.
const LINKS: Records<ConsoleLink> = Records::new(Table::ConsoleLinks);
/// Sessions by the SHA-256 (hex) of their cookie's secret.
const SESSIONS: Records<ConsoleSession> = Records::new(Table::ConsoleSessions);

/// Who a console session acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConsoleWho {
    /// An operator, as the admin token that opened the session (or issued its link).
    Admin {
        /// That admin token's id.
        token_id: String,
    },
    /// A configured approver.
    Approver {
        /// The approver's name.
        name: String,
    },
}

impl ConsoleWho {
    /// The actor its audit events name.
    pub fn actor(&self) -> Actor {
        match self {
            ConsoleWho::Admin { token_id } => Actor::new("admin", token_id.clone()),
            ConsoleWho::Approver { name } => Actor::new("approver", name.clone()),
        }
    }
}

/// A one-time sign-in link (`latchkey console link`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleLink {
    /// Id (not secret).
    pub id: String,
    /// Who the session will act as.
    pub who: ConsoleWho,
    /// SHA-256 of the credential that issued the link: the session lives no longer than it.
    pub credential: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the link is refused after.
    pub expires_at: i64,
    /// When it was used (it is used once).
    pub used_at: Option<i64>,
}

/// A console session (the cookie holds its secret; the store holds its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// Id (not secret): what `latchkey console revoke` takes and audit events name.
    pub id: String,
    /// Who it acts as.
    pub who: ConsoleWho,
    /// SHA-256 of the credential behind it (pasted, or the link's issuer): checked on every
    /// request, so revoking that credential ends the session.
    pub credential: String,
    /// The token every state-changing form carries (never shown by the API).
    pub csrf: String,
    /// `link` or `token`.
    pub via: String,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: the server-side end of the session.
    pub expires_at: i64,
}

/// Secrets of a new session, made by the caller (outside the write, which may run twice).
pub struct NewSession {
    /// The cookie's secret.
    pub secret: String,
    /// The CSRF token.
    pub csrf: String,
    /// Lifetime in seconds.
    pub ttl_seconds: i64,
}

impl NewSession {
    /// Fresh random secrets.
    pub fn random(ttl_seconds: i64) -> NewSession {
        NewSession {
            secret: crate::util::random_token("lk_cs_"),
            csrf: crate::util::random_token(""),
            ttl_seconds,
        }
    }
}

fn hash(secret: &str) -> String {
    crate::util::sha256_hex(secret.as_bytes())
}

/// Stores a new session (under the hash of its cookie's secret) and audits
/// `console.signed_in`, as the session's own actor.
fn open_session(
    ctx: &mut super::WriteCtx<'_>,
    who: &ConsoleWho,
    credential: &str,
    via: &str,
    new: &NewSession,
    origin: &Origin,
) -> Result<ConsoleSession, StoreError> {
    let now = ctx.now_unix();
    let session = ConsoleSession {
        id: crate::util::new_id(),
        who: who.clone(),
        credential: credential.to_string(),
        csrf: new.csrf.clone(),
        via: via.into(),
        ip: origin.ip.clone(),
        created_at: now,
        expires_at: now + new.ttl_seconds,
    };
    SESSIONS.put(&mut ctx.kv(), hash(&new.secret).as_str(), &session)?;
    let actor = Origin {
        actor: session.who.actor(),
        ip: origin.ip.clone(),
    };
    audit(
        ctx,
        &actor,
        "console.signed_in",
        "",
        &session.id,
        "sign_in",
        json!({"session_id": session.id, "via": session.via, "expires_at": session.expires_at}),
    )?;
    Ok(session)
}

impl Store {
    /// Issues a one-time link for `who`, valid `ttl_seconds` (event `console.link_issued`);
    /// returns its secret, shown once.
    pub async fn issue_console_link(
        &self,
        who: ConsoleWho,
        credential: String,
        ttl_seconds: i64,
        origin: Origin,
    ) -> Result<(String, ConsoleLink), StoreError> {
        let secret = crate::util::random_token("lk_cl_");
        let key = hash(&secret);
        let id = crate::util::new_id();
        let link = self
            .write(move |ctx| {
                let now = ctx.now_unix();
                let link = ConsoleLink {
                    id: id.clone(),
                    who: who.clone(),
                    credential: credential.clone(),
                    created_at: now,
                    expires_at: now + ttl_seconds,
                    used_at: None,
                };
                LINKS.put(&mut ctx.kv(), key.as_str(), &link)?;
                let approver = match &who {
                    ConsoleWho::Approver { name } => Some(name.clone()),
                    ConsoleWho::Admin { .. } => None,
                };
                audit(
                    ctx,
                    &origin,
                    "console.link_issued",
                    "",
                    &id,
                    "issue",
                    json!({"link_id": id, "approver": approver, "expires_at": link.expires_at}),
                )?;
                Ok(link)
            })
            .await?;
        Ok((secret, link))
    }

    /// The link behind `secret`, if it exists (used or not).
    pub fn console_link(&self, secret: &str) -> Result<Option<ConsoleLink>, StoreError> {
        LINKS.get(&self.kv_read()?, hash(secret).as_str())
    }

    /// Uses a link once: opens a session (event `console.signed_in`). A used, expired or
    /// unknown link is refused (`Conflict`, `Invalid`, `NotFound`) and changes nothing.
    pub async fn redeem_console_link(
        &self,
        secret: &str,
        new: NewSession,
        origin: Origin,
    ) -> Result<ConsoleSession, StoreError> {
        let key = hash(secret);
        self.write(move |ctx| {
            let now = ctx.now_unix();
            let mut link = LINKS
                .get(&ctx.kv(), key.as_str())?
                .ok_or_else(|| StoreError::NotFound("no such sign-in link".into()))?;
            if link.used_at.is_some() {
                return Err(StoreError::Conflict(
                    "this sign-in link was already used".into(),
                ));
            }
            if link.expires_at <= now {
                return Err(StoreError::Invalid("this sign-in link has expired".into()));
            }
            link.used_at = Some(now);
            LINKS.put(&mut ctx.kv(), key.as_str(), &link)?;
            open_session(ctx, &link.who, &link.credential, "link", &new, &origin)
        })
        .await
    }

    /// Opens a session for a pasted credential (event `console.signed_in`).
    pub async fn open_console_session(
        &self,
        who: ConsoleWho,
        credential: String,
        new: NewSession,
        origin: Origin,
    ) -> Result<ConsoleSession, StoreError> {
        self.write(move |ctx| open_session(ctx, &who, &credential, "token", &new, &origin))
            .await
    }

    /// The live session behind a cookie's secret (None when unknown or past its expiry).
    pub fn console_session(&self, secret: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(SESSIONS
            .get(&self.kv_read()?, hash(secret).as_str())?
            .filter(|s| s.expires_at > now))
    }

    /// Live sessions, oldest first.
    pub fn list_console_sessions(&self) -> Result<Vec<ConsoleSession>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut all: Vec<ConsoleSession> = SESSIONS
            .entries(&self.kv_read()?)?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.expires_at > now)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Ends a session by id (event `console.signed_out`, `reason` being `signed_out` or
    /// `revoked`); also drops expired sessions and links. False when there was none.
    pub async fn end_console_session(
        &self,
        id: String,
        reason: &'static str,
        origin: Origin,
    ) -> Result<bool, StoreError> {
        self.write(move |ctx| {
            let now = ctx.now_unix();
            let mut found = None;
            for (key, s) in SESSIONS.entries(&ctx.kv())? {
                if s.id == id {
                    found = Some(s);
                    SESSIONS.delete_encoded(&mut ctx.kv(), &key)?;
                } else if s.expires_at <= now {
                    SESSIONS.delete_encoded(&mut ctx.kv(), &key)?;
                }
            }
            for (key, l) in LINKS.entries(&ctx.kv())? {
                if l.expires_at <= now {
                    LINKS.delete_encoded(&mut ctx.kv(), &key)?;
                }
            }
            let Some(s) = found else {
                return Ok(false);
            };
            audit(
                ctx,
                &origin,
                "console.signed_out",
                "",
                &s.id,
                "sign_out",
                json!({"session_id": s.id, "reason": reason, "who": s.who}),
            )?;
            Ok(true)
        })
        .await
    }
}
