//! redb table definitions. Records are JSON so that fields can be added without migrations.

use redb::{Database, TableDefinition};

use super::StoreError;
use super::keys::Key;
use super::kv::{Table, convert_str_table, convert_table, json_value};

// The typed layout of earlier releases: each table is converted once, at open, onto the table
// seam (`kv::Table`), in the same transaction that creates the seam's tables.

/// Secret records by full path.
const SECRETS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
/// Secret versions by (full path, version).
const VERSIONS_V1: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("secret_versions");
/// The audit log by seq.
const AUDIT_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Agents by id.
pub(super) const AGENTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// Agent names → ids.
const AGENT_NAMES_V1: TableDefinition<&str, &str> = TableDefinition::new("agent_names");
/// Credentials by SHA-256 (hex) of the secret.
pub(super) const CREDENTIALS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");
/// Scoped tokens by id.
const TOKENS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Revoked sessions and tasks → revocation time (unix ns).
const REVOKED_V1: TableDefinition<&str, u128> = TableDefinition::new("revoked_bindings");
/// Grants by id.
pub(super) const GRANTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");
/// Approval-matrix overrides by pattern.
const POLICIES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("approval_policies");
/// Leases by id.
pub(super) const LEASES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// (agent id, lease id) → 0.
const AGENT_LEASES_V1: TableDefinition<(&str, &str), u8> = TableDefinition::new("agent_leases");
/// Open leases → agent id.
const OPEN_LEASES_V1: TableDefinition<&str, &str> = TableDefinition::new("open_leases");
/// Approvals by id.
const APPROVALS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("approvals");
/// The deadline queue: (unix seconds, key) → 0.
pub(super) const DEADLINES_V1: TableDefinition<(i64, &str), u8> = TableDefinition::new("deadlines");
/// Webhook subscriptions by id.
const WEBHOOKS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// Each subscription's cursor.
const WEBHOOK_CURSORS_V1: TableDefinition<&str, u64> = TableDefinition::new("webhook_cursors");
/// Delivery attempts by (subscription id, counter).
const WEBHOOK_DELIVERIES_V1: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("webhook_deliveries");
/// Approval cards by approval id.
const CARDS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("approval_cards");
/// Scheduled job records by name.
pub(super) const JOB_RUNS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("job_runs");
/// Signed checkpoints.
const CHECKPOINTS_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// Proxy services created through the API, by name.
const SERVICES_V1: TableDefinition<&str, &[u8]> = TableDefinition::new("services");

/// Creates every table of the seam, converting a file of the typed layout first, so that
/// read transactions never meet a missing table.
pub fn ensure(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    convert_table(&txn, VERSIONS_V1, Table::Versions, |(p, v), val| {
        Ok(((p, v).encode(), val.to_vec()))
    })?;
    convert_table(&txn, AUDIT_V1, Table::Audit, |seq, val| {
        Ok((seq.encode(), val.to_vec()))
    })?;
    convert_table(&txn, AGENT_NAMES_V1, Table::AgentNames, |k, v| {
        Ok((k.encode(), json_value(v)?))
    })?;
    convert_table(&txn, REVOKED_V1, Table::Revoked, |k, v| {
        Ok((k.encode(), json_value(v)?))
    })?;
    convert_table(&txn, AGENT_LEASES_V1, Table::AgentLeases, |(a, l), v| {
        Ok(((a, l).encode(), json_value(v)?))
    })?;
    convert_table(&txn, OPEN_LEASES_V1, Table::OpenLeases, |k, v| {
        Ok((k.encode(), json_value(v)?))
    })?;
    convert_table(&txn, DEADLINES_V1, Table::Deadlines, |(at, key), v| {
        Ok(((at, key).encode(), json_value(v)?))
    })?;
    convert_table(&txn, WEBHOOK_CURSORS_V1, Table::WebhookCursors, |k, v| {
        Ok((k.encode(), json_value(v)?))
    })?;
    convert_table(
        &txn,
        WEBHOOK_DELIVERIES_V1,
        Table::WebhookDeliveries,
        |(id, n), val| Ok(((id, n).encode(), val.to_vec())),
    )?;
    for (old, table) in [
        (SECRETS_V1, Table::Secrets),
        (AGENTS_V1, Table::Agents),
        (TOKENS_V1, Table::Tokens),
        (LEASES_V1, Table::Leases),
        (APPROVALS_V1, Table::Approvals),
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
    }
    for table in Table::ALL {
        txn.open_table(table.redb())?;
    }
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
