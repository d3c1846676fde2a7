//! Read-only views across records for the console: the open leases and the live scoped
//! tokens (never a value: leases and tokens hold none).

use super::leases::{LEASES, OPEN_LEASES};
use super::tokens::TOKENS;
use super::{LeaseRecord, Store, StoreError, TokenRecord};

impl Store {
    /// Leases not yet in a final state (pending or active), oldest first.
    pub fn open_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let tx = self.kv_read()?;
        let mut out = Vec::new();
        for (key, _) in OPEN_LEASES.entries(&tx)? {
            if let Some(l) = LEASES.get_encoded(&tx, &key)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Scoped tokens neither revoked nor expired, oldest first.
    pub fn live_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut out: Vec<TokenRecord> = TOKENS
            .entries(&self.kv_read()?)?
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
