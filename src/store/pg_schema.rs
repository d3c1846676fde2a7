//! The PostgreSQL schema of the table seam and its migration (see `pg.rs`, item 3).
//!
//! `migrate` runs on a connection of its own, under a session advisory lock, so several
//! daemons starting at once migrate one after the other; every step is idempotent (`IF NOT
//! EXISTS`, `ON CONFLICT DO NOTHING`), so the second finds nothing to do. A database whose
//! `schema_version` is newer than [`SCHEMA_VERSION`] is refused before anything is changed.

use std::time::Duration;

use tokio_postgres::NoTls;

use super::kv::{KvError, Table};
use super::pg::{PgOptions, classify};

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// The session advisory lock held while migrating ("latchkey" in ASCII).
pub const MIGRATE_LOCK: i64 = 0x6c61_7463_686b_6579;

/// The DDL of version 1 (each statement idempotent).
fn ddl_v1() -> String {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS chain_head (
             id int PRIMARY KEY CHECK (id = 1),
             seq bigint NOT NULL,
             hash text NOT NULL);
         CREATE TABLE IF NOT EXISTS duties (
             name text PRIMARY KEY,
             holder text NOT NULL,
             fence bigint NOT NULL,
             expires_at timestamptz NOT NULL);\n",
    );
    for t in Table::ALL {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL);\n",
            t.name()
        ));
    }
    sql
}

/// Creates what is missing and records the schema version (see the module doc).
pub(super) async fn migrate(
    config: &tokio_postgres::Config,
    opts: &PgOptions,
    genesis: &str,
) -> Result<(), KvError> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(classify)?;
    let task = tokio::spawn(connection);
    // Waiting for another daemon's migration counts against this timeout: be generous.
    let timeout = opts.statement_timeout.max(Duration::from_secs(60));
    let out = async {
        client
            .batch_execute(&format!("SET statement_timeout = {}", timeout.as_millis()))
            .await
            .map_err(classify)?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
            .await
            .map_err(classify)?;
        let out = migrate_locked(&mut client, genesis).await;
        // Also released when the connection closes (below), whatever happened.
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
            .await;
        out
    }
    .await;
    drop(client);
    let _ = task.await;
    out
}

async fn migrate_locked(client: &mut tokio_postgres::Client, genesis: &str) -> Result<(), KvError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS latchkey_meta (key text PRIMARY KEY, value text)",
        )
        .await
        .map_err(classify)?;
    let found = client
        .query_opt(
            "SELECT value FROM latchkey_meta WHERE key = 'schema_version'",
            &[],
        )
        .await
        .map_err(classify)?;
    if let Some(row) = found {
        let value: Option<String> = row.try_get(0).map_err(classify)?;
        let version: i64 = value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| KvError::Schema(format!("unreadable schema_version {value:?}")))?;
        if version > SCHEMA_VERSION {
            return Err(KvError::Schema(format!(
                "the database has schema version {version}, newer than this build's \
                 {SCHEMA_VERSION}: run a newer latchkey"
            )));
        }
    }
    let tx = client.transaction().await.map_err(classify)?;
    tx.batch_execute(&ddl_v1()).await.map_err(classify)?;
    tx.execute(
        "INSERT INTO chain_head (id, seq, hash) VALUES (1, 1, $1) ON CONFLICT (id) DO NOTHING",
        &[&genesis],
    )
    .await
    .map_err(classify)?;
    tx.execute(
        "INSERT INTO latchkey_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION.to_string()],
    )
    .await
    .map_err(classify)?;
    tx.commit().await.map_err(classify)
}
