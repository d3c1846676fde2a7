//! Credentials: admin, agent and approver secrets, stored only as SHA-256 hashes and found
//! by the hash of the presented secret.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AgentRecord;
use super::agents::AGENTS;
use super::audit_append::audit;
use super::kv::{Records, Table};
use super::{Origin, Store, StoreError, WriteCtx};

/// Credentials by the SHA-256 (hex) of their secret.
const CREDENTIALS: Records<Credential> = Records::new(Table::Credentials);

/// What a stored credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// An admin token.
    Admin,
    /// An agent's long-lived API key.
    Agent,
    /// An approver's API token (the approver is named in config).
    Approver,
}

/// A credential record, found by the hash of the presented secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// Id of the credential (not secret).
    pub id: String,
    /// Admin or agent key.
    pub kind: CredentialKind,
    /// For agent keys, the agent.
    pub agent_id: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// For approver tokens, the approver's name.
    #[serde(default)]
    pub approver: Option<String>,
    /// For admin tokens, what it is for (shown by `latchkey admin-token ls`).
    #[serde(default)]
    pub description: Option<String>,
}

/// An admin token as listed: never its value (which is not stored) nor its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminTokenInfo {
    /// Id (not secret): what `latchkey admin-token revoke` takes and audit events name.
    pub id: String,
    /// What it is for.
    pub description: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Revocation time (RFC 3339), or null while it works.
    pub revoked_at: Option<String>,
}

impl AdminTokenInfo {
    fn of(c: &Credential) -> AdminTokenInfo {
        AdminTokenInfo {
            id: c.id.clone(),
            description: c.description.clone().unwrap_or_default(),
            created_at: c.created_at.clone(),
            revoked_at: c.revoked_at.clone(),
        }
    }
}

/// The admin tokens among the credentials, by id (ULIDs: oldest first), with their encoded
/// keys.
fn admin_tokens(tx: &impl super::kv::ReadTxn) -> Result<Vec<(Vec<u8>, Credential)>, StoreError> {
    let mut out: Vec<(Vec<u8>, Credential)> = CREDENTIALS
        .entries(tx)?
        .into_iter()
        .filter(|(_, c)| c.kind == CredentialKind::Admin)
        .collect();
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    Ok(out)
}

pub(super) fn insert_credential(
    ctx: &WriteCtx<'_>,
    secret: &str,
    cred: &Credential,
) -> Result<(), StoreError> {
    let hash = crate::util::sha256_hex(secret.as_bytes());
    CREDENTIALS.put(&mut ctx.kv(), hash.as_str(), cred)
}

pub(super) fn revoke_credential(
    ctx: &WriteCtx<'_>,
    cred_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let found = CREDENTIALS
        .entries(&ctx.kv())?
        .into_iter()
        .find(|(_, c)| c.id == cred_id);
    if let Some((key, mut c)) = found {
        c.revoked_at = Some(now.to_string());
        CREDENTIALS.put_encoded(&mut ctx.kv(), &key, &c)?;
    }
    Ok(())
}

impl Store {
    /// Creates an admin token (event `admin_token.minted`); returns the token, shown once and
    /// stored only as its hash, and what `list_admin_tokens` will show of it.
    pub async fn create_admin_token(
        &self,
        description: String,
        origin: Origin,
    ) -> Result<(String, AdminTokenInfo), StoreError> {
        let token = crate::util::random_token("lk_admin_");
        let t = token.clone();
        let info = self
            .write(move |ctx| {
                let cred = Credential {
                    id: crate::util::new_id(),
                    kind: CredentialKind::Admin,
                    agent_id: None,
                    created_at: crate::util::rfc3339(ctx.now()),
                    revoked_at: None,
                    approver: None,
                    description: Some(description.clone()),
                };
                insert_credential(ctx, &t, &cred)?;
                let details = json!({"description": description});
                audit(
                    ctx,
                    &origin,
                    "admin_token.minted",
                    "",
                    &cred.id,
                    "mint",
                    details,
                )?;
                Ok(AdminTokenInfo::of(&cred))
            })
            .await?;
        Ok((token, info))
    }

    /// Every admin token, revoked ones included, oldest first.
    pub fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>, StoreError> {
        Ok(admin_tokens(&self.kv_read()?)?
            .iter()
            .map(|(_, c)| AdminTokenInfo::of(c))
            .collect())
    }

    /// Is `token` a working admin token? (For `serve --dev`, which reuses the one it saved.)
    pub fn is_active_admin_token(&self, token: &str) -> Result<bool, StoreError> {
        let hash = crate::util::sha256_hex(token.as_bytes());
        Ok(self
            .find_credential_and_agent(&hash)?
            .is_some_and(|(c, _)| c.kind == CredentialKind::Admin && c.revoked_at.is_none()))
    }

    /// Revokes an admin token (event `admin_token.revoked`). The last working one is refused:
    /// without an admin token nobody could register agents or mint another.
    pub async fn revoke_admin_token(
        &self,
        id: String,
        origin: Origin,
    ) -> Result<AdminTokenInfo, StoreError> {
        self.write(move |ctx| {
            let tokens = admin_tokens(&ctx.kv())?;
            let Some((key, cred)) = tokens.iter().find(|(_, c)| c.id == id) else {
                return Err(StoreError::NotFound(format!("no admin token {id}")));
            };
            if cred.revoked_at.is_some() {
                return Err(StoreError::Conflict(format!(
                    "admin token {id} is already revoked"
                )));
            }
            let active = tokens.iter().filter(|(_, c)| c.revoked_at.is_none()).count();
            if active <= 1 {
                return Err(StoreError::Conflict(format!(
                    "admin token {id} is the last working admin token: mint another first (latchkey admin-token mint)"
                )));
            }
            let mut cred = cred.clone();
            cred.revoked_at = Some(crate::util::rfc3339(ctx.now()));
            CREDENTIALS.put_encoded(&mut ctx.kv(), key, &cred)?;
            let by_itself = origin.actor.kind == "admin" && origin.actor.id == cred.id;
            let details = json!({"description": cred.description, "self": by_itself});
            audit(ctx, &origin, "admin_token.revoked", "", &cred.id, "revoke", details)?;
            Ok(AdminTokenInfo::of(&cred))
        })
        .await
    }

    /// Issues an API token for a configured approver; returns (token, id).
    pub async fn create_approver_token(
        &self,
        name: String,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let details = json!({"kind": "approver", "approver": name});
        self.issue_credential(
            "lk_appr_",
            CredentialKind::Approver,
            Some(name),
            details,
            origin,
        )
        .await
    }

    /// Stores a new random credential (only its hash) with its `token.issued` event.
    async fn issue_credential(
        &self,
        prefix: &str,
        kind: CredentialKind,
        approver: Option<String>,
        details: serde_json::Value,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let token = crate::util::random_token(prefix);
        let id = crate::util::new_id();
        let (t, i) = (token.clone(), id.clone());
        self.write(move |ctx| {
            let cred = Credential {
                id: i.clone(),
                kind,
                agent_id: None,
                created_at: crate::util::rfc3339(ctx.now()),
                revoked_at: None,
                approver: approver.clone(),
                description: None,
            };
            insert_credential(ctx, &t, &cred)?;
            audit(
                ctx,
                &origin,
                "token.issued",
                "",
                &i,
                "issue",
                details.clone(),
            )?;
            Ok(())
        })
        .await?;
        Ok((token, id))
    }

    /// The credential whose secret hashes to `hash`, with the agent of an agent key read in
    /// the same transaction (one snapshot, one transaction per authenticated request).
    pub fn find_credential_and_agent(
        &self,
        hash: &str,
    ) -> Result<Option<(Credential, Option<AgentRecord>)>, StoreError> {
        let snapshot = self.kv_read_latest()?;
        let Some(cred) = CREDENTIALS.get(&snapshot, hash)? else {
            return Ok(None);
        };
        let agent = match (&cred.kind, &cred.agent_id) {
            (CredentialKind::Agent, Some(id)) => AGENTS.get(&snapshot, id.as_str())?,
            _ => None,
        };
        Ok(Some((cred, agent)))
    }
}
