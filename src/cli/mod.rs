//! The command-line client: talks to the daemon over HTTP with LATCHKEY_ADDR / LATCHKEY_TOKEN.
//!
//! One module per command group (`secret`, `agent`, `token`, `import`, `audit`, `keys`,
//! `lease`, `approvals`/`approve`/`deny`/`approver`, `grant`, `policy`, `run`, `export`, `jobs`;
//! `run` has its leases in `run_leases` and its child process in `run_child`);
//! `client` wraps reqwest and turns every failure into one clear line. Output is a human
//! table or `key: value` lines by default, the daemon's raw JSON with `--json`. Secret values
//! are never taken from argv, and printed only on an explicit read (`lease read`,
//! `lease request --reveal`), alone on stdout; `run` hands them to a child's environment only,
//! and `export` (admin, audited) writes them to a 0600 file or stdout.

/// `println!` that ends the process quietly when stdout is a closed pipe (`… | head`).
/// Defined before the `mod` lines so every command module sees it.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod admin_tokens;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod client;
pub mod console;
pub mod docs;
pub mod examples;
pub mod exit;
pub mod export;
pub mod grants;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod lease_wait;
pub mod leases;
pub mod policies;
pub mod run;
mod run_child;
mod run_leases;
pub mod secrets;
pub mod status;
pub mod tokens;
pub mod value;
pub mod webhooks;

use serde_json::Value;

/// A time as the API gives it (RFC 3339), or `-`; an older daemon's unix seconds are shown
/// the same way.
pub(crate) fn when(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_i64()
            .and_then(crate::util::rfc3339_of)
            .unwrap_or_else(|| "-".into()),
        _ => "-".into(),
    }
}

/// The daemon's address when neither --addr nor LATCHKEY_ADDR is given.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

/// Options of every client command, accepted before or after the subcommand
/// (`latchkey --json secret ls` and `latchkey secret ls --json` are the same).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Global options")]
pub struct GlobalOpts {
    /// The daemon's address.
    #[arg(
        long,
        env = "LATCHKEY_ADDR",
        hide_env_values = true,
        default_value = DEFAULT_ADDR,
        value_name = "URL",
        global = true
    )]
    pub addr: String,
    /// Bearer credential: an admin token, agent key, scoped token or approver token. Prefer
    /// the environment variable: a value on the command line is visible to other local users.
    #[arg(
        long,
        env = "LATCHKEY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    pub token: Option<String>,
    /// Print the daemon's JSON answer instead of tables and lines.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Client commands: each talks to a running daemon.
#[derive(clap::Subcommand)]
pub enum ClientCommand {
    /// Show who the token is: admin, approver, agent or scoped token, with its scopes,
    /// namespace and expiry.
    Whoami,
    /// Show the daemon's address, version, readiness and approval channels.
    ///
    /// Works without a token (readiness only); with one it also shows the daemon's version.
    /// Exits non-zero when the daemon is unreachable (3) or not ready (1).
    Status,
    /// Store, describe, list, delete, restore and roll back secrets (values are never shown).
    Secret {
        #[command(subcommand)]
        cmd: secrets::SecretCommand,
    },
    /// Register and manage agents (by id or unique name).
    Agent {
        #[command(subcommand)]
        cmd: agents::AgentCommand,
    },
    /// Mint and revoke scoped tokens.
    Token {
        #[command(subcommand)]
        cmd: tokens::TokenCommand,
    },
    /// List, mint and revoke admin tokens (admin; audited).
    AdminToken {
        #[command(subcommand)]
        cmd: admin_tokens::AdminTokenCommand,
    },
    /// Sign in to the web console with a one-time link; list and end console sessions
    /// (admin).
    Console {
        #[command(subcommand)]
        cmd: console::ConsoleCommand,
    },
    /// Import secrets from files.
    Import {
        #[command(subcommand)]
        cmd: import::ImportCommand,
    },
    /// Read and verify the audit log (admin).
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCommand,
    },
    /// Audit webhook subscriptions (admin).
    Webhook {
        #[command(subcommand)]
        cmd: webhooks::WebhookCommand,
    },
    /// Proxy services (admin).
    Service {
        #[command(subcommand)]
        cmd: webhooks::ServiceCommand,
    },
    /// Manage the keyring's key-encryption keys (admin).
    Keys {
        #[command(subcommand)]
        cmd: keys::KeysCommand,
    },
    /// Request, wait for, show, list, revoke and read leases.
    Lease {
        #[command(subcommand)]
        cmd: leases::LeaseCommand,
    },
    /// List and show approvals waiting for a decision.
    Approvals {
        #[command(subcommand)]
        cmd: approvals::ApprovalsCommand,
    },
    /// Approve a pending approval.
    Approve(VoteArgs),
    /// Deny a pending approval (one deny decides it).
    Deny(VoteArgs),
    /// Issue approver tokens (admin).
    Approver {
        #[command(subcommand)]
        cmd: approvals::ApproverCommand,
    },
    /// Create, list and delete grants (admin).
    Grant {
        #[command(subcommand)]
        cmd: grants::GrantCommand,
    },
    /// Set, list and remove approval policies for path patterns (admin).
    Policy {
        #[command(subcommand)]
        cmd: policies::PolicyCommand,
    },
    /// Run a command with secrets in its environment (single-use leases, revoked after).
    Run(run::RunArgs),
    /// Export secret values for migration, as dotenv or JSON (admin; audited).
    Export(export::ExportArgs),
    /// List the scheduled jobs and run one now (admin).
    Jobs {
        #[command(subcommand)]
        cmd: jobs::JobsCommand,
    },
    /// Serve the MCP tools on stdin/stdout for an MCP client, as the agent whose key or
    /// scoped token is in LATCHKEY_TOKEN (logs on stderr).
    Mcp,
}

/// Arguments of `approve` and `deny`.
#[derive(clap::Args)]
pub struct VoteArgs {
    /// Approval id (see `latchkey approvals ls`).
    id: String,
    /// Why (at most 400 characters; recorded with the vote).
    #[arg(long)]
    reason: Option<String>,
}

/// Commands that do not talk to the daemon: --addr and --token mean nothing to them, and
/// their help does not list them.
pub const LOCAL_COMMANDS: &[&str] = &["init", "serve", "completions", "man"];

/// Commands whose output is not the daemon's answer, so --json would change nothing.
pub const NO_JSON_COMMANDS: &[&str] = &["init", "serve", "completions", "man", "run", "mcp"];

/// The command tree as the binary uses it for parsing, help, completions and man pages: an
/// example under every command, and the global options hidden where they do nothing.
pub fn decorate(cmd: clap::Command) -> clap::Command {
    use clap::{Arg, ArgAction};
    let mut cmd = examples::add_examples(cmd);
    for name in LOCAL_COMMANDS {
        if cmd.find_subcommand(name).is_none() {
            continue;
        }
        // A subcommand's own argument of the same id keeps the global one out of it (and out
        // of its help); given anyway, [`misplaced_global`] refuses it.
        cmd = cmd.mut_subcommand(name, |sub| {
            sub.arg(Arg::new("addr").long("addr").hide(true))
                .arg(Arg::new("token").long("token").hide(true))
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .hide(true),
                )
        });
    }
    cmd
}

/// Why a global option given on the command line does nothing for the command it was given
/// to (`--json` on `run`, `--addr` on `serve`, …), for a usage error; None when all is well.
/// Values from the environment (LATCHKEY_ADDR, LATCHKEY_TOKEN) are never refused.
pub fn misplaced_global(matches: &clap::ArgMatches) -> Option<(String, String)> {
    use clap::parser::ValueSource;
    let (name, sub) = matches.subcommand()?;
    let given = |id: &str| {
        [matches, sub].iter().any(|m| {
            m.try_get_raw(id).is_ok_and(|v| v.is_some())
                && m.value_source(id) == Some(ValueSource::CommandLine)
        })
    };
    if given("json") && NO_JSON_COMMANDS.contains(&name) {
        let why = match name {
            "run" => "it prints only what the command it runs prints",
            "mcp" => "its output is the MCP protocol",
            "completions" | "man" => "its output is a script or a man page",
            _ => "it does not print a daemon answer",
        };
        return Some((
            name.into(),
            format!("--json does nothing for `latchkey {name}`: {why}"),
        ));
    }
    if LOCAL_COMMANDS.contains(&name) {
        for opt in ["addr", "token"] {
            if given(opt) {
                let hint = if name == "serve" && opt == "addr" {
                    " (the daemon listens on --listen)"
                } else {
                    ""
                };
                return Some((
                    name.into(),
                    format!(
                        "--{opt} is for the commands that talk to a daemon, not `latchkey {name}`{hint}"
                    ),
                ));
            }
        }
    }
    None
}

/// Runs a client command with the global options.
pub async fn execute(cmd: ClientCommand, opts: GlobalOpts) -> anyhow::Result<()> {
    let opts = &opts;
    match cmd {
        ClientCommand::Whoami => status::whoami(opts).await,
        ClientCommand::Status => status::status(opts).await,
        ClientCommand::Secret { cmd } => secrets::run(opts, cmd).await,
        ClientCommand::Agent { cmd } => agents::run(opts, cmd).await,
        ClientCommand::Token { cmd } => tokens::run(opts, cmd).await,
        ClientCommand::AdminToken { cmd } => admin_tokens::run(opts, cmd).await,
        ClientCommand::Console { cmd } => console::run(opts, cmd).await,
        ClientCommand::Import { cmd } => import::run(opts, cmd).await,
        ClientCommand::Audit { cmd } => audit::run(opts, cmd).await,
        ClientCommand::Keys { cmd } => keys::run(opts, cmd).await,
        ClientCommand::Lease { cmd } => leases::run(opts, cmd).await,
        ClientCommand::Approvals { cmd } => approvals::run(opts, cmd).await,
        ClientCommand::Approve(a) => approvals::vote(opts, &a.id, "approve", a.reason).await,
        ClientCommand::Deny(a) => approvals::vote(opts, &a.id, "deny", a.reason).await,
        ClientCommand::Approver { cmd } => approvals::run_approver(opts, cmd).await,
        ClientCommand::Grant { cmd } => grants::run(opts, cmd).await,
        ClientCommand::Policy { cmd } => policies::run(opts, cmd).await,
        ClientCommand::Run(a) => run::run(opts, a).await,
        ClientCommand::Export(a) => export::run(opts, a).await,
        ClientCommand::Jobs { cmd } => jobs::run(opts, cmd).await,
        ClientCommand::Webhook { cmd } => webhooks::run(opts, cmd).await,
        ClientCommand::Service { cmd } => webhooks::run_service(opts, cmd).await,
        ClientCommand::Mcp => {
            // Refused before serving when no token is set, as every client command is.
            client::Client::new(opts)?;
            let token = opts.token.as_deref().unwrap_or_default().trim();
            crate::mcp::stdio::run(&opts.addr, token).await
        }
    }
}

/// Writes to stdout; a closed pipe ends the process with success, as `head` expects.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// Prints a JSON value, pretty, on stdout.
pub(crate) fn print_json(v: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A field as display text: strings bare, null or absent as `-`, the rest as compact JSON.
pub(crate) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Prints the raw JSON with `--json`, otherwise what `human` prints.
pub(crate) fn output(opts: &GlobalOpts, v: &Value, human: impl FnOnce(&Value)) {
    if opts.json {
        print_json(v);
    } else {
        human(v);
    }
}

/// `label` when the boolean field `key` is true, else an empty cell.
pub(crate) fn flag(v: &Value, key: &str, label: &str) -> String {
    if v.get(key) == Some(&Value::Bool(true)) {
        label.into()
    } else {
        String::new()
    }
}

/// An array field, or nothing.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Prints an object's fields as `key: value` lines: those in `order` first, then the rest.
pub(crate) fn print_fields(v: &Value, order: &[&str]) {
    let Some(obj) = v.as_object() else {
        print_json(v);
        return;
    };
    for key in order.iter().copied().filter(|k| obj.contains_key(*k)) {
        outln!("{key}: {}", text(v, key));
    }
    for key in obj.keys().filter(|k| !order.contains(&k.as_str())) {
        outln!("{key}: {}", text(v, key));
    }
}

/// Prints rows as left-aligned columns separated by two spaces, under a header.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    write_stdout(format_args!("{}", format_table(header, rows)));
}

fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<pad$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        opts: GlobalOpts,
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    #[test]
    fn fields_as_text() {
        let v = json!({"a": "x", "b": null, "c": 3, "d": {"k": true}});
        assert_eq!(text(&v, "a"), "x");
        assert_eq!(text(&v, "b"), "-");
        assert_eq!(text(&v, "c"), "3");
        assert_eq!(text(&v, "d"), r#"{"k":true}"#);
        assert_eq!(text(&v, "missing"), "-");
    }

    #[test]
    fn tables_align() {
        let t = format_table(
            &["PATH", "TYPE"],
            &[vec!["a/long/path".into(), "api_key".into()]],
        );
        assert_eq!(t, "PATH         TYPE\na/long/path  api_key\n");
    }

    #[test]
    fn command_line_parses() {
        use clap::CommandFactory;
        Top::command().debug_assert();
        // The global options go before or after the subcommand, or in between.
        for args in [
            &["lk", "secret", "ls", "--json", "--addr", "http://x:1"][..],
            &["lk", "--json", "--addr", "http://x:1", "secret", "ls"],
            &["lk", "--json", "secret", "--addr", "http://x:1", "ls"],
        ] {
            let t = Top::try_parse_from(args).unwrap();
            assert!(matches!(t.cmd, ClientCommand::Secret { .. }));
            assert!(t.opts.json, "{args:?}");
            assert_eq!(t.opts.addr, "http://x:1", "{args:?}");
        }
        assert!(Top::try_parse_from(["lk", "import", ".env", "f", "--namespace", "n"]).is_ok());
        assert!(Top::try_parse_from(["lk", "import", "env", "f", "--namespace", "n"]).is_ok());
        // The value of a secret never comes from argv.
        assert!(Top::try_parse_from(["lk", "secret", "put", "p", "hunter2"]).is_err());
        // Revocation needs exactly one target.
        assert!(Top::try_parse_from(["lk", "token", "revoke"]).is_err());
        assert!(Top::try_parse_from(["lk", "token", "revoke", "t", "--agent", "a"]).is_err());
    }

    #[test]
    fn lease_approval_and_grant_commands_parse() {
        let ok = |args: &[&str]| {
            let mut all = vec!["lk"];
            all.extend_from_slice(args);
            Top::try_parse_from(all).is_ok()
        };
        assert!(ok(&[
            "lease",
            "request",
            "/shared/x",
            "--wait",
            "--reveal",
            "--timeout",
            "20",
            "--key",
            "A",
            "--key",
            "B",
            "--reason",
            "deploy",
            "--json"
        ]));
        assert!(!ok(&["lease", "request", "p", "--action", "write"]));
        assert!(ok(&["lease", "show", "l1", "--wait", "60"]));
        assert!(!ok(&["lease", "show", "l1", "--wait", "61"]));
        assert!(ok(&["lease", "ls", "--state", "pending"]));
        assert!(ok(&["lease", "read", "l1"]) && ok(&["lease", "revoke", "l1"]));
        assert!(ok(&["approvals", "ls", "--all", "--json"]) && ok(&["approvals", "show", "a1"]));
        assert!(ok(&["approve", "a1", "--reason", "ok"]) && ok(&["deny", "a1"]));
        let t = Top::try_parse_from(["lk", "deny", "a1", "--addr", "http://x:1"]).unwrap();
        let ClientCommand::Deny(v) = t.cmd else {
            panic!("not deny")
        };
        assert_eq!((v.id.as_str(), t.opts.addr.as_str()), ("a1", "http://x:1"));
        assert!(ok(&["approver", "token", "alice"]));
        assert!(ok(&[
            "grant",
            "create",
            "--namespace",
            "entities",
            "--pattern",
            "shared/**",
            "--action",
            "read",
            "--action",
            "proxy",
            "--max-ttl",
            "60",
            "--max-per-hour",
            "5"
        ]));
        // Exactly one subject, at least one action.
        assert!(!ok(&[
            "grant",
            "create",
            "--pattern",
            "p",
            "--action",
            "read"
        ]));
        assert!(!ok(&[
            "grant",
            "create",
            "--agent",
            "a",
            "--namespace",
            "n",
            "--pattern",
            "p",
            "--action",
            "read"
        ]));
        assert!(!ok(&["grant", "create", "--agent", "a", "--pattern", "p"]));
        assert!(ok(&["grant", "ls"]) && ok(&["grant", "rm", "g1"]));
        assert!(ok(&[
            "policy",
            "set",
            "prod/**",
            "--require",
            "approval",
            "--quorum",
            "2",
            "--deadline",
            "60",
            "--on-deadline",
            "grant",
            "--tier",
            "1",
            "--tier",
            "2",
            "--sensitivity",
            "critical"
        ]));
        assert!(!ok(&["policy", "set", "prod/**", "--require", "maybe"]));
        assert!(!ok(&[
            "policy",
            "set",
            "prod/**",
            "--require",
            "instant",
            "--tier",
            "6"
        ]));
        assert!(ok(&["policy", "ls"]) && ok(&["policy", "rm", "prod/**"]));
    }
}
