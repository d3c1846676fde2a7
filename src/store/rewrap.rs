//! Re-wrapping: after a key rotation, every version's data key not yet under the newest KEK
//! is re-wrapped, in batches, and one audit event records how many.

use redb::ReadableTable;
use serde_json::json;

use super::secrets::{VersionRecord, load};
use super::tables::VERSIONS;
use super::{Origin, Store, StoreError, decode, encode};
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
                    let mut last = None;
                    let mut exhausted = true;
                    {
                        let table = ctx.txn.open_table(VERSIONS)?;
                        let iter = match &start {
                            Some((p, v)) => table.range((p.as_str(), *v)..)?,
                            None => table.range::<(&str, u64)>(..)?,
                        };
                        let mut scanned = 0;
                        for item in iter {
                            let (k, v) = item?;
                            let (p, ver) = k.value();
                            if start.as_ref().is_some_and(|(sp, sv)| sp == p && *sv == ver) {
                                continue;
                            }
                            if scanned == 512 {
                                exhausted = false;
                                break;
                            }
                            scanned += 1;
                            last = Some((p.to_string(), ver));
                            let rec: VersionRecord = decode(v.value())?;
                            if rec.sealed.kek_id != ring.newest().id {
                                todo.push((p.to_string(), rec));
                            }
                        }
                    }
                    let mut count = 0u64;
                    for (path, mut v) in todo {
                        let ns = match load(ctx.txn, &path)? {
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
                            ctx.txn
                                .open_table(VERSIONS)?
                                .insert((path.as_str(), v.version), encode(&v)?.as_slice())?;
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
