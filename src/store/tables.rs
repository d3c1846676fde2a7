//! redb table definitions. Records are JSON so that fields can be added without migrations.

use redb::{Database, TableDefinition};

use super::StoreError;

/// Secret records by full path.
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
/// Secret versions by (full path, version).
pub const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("secret_versions");
/// The audit log by seq.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Agents by id.
pub const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Agent names → ids (names are unique).
pub const AGENT_NAMES: TableDefinition<&str, &str> = TableDefinition::new("agent_names");
/// Admin tokens and agent keys by SHA-256 (hex) of the credential (typed layout; converted to
/// `kv::Table::Credentials`).
pub const CREDENTIALS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");
/// Scoped tokens by id (for revocation and listing).
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Revoked sessions and tasks: `session:<agent|*>:<id>` → revocation time (unix ns).
pub const REVOKED: TableDefinition<&str, u128> = TableDefinition::new("revoked_bindings");

/// Grants by id (typed layout of earlier releases; converted at open to `kv::Table::Grants`).
pub const GRANTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");
/// Approval-matrix overrides by pattern (typed layout; converted to `kv::Table::Policies`).
pub const POLICIES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("approval_policies");
/// Leases by id.
pub const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// (agent id, lease id) → 0: an agent's leases in creation order (ULIDs sort by time).
pub const AGENT_LEASES: TableDefinition<(&str, &str), u8> = TableDefinition::new("agent_leases");
/// Leases not yet in a final state → agent id.
pub const OPEN_LEASES: TableDefinition<&str, &str> = TableDefinition::new("open_leases");
/// Approvals by id.
pub const APPROVALS: TableDefinition<&str, &[u8]> = TableDefinition::new("approvals");
/// The deadline queue: (unix seconds, `lease:<id>` or `approval:<id>`) → 0.
pub const DEADLINES: TableDefinition<(i64, &str), u8> = TableDefinition::new("deadlines");

/// Webhook subscriptions by id (typed layout; converted to `kv::Table::Webhooks`).
pub const WEBHOOKS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// Each subscription's cursor: the last audit seq delivered or skipped.
pub const WEBHOOK_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("webhook_cursors");
/// Delivery attempts by (subscription id, counter).
pub const WEBHOOK_DELIVERIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("webhook_deliveries");

/// Chat messages showing an approval's card: approval id → JSON list of (target, chat,
/// message) (typed layout; converted to `kv::Table::Cards`).
pub const CARDS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("approval_cards");

/// Scheduled job records by name (typed layout; converted to `kv::Table::JobRuns`).
pub const JOB_RUNS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("job_runs");
/// Signed checkpoints (`audit` → the last event dropped by retention) (typed layout; converted
/// to `kv::Table::Checkpoints`).
pub const CHECKPOINTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");

/// Proxy services created through the API, by name: the typed layout of earlier releases,
/// converted at open onto the table seam (`kv::Table::Services`).
pub const SERVICES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("services");

/// Creates every table so that read transactions never meet a missing one.
pub fn ensure(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(SECRETS)?;
    txn.open_table(VERSIONS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(AGENTS)?;
    txn.open_table(AGENT_NAMES)?;
    txn.open_table(TOKENS)?;
    txn.open_table(REVOKED)?;
    txn.open_table(LEASES)?;
    txn.open_table(AGENT_LEASES)?;
    txn.open_table(OPEN_LEASES)?;
    txn.open_table(APPROVALS)?;
    txn.open_table(DEADLINES)?;
    // Tables on the seam: created, and converted from their typed layout once.
    use super::kv::{Table, convert_str_table};
    for (old, table) in [
        (SERVICES_V1, Table::Services),
        (GRANTS_V1, Table::Grants),
        (POLICIES_V1, Table::Policies),
        (CARDS_V1, Table::Cards),
        (WEBHOOKS_V1, Table::Webhooks),
        (JOB_RUNS_V1, Table::JobRuns),
        (CHECKPOINTS_V1, Table::Checkpoints),
        (CREDENTIALS_V1, Table::Credentials),
    ] {
        convert_str_table(&txn, old, table)?;
        txn.open_table(table.redb())?;
    }
    txn.open_table(WEBHOOK_CURSORS)?;
    txn.open_table(WEBHOOK_DELIVERIES)?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_the_typed_layout_opens_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(super::super::DB_FILE)).unwrap();
            let w = db.begin_write().unwrap();
            let grant = serde_json::json!({"id": "g1", "subject": {"kind": "namespace", "value": "entities"},
                "pattern": "shared/**", "actions": ["read"], "created_at": "2026-01-01T00:00:00Z", "created_by": "admin"});
            w.open_table(GRANTS_V1)
                .unwrap()
                .insert("g1", serde_json::to_vec(&grant).unwrap().as_slice())
                .unwrap();
            // A job run written with unix integers, as earlier releases did.
            w.open_table(JOB_RUNS_V1)
                .unwrap()
                .insert("digest", br#"{"known_since":1796000000,"last_started":null,"last_finished":null,"last_result":null,"last_message":null}"#.as_slice())
                .unwrap();
            // An admin token of an earlier release: it must still authenticate.
            w.open_table(CREDENTIALS_V1)
                .unwrap()
                .insert(
                    "ab12",
                    br#"{"id":"c1","kind":"admin","agent_id":null,"created_at":"2026-01-01T00:00:00Z","revoked_at":null}"#.as_slice(),
                )
                .unwrap();
            w.commit().unwrap();
        }
        let (store, writer) =
            crate::store::Store::open(dir.path(), crate::crypto::Keyring::generate(), 16).unwrap();
        let grants = store.list_grants().unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].id, "g1");
        let run = store.read_job_run("digest").unwrap().unwrap();
        assert_eq!(run.known_since, 1_796_000_000);
        let (cred, _) = store.find_credential_and_agent("ab12").unwrap().unwrap();
        assert_eq!(cred.id, "c1");
        assert_eq!(store.list_admin_tokens().unwrap().len(), 1);
        drop(store);
        writer.join();
    }
}
