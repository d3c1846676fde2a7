//! Credentials: admin, agent and approver secrets, stored only as SHA-256 hashes and found
//! by the hash of the presented secret.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AgentRecord;
use super::audit_append::audit;
use super::tables::{AGENTS, CREDENTIALS};
use super::{Origin, Store, StoreError, WriteCtx, decode, encode};

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
}

pub(super) fn insert_credential(
    ctx: &WriteCtx<'_>,
    secret: &str,
    cred: &Credential,
) -> Result<(), StoreError> {
    let hash = crate::util::sha256_hex(secret.as_bytes());
    ctx.txn
        .open_table(CREDENTIALS)?
        .insert(hash.as_str(), encode(cred)?.as_slice())?;
    Ok(())
}

pub(super) fn revoke_credential(
    ctx: &WriteCtx<'_>,
    cred_id: &str,
    now: &str,
) -> Result<(), StoreError> {
    let mut table = ctx.txn.open_table(CREDENTIALS)?;
    let mut found = None;
    for item in table.iter()? {
        let (k, v) = item?;
        let c: Credential = decode(v.value())?;
        if c.id == cred_id {
            found = Some((k.value().to_string(), c));
            break;
        }
    }
    if let Some((hash, mut c)) = found {
        c.revoked_at = Some(now.to_string());
        table.insert(hash.as_str(), encode(&c)?.as_slice())?;
    }
    Ok(())
}

impl Store {
    /// Creates an admin token; returns the token (shown once) and its id.
    pub async fn create_admin_token(
        &self,
        description: String,
        origin: Origin,
    ) -> Result<(String, String), StoreError> {
        let details = json!({"kind": "admin", "description": description});
        self.issue_credential("lk_admin_", CredentialKind::Admin, None, details, origin)
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
                approver,
            };
            insert_credential(ctx, &t, &cred)?;
            audit(ctx, &origin, "token.issued", "", &i, "issue", details)?;
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
        let txn = self.read()?;
        let Some(cred) = txn.open_table(CREDENTIALS)?.get(hash)? else {
            return Ok(None);
        };
        let cred: Credential = decode(cred.value())?;
        let agent = match (&cred.kind, &cred.agent_id) {
            (CredentialKind::Agent, Some(id)) => txn
                .open_table(AGENTS)?
                .get(id.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?,
            _ => None,
        };
        Ok(Some((cred, agent)))
    }
}
