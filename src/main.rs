//! The `latchkey` binary: parses the command line, sets up logging and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use latchkey::config::Config;

/// mimalloc: the request path allocates a lot of small short-lived buffers, which glibc's
/// allocator serves markedly slower under threads (about a fifth of the proxy path's CPU).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Secrets for AI agents, with humans in the loop"
)]
struct Cli {
    #[command(flatten)]
    global: latchkey::cli::GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: keyring, master key and the first admin token (printed once).
    Init {
        /// Where to create it [env: LATCHKEY_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
        /// Initialise a PostgreSQL database instead (`postgres://user:pass@host/db`; the same as
        /// `[store] backend = "postgres"` with `url`, or LATCHKEY_STORE_URL / _FILE, which keep
        /// the password out of the process list).
        #[arg(long)]
        store_url: Option<String>,
    },
    /// Run the daemon.
    Serve {
        /// Development mode: initialise ./latchkey-data when needed, listen on 127.0.0.1:8200,
        /// print the development admin token as `export` lines (kept in the data directory as
        /// `dev-admin-token`, 0600, and the same on every start while it is not revoked).
        #[arg(long)]
        dev: bool,
        /// Address to listen on [env: LATCHKEY_LISTEN].
        #[arg(long)]
        listen: Option<String>,
        /// Data directory [env: LATCHKEY_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
    },
    /// Copy a whole store into an empty one: redb → PostgreSQL or back (secrets with every
    /// version, identities, grants, leases, approvals, webhooks with their cursors, the audit
    /// log). The copy verifies and the same keys work against it (with the same master key).
    #[command(
        after_help = "Examples:\n  latchkey migrate --from /var/lib/latchkey --to postgres://latchkey@db/latchkey\n  LATCHKEY_STORE_URL_FILE=/run/secrets/db latchkey migrate --from /var/lib/latchkey   # --to: the configured store\n  latchkey migrate --to /var/lib/latchkey-copy   # --from: the configured store"
    )]
    Migrate {
        /// A data directory or postgres:// URL (default: the configured store).
        #[arg(long)]
        from: Option<String>,
        /// A data directory or postgres:// URL (default: the configured store); must be empty.
        #[arg(long)]
        to: Option<String>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
    },
    /// Write a consistent snapshot of a store to a file (0600; values stay sealed). A redb
    /// store must not be in use by a daemon; a PostgreSQL one may be.
    #[command(
        after_help = "Examples:\n  latchkey backup --to latchkey-2026-12-03.backup\n  latchkey backup --from /var/lib/latchkey --to /backups/latchkey.backup"
    )]
    Backup {
        /// The file to write.
        #[arg(long)]
        to: PathBuf,
        /// A data directory or postgres:// URL (default: the configured store).
        #[arg(long)]
        from: Option<String>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
    },
    /// Load a backup file into an empty store (a data directory or a PostgreSQL database).
    #[command(
        after_help = "Examples:\n  latchkey restore --from /backups/latchkey.backup --to /var/lib/latchkey\n  LATCHKEY_STORE_URL_FILE=/run/secrets/db latchkey restore --from latchkey.backup   # --to: the configured store"
    )]
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// A data directory or postgres:// URL (default: the configured store); must be empty.
        #[arg(long)]
        to: Option<String>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: latchkey::cli::docs::Shell,
    },
    /// Print the man page (roff), or write one page per command into --dir.
    Man {
        /// Write latchkey.1, latchkey-secret.1, latchkey-secret-put.1, … into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(latchkey::cli::ClientCommand),
}

/// The command line's definition: the parser, `--help`, completions and man pages all use it.
fn command() -> clap::Command {
    latchkey::cli::decorate(Cli::command())
}

/// Parses the command line; a usage error (including a global option where it does
/// nothing) exits with code 2.
fn parse() -> Cli {
    let cmd = command();
    let matches = cmd.clone().get_matches();
    if let Some((name, message)) = latchkey::cli::misplaced_global(&matches) {
        let mut cmd = cmd;
        cmd.build(); // names the subcommand `latchkey NAME` in the usage line
        let mut target = cmd.find_subcommand(&name).cloned().unwrap_or(cmd);
        target
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn load_config(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> anyhow::Result<Config> {
    let mut cfg = Config::load(file.as_deref())?;
    if cfg.services_dir.is_empty()
        && let Some(dir) = file.as_deref().and_then(|f| f.parent())
    {
        // Service files live next to the config file.
        cfg.services_dir = dir.join("services").display().to_string();
    }
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = listen {
        cfg.listen = l;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(latchkey::util::color_wanted(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ));
    if cfg.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(
    dev: bool,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    // First, so that a SIGTERM during start-up is a graceful stop, not a kill.
    let shutdown = latchkey::shutdown_signal();
    let mut cfg = load_config(config, data_dir, listen.clone())?;
    if dev {
        // In development the admin token may answer approvals, so the whole flow works
        // from the CLI alone.
        cfg.approvals.admin_is_approver = true;
        // …and a newcomer can point a webhook at a receiver on this machine.
        cfg.webhooks.allow_loopback = true;
    }
    if dev && listen.is_none() && std::env::var_os("LATCHKEY_LISTEN").is_none() {
        cfg.listen = "127.0.0.1:8200".into();
    }
    init_tracing(&cfg);
    // Everything that can be refused is checked before the port is taken: the config (above),
    // the data directory, the master key, the database's lock.
    let mut token = None;
    if dev {
        if !latchkey::init::is_initialised(&cfg.data_dir) {
            latchkey::init::create_keyring(&cfg.data_dir)?;
            eprintln!(
                "initialised {} (development mode: the master key is in {}/master.key)",
                cfg.data_dir.display(),
                cfg.data_dir.display()
            );
        }
        token = Some(latchkey::init::dev_admin_token(&cfg).await?.0);
    }
    let listen = cfg.listen.clone();
    let opened = latchkey::open(cfg)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    if let Some(token) = token {
        let addr = format!("http://{}", listener.local_addr()?);
        println!("export LATCHKEY_ADDR={addr}");
        println!("export LATCHKEY_TOKEN={token}");
        println!(
            "# try: curl -s -H \"Authorization: Bearer $LATCHKEY_TOKEN\" $LATCHKEY_ADDR/v1/secrets"
        );
    }
    opened.serve(listener, shutdown).await
}

/// A store named on the command line, or the configured one.
fn place(arg: Option<&str>, cfg: &Config) -> latchkey::store::transfer::Place {
    use latchkey::store::transfer::Place;
    match arg {
        Some(a) => Place::parse(a),
        None if cfg.store.backend == latchkey::config::StoreBackend::Postgres => {
            Place::Pg(latchkey::pg_options(cfg))
        }
        None => Place::Dir(cfg.data_dir.clone()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse();
    let client = matches!(cli.command, Command::Client(_));
    let result = match cli.command {
        Command::Init { data_dir, config, store_url } => async {
            let mut cfg = load_config(config, data_dir, None)?;
            if let Some(url) = store_url {
                cfg.store.backend = latchkey::config::StoreBackend::Postgres;
                cfg.store.url = latchkey::config::Credential(url);
            }
            let (token, generated) = if cfg.store.backend == latchkey::config::StoreBackend::Postgres {
                let shown = latchkey::store::pg::PgUrl::new(cfg.store.url.0.clone()).redacted();
                let out = latchkey::init_postgres(&cfg, "created by latchkey init").await?;
                println!("initialised the PostgreSQL database at {shown}");
                out
            } else {
                let out = latchkey::init::init(&cfg).await?;
                println!("initialised {}", cfg.data_dir.display());
                out
            };
            if generated {
                println!("master key: {}/master.key (move it to LATCHKEY_MASTER_KEY_FILE for production)", cfg.data_dir.display());
            }
            println!("admin token (shown once, store it now):\n{token}");
            Ok(())
        }
        .await,
        Command::Serve { dev, listen, data_dir, config } => serve(dev, listen, data_dir, config).await,
        Command::Migrate { from, to, config } => async {
            let cfg = load_config(config, None, None)?;
            let (from, to) = (place(from.as_deref(), &cfg), place(to.as_deref(), &cfg));
            let (f, t) = (from.shown(), to.shown());
            let n = tokio::task::spawn_blocking(move || latchkey::store::transfer::migrate(&from, &to)).await??;
            println!("copied {n} rows from {f} to {t}; start the daemon on it with the same master key, then run `latchkey audit verify`");
            Ok(())
        }
        .await,
        Command::Backup { to, from, config } => async {
            let cfg = load_config(config, None, None)?;
            let from = place(from.as_deref(), &cfg);
            let (f, file) = (from.shown(), to.display().to_string());
            let n = tokio::task::spawn_blocking(move || latchkey::store::transfer::backup(&from, &to)).await??;
            println!("wrote {n} rows of {f} to {file} (values sealed: keep the master key apart)");
            Ok(())
        }
        .await,
        Command::Restore { from, to, config } => async {
            let cfg = load_config(config, None, None)?;
            let to = place(to.as_deref(), &cfg);
            let (file, t) = (from.display().to_string(), to.shown());
            let n = tokio::task::spawn_blocking(move || latchkey::store::transfer::restore(&from, &to)).await??;
            println!("restored {n} rows from {file} into {t}");
            Ok(())
        }
        .await,
        Command::Completions { shell } => {
            latchkey::cli::docs::print(&latchkey::cli::docs::completions(command(), shell));
            Ok(())
        }
        Command::Man { dir: None } => latchkey::cli::docs::man_page(command()).map(|page| latchkey::cli::docs::print(&page)),
        Command::Man { dir: Some(dir) } => latchkey::cli::docs::man_pages(command(), &dir).map(|pages| {
            eprintln!("wrote {} man pages to {}", pages.len(), dir.display());
        }),
        Command::Client(cmd) => latchkey::cli::execute(cmd, cli.global).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            // Client commands tell failures apart (README, "Exit codes"); the rest fail with 1.
            if client {
                ExitCode::from(latchkey::cli::exit::classify(&e).code())
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The `latchkey …` invocation in an example line, split as a shell would (quotes, and the
    /// end of the command at `|`, `>`, `<`, `)`, `&`, `#`).
    fn invocation(line: &str) -> Vec<String> {
        let start = line.find("latchkey ").unwrap();
        let (mut words, mut word, mut quote) = (Vec::new(), String::new(), None);
        for c in line[start..].chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => quote = Some(c),
                (None, '|' | '>' | '<' | ')' | '&' | '#') => break,
                (None, c) if c.is_whitespace() => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                (None, c) => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_command_shows_an_example_and_every_example_parses() {
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            if !path.is_empty() && cmd.get_after_help().is_none() {
                missing.push(path.clone());
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                walk(sub, p.trim().to_string(), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), String::new(), &mut missing);
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:?}"
        );
        for (path, lines) in latchkey::cli::examples::EXAMPLES {
            for line in *lines {
                let words = invocation(line);
                assert!(
                    words.join(" ").starts_with(&format!("latchkey {path}")),
                    "the example of `{path}` runs another command: {line}"
                );
                let matches = command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                assert!(
                    latchkey::cli::misplaced_global(&matches).is_none(),
                    "{line}"
                );
                Cli::from_arg_matches(&matches).unwrap();
            }
        }
    }

    #[test]
    fn global_options_where_they_do_nothing_are_refused() {
        let refused = |args: &[&str]| {
            let m = command().try_get_matches_from(args).unwrap();
            latchkey::cli::misplaced_global(&m).map(|(_, why)| why)
        };
        assert!(
            refused(&["latchkey", "serve", "--json"])
                .unwrap()
                .contains("--json")
        );
        assert!(refused(&["latchkey", "--json", "init"]).is_some());
        assert!(refused(&["latchkey", "run", "--bundle", "/b", "--json", "--", "true"]).is_some());
        assert!(
            refused(&["latchkey", "serve", "--addr", "http://h:1"])
                .unwrap()
                .contains("--listen")
        );
        assert!(refused(&["latchkey", "completions", "bash", "--token", "t"]).is_some());
        assert!(refused(&["latchkey", "--json", "secret", "ls"]).is_none());
        assert!(refused(&["latchkey", "secret", "ls", "--json"]).is_none());
        assert!(refused(&["latchkey", "export", "p/", "--json"]).is_none());
        // The global options are not in the help of the commands that ignore them.
        let mut cmd = command();
        let help = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            !help.contains("--addr") && !help.contains("--json"),
            "{help}"
        );
    }
}
