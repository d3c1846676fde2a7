//! The `latchkey` binary: parses the command line, sets up logging and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
        #[arg(long, env = "LATCHKEY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the daemon.
    Serve {
        /// Development mode: initialise ./latchkey-data when needed, listen on 127.0.0.1:8200,
        /// print a fresh admin token as `export` lines.
        #[arg(long)]
        dev: bool,
        /// Address to listen on [env: LATCHKEY_LISTEN].
        #[arg(long)]
        listen: Option<String>,
        /// Data directory [env: LATCHKEY_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Config file.
        #[arg(long, env = "LATCHKEY_CONFIG")]
        config: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(latchkey::cli::ClientCommand),
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
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
        token = Some(latchkey::init::mint_admin_token(&cfg, "serve --dev").await?);
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init { data_dir, config } => async {
            let cfg = load_config(config, data_dir, None)?;
            let (token, generated) = latchkey::init::init(&cfg).await?;
            println!("initialised {}", cfg.data_dir.display());
            if generated {
                println!("master key: {}/master.key (move it to LATCHKEY_MASTER_KEY_FILE for production)", cfg.data_dir.display());
            }
            println!("admin token (shown once, store it now):\n{token}");
            Ok(())
        }
        .await,
        Command::Serve { dev, listen, data_dir, config } => serve(dev, listen, data_dir, config).await,
        Command::Client(cmd) => latchkey::cli::execute(cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}
