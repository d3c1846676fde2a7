//! Re-wrapping: after a key rotation, every version's data key not yet under the newest KEK
//! is re-wrapped, in batches, and one audit event records how many.

use std::ops::Bound;

use serde_json::json;

use super::keys::{Key, Reader};
use super::secrets::{VERSIONS, load};
use super::{Origin, Store, StoreError};
use crate::audit::Draft;
use crate::crypto::{self, Binding};
use crate::paths;

impl Store {
    /// Re-wraps every data key not yet under the newest KEK, in batches. Returns how many
    /// versions were re-wrapped.
    pub async fn rewrap_all(&self, origin: Origin) -> Result<u64, StoreError> {
        let keyring = self.keyring();
        let newest = keyring.newest().id;
        let mut total = 0u64;
        let mut after: Option<(String, u64)> = None;
        loop {
            let ring = keyring.clone();
            let start = after.clone();
            let (done, count, last) = self
                .write(move |ctx| {
                    let mut todo = Vec::new();
                    let from = match &start {
                        Some((p, v)) => Bound::Excluded((p.as_str(), *v).encode()),
                        None => Bound::Unbounded,
                    };
                    let page = VERSIONS.range(
                        &ctx.kv(),
                        from.as_ref().map(Vec::as_slice),
                        Bound::Unbounded,
                        false,
                        512,
                    )?;
                    let exhausted = page.len() < 512;
                    let mut last = None;
                    for (k, rec) in page {
                        let mut key = Reader::new(&k);
                        let (Some(p), Some(ver)) = (key.string(), key.u64()) else {
                            return Err(StoreError::Corrupt("a version key".into()));
                        };
                        last = Some((p.clone(), ver));
                        if rec.sealed.kek_id != ring.newest().id {
                            todo.push((p, rec));
                        }
                    }
                    let mut count = 0u64;
                    for (path, mut v) in todo {
                        let ns = match load(&ctx.kv(), &path)? {
                            Some(r) => r.namespace,
                            None => paths::namespace_of(&path).to_string(),
                        };
                        let binding = Binding {
                            namespace: &ns,
                            path: &path,
                            version: v.version,
                        };
                        if let Some(new) = crypto::rewrap(&ring, binding, &v.sealed)? {
                            v.sealed = new;
                            VERSIONS.put(&mut ctx.kv(), &(path.as_str(), v.version), &v)?;
                            count += 1;
                        }
                    }
                    Ok((exhausted, count, last))
                })
                .await?;
            total += count;
            if done {
                break;
            }
            after = last;
        }
        self.write(move |ctx| {
            ctx.audit(Draft {
                event: "keys.rewrapped",
                actor: origin.actor.clone(),
                namespace: String::new(),
                resource_path: "keyring".into(),
                action: "rewrap".into(),
                outcome: "success",
                ip: origin.ip.clone(),
                details: json!({"rewrapped": total, "kek_id": newest}),
            })
        })
        .await?;
        Ok(total)
    }
}
