//! The command-line client: talks to the daemon over HTTP with LATCHKEY_ADDR / LATCHKEY_TOKEN.

/// Client commands (placeholder until the CLI lands).
#[derive(clap::Subcommand)]
pub enum ClientCommand {}

/// Runs a client command.
pub async fn execute(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {}
}
