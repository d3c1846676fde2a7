//! `latchkey run --secret ENV=PATH … --bundle PATH … -- CMD ARGS…`: runs a command with
//! secrets in its environment.
//!
//! Each `--secret` and `--bundle` gets its own single-use read lease (waiting for approvers
//! when the policy asks for them, bounded by `--timeout`). The values are kept in zeroizing
//! buffers and handed to the child only through its environment (`Command::env`): never
//! argv, a file, or this process's own environment. SIGINT, SIGTERM and SIGHUP received
//! while the command runs are forwarded to it; when it ends every lease is revoked (a used
//! single-use lease is already exhausted, which the daemon answers with 409: ignored) and
//! `latchkey run` exits with the command's exit code, or 128+N when a signal N killed it.
//!
//! One copy of each value is out of our hands: the standard library's `Command` keeps the
//! environment it will pass to `execve` in ordinary strings. That `Command` is dropped as
//! soon as the child is started, and so are our own buffers (zeroized).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use zeroize::Zeroizing;

use super::client::{Client, http_error, item_url};
use super::leases::{announce_pending, ended, state};
use super::value::Revealed;
use super::{GlobalOpts, text};

/// Arguments of `run`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("inject").required(true).multiple(true).args(["secrets", "bundles"])))]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: GlobalOpts,
    /// Put the secret at PATH in the command's environment as ENV (repeat for several).
    #[arg(long = "secret", value_name = "ENV=PATH", value_parser = parse_mapping)]
    pub secrets: Vec<Mapping>,
    /// Put every entry of the env_bundle at PATH in the command's environment (repeatable).
    #[arg(long = "bundle", value_name = "PATH")]
    pub bundles: Vec<String>,
    /// Why the command needs the secrets (shown to approvers; default `latchkey run PROGRAM`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Lifetime of each lease once granted, in seconds (default: the daemon's).
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// Longest wait for approvals, in seconds, for all the leases together.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Leave LATCHKEY_TOKEN in the command's environment (it is removed by default, so the
    /// command cannot request further leases with your credential).
    #[arg(long)]
    pub keep_token: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// One `--secret ENV=PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The environment variable.
    pub env: String,
    /// The secret's path.
    pub path: String,
}

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An env_bundle key as the daemon accepts it: `[A-Za-z_][A-Za-z0-9_.]*`.
pub fn is_bundle_key(s: &str) -> bool {
    !s.starts_with('.') && is_env_name(&s.replace('.', "_"))
}

/// Parses `ENV=PATH` (checked on the command line, before any request).
fn parse_mapping(s: &str) -> Result<Mapping, String> {
    let Some((env, path)) = s.split_once('=') else {
        return Err("expected ENV=PATH, e.g. OPENAI_API_KEY=/apps/openai".into());
    };
    if env.is_empty() {
        return Err("the variable name before `=` is empty".into());
    }
    if !is_env_name(env) {
        return Err(format!(
            "{env:?} is not a valid variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    if path.is_empty() || path == "/" {
        return Err(format!("give the path of the secret after `{env}=`"));
    }
    Ok(Mapping {
        env: env.into(),
        path: path.into(),
    })
}

/// What one lease is for.
enum Want<'a> {
    Secret(&'a Mapping),
    Bundle(&'a str),
}

impl Want<'_> {
    fn path(&self) -> &str {
        match self {
            Want::Secret(m) => &m.path,
            Want::Bundle(p) => p,
        }
    }
}

/// The child's variables: name → (where it came from, value).
type Vars = BTreeMap<String, (String, Zeroizing<String>)>;

/// Runs `latchkey run`. Returns only on an error before the command started; otherwise the
/// process exits with the command's code (see [`finish`]).
pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let mut seen = BTreeMap::new();
    for m in &a.secrets {
        if let Some(other) = seen.insert(m.env.as_str(), m.path.as_str()) {
            bail!(
                "{} is given twice (--secret {0}={other} and --secret {0}={})",
                m.env,
                m.path
            );
        }
    }
    let Some(program) = a.command.first() else {
        bail!("give the command to run after `--`");
    };
    let client = Client::new(&a.opts)?;
    let program_name = program.rsplit('/').next().unwrap_or(program);
    let reason = a
        .reason
        .clone()
        .unwrap_or_else(|| format!("latchkey run {program_name}"));
    // Registered before the first request: from here on a signal is ours to handle.
    let mut signals = Signals::new()?;

    let mut wants: Vec<Want<'_>> = a.secrets.iter().map(Want::Secret).collect();
    wants.extend(a.bundles.iter().map(|b| Want::Bundle(b)));
    let mut leases: Vec<String> = Vec::new();
    let mut vars: Vars = BTreeMap::new();
    let obtained = {
        let fetch = fetch_all(&a, &client, &reason, &wants, &mut leases, &mut vars);
        tokio::select! {
            r = fetch => Ok(r),
            sig = signals.recv() => Err(sig),
        }
    };
    match obtained {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            drop(vars);
            revoke_all(&a.opts, &leases).await;
            return Err(e);
        }
        Err(sig) => {
            drop(vars);
            eprintln!(
                "latchkey: interrupted by SIG{}; revoking the leases",
                sig.name
            );
            revoke_all(&a.opts, &leases).await;
            std::process::exit(128 + sig.number);
        }
    }

    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&a.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    if !a.keep_token {
        cmd.env_remove("LATCHKEY_TOKEN");
    }
    for (k, (_, v)) in &vars {
        cmd.env(k, v.as_str());
    }
    let spawned = cmd.spawn();
    // Nothing in this process needs the values any more.
    drop(cmd);
    drop(vars);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: cannot start {program}: {e}");
            revoke_all(&a.opts, &leases).await;
            // As shells do: 127 when the command is not found, 126 when it cannot run.
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            std::process::exit(code);
        }
    };

    let status = loop {
        tokio::select! {
            st = child.wait() => break st,
            sig = signals.recv() => {
                if let Some(pid) = child.id() {
                    forward(pid, sig).await;
                }
            }
        }
    };
    revoke_all(&a.opts, &leases).await;
    let code = match status {
        Ok(st) => exit_code(st),
        Err(e) => {
            eprintln!("latchkey: lost track of {program}: {e}");
            1
        }
    };
    finish(code)
}

/// Ends the process with the command's code. `main` maps `Ok` to 0 and `Err` to 1, so the
/// child's own code cannot travel back through a `Result`: we exit here instead, after every
/// lease is revoked and every value buffer dropped (nothing else is left to clean up).
fn finish(code: i32) -> ! {
    std::process::exit(code)
}

/// A child's exit code as a shell reports it: its code, or 128+N when signal N killed it.
fn exit_code(st: std::process::ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

/// Requests, waits for and reads every lease in turn, filling `leases` (for revocation, as
/// soon as each exists) and `vars`. The approval wait is shared by all of them.
async fn fetch_all(
    a: &RunArgs,
    client: &Client,
    reason: &str,
    wants: &[Want<'_>],
    leases: &mut Vec<String>,
    vars: &mut Vars,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    for want in wants {
        let path = want.path();
        let mut body = json!({"path": path, "action": "read", "uses": 1, "reason": reason});
        if let (Some(ttl), Some(obj)) = (a.ttl, body.as_object_mut()) {
            obj.insert("ttl_seconds".into(), Value::from(ttl));
        }
        let mut lease = client
            .post("/v1/leases", &body)
            .await
            .with_context(|| format!("lease on {path}"))?;
        let id = text(&lease, "id");
        leases.push(id.clone());
        if state(&lease) == "pending" {
            eprintln!("lease {id} on {path}: pending approval");
            announce_pending(&lease);
            let left = deadline.saturating_duration_since(Instant::now());
            lease = super::lease_wait::wait(&a.opts, lease, left.as_secs()).await?;
        }
        match state(&lease).as_str() {
            "active" => {}
            "pending" => bail!(
                "lease {id} on {path} is still pending after {} s (--timeout); nothing was run",
                a.timeout
            ),
            _ => bail!("{}; nothing was run", ended(&lease)),
        }
        let url = format!("{}/secret", item_url("leases", &id)?);
        let revealed = Revealed::parse(&client.request_secret(Method::POST, &url).await?)?;
        match (want, revealed) {
            (Want::Secret(m), Revealed::Value(v)) => {
                add(vars, &m.env, format!("--secret {}={path}", m.env), v)?;
            }
            (Want::Secret(m), Revealed::Entries(_)) => bail!(
                "{path} is an env_bundle: use --bundle {path} instead of --secret {}=…",
                m.env
            ),
            (Want::Bundle(_), Revealed::Entries(entries)) => {
                for (k, v) in entries {
                    if !is_bundle_key(&k) {
                        bail!("{path}: entry {k:?} is not a valid environment variable name");
                    }
                    add(vars, &k, format!("--bundle {path}"), v)?;
                }
            }
            (Want::Bundle(_), Revealed::Value(_)) => {
                bail!("{path} is not an env_bundle: use --secret ENV={path} instead of --bundle")
            }
        }
    }
    Ok(())
}

/// Adds one variable, refusing a name set twice and a value `execve` cannot carry.
fn add(vars: &mut Vars, name: &str, from: String, value: Zeroizing<String>) -> anyhow::Result<()> {
    if value.contains('\0') {
        bail!("the value for {name} ({from}) contains a NUL byte and cannot go in an environment");
    }
    if let Some((other, _)) = vars.get(name) {
        bail!("{name} is set by both {other} and {from}");
    }
    vars.insert(name.to_string(), (from, value));
    Ok(())
}

/// Revokes every lease; one that is already over (exhausted, denied, …) answers 409.
async fn revoke_all(opts: &GlobalOpts, leases: &[String]) {
    if leases.is_empty() {
        return;
    }
    let client = match Client::with_timeout(opts, Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey: cannot revoke the leases: {e}");
            return;
        }
    };
    for id in leases {
        let Ok(url) = item_url("leases", id) else {
            continue;
        };
        match client.delete(&url).await {
            Ok(_) => {}
            Err(e) if http_error(&e).is_some_and(|h| h.status == 409) => {}
            Err(e) => eprintln!("latchkey: could not revoke lease {id}: {e}"),
        }
    }
}

/// A signal we forward.
#[derive(Clone, Copy, Debug)]
struct Sig {
    number: i32,
    name: &'static str,
}

/// SIGINT, SIGTERM and SIGHUP, handled by us from creation on.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let on = |k: SignalKind| signal(k).context("cannot install the signal handlers");
        Ok(Signals {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    async fn recv(&mut self) -> Sig {
        tokio::select! {
            _ = self.int.recv() => Sig { number: 2, name: "INT" },
            _ = self.term.recv() => Sig { number: 15, name: "TERM" },
            _ = self.hup.recv() => Sig { number: 1, name: "HUP" },
        }
    }
}

/// Sends `sig` to `pid` with the system's `kill` program (no libc: unsafe code is forbidden).
/// The child has not been reaped yet, so its pid cannot have been reused.
async fn forward(pid: u32, sig: Sig) {
    for kill in ["/bin/kill", "/usr/bin/kill", "kill"] {
        let sent = tokio::process::Command::new(kill)
            .args(["-s", sig.name, &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        match sent {
            // A failure means the child is already gone: nothing to forward to.
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!(
                    "latchkey: cannot forward SIG{} to the command: {e}",
                    sig.name
                );
                return;
            }
        }
    }
    eprintln!(
        "latchkey: cannot forward SIG{} to the command: no `kill` program found",
        sig.name
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: super::super::ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, String> {
        let mut all = vec!["lk", "run"];
        all.extend_from_slice(args);
        match Top::try_parse_from(all) {
            Ok(Top {
                cmd: super::super::ClientCommand::Run(r),
            }) => Ok(r),
            Ok(_) => Err("not run".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn mappings_are_checked_before_any_request() {
        assert_eq!(
            parse_mapping("OPENAI_API_KEY=/apps/openai").unwrap(),
            Mapping {
                env: "OPENAI_API_KEY".into(),
                path: "/apps/openai".into()
            }
        );
        // Only the first `=` splits.
        assert_eq!(parse_mapping("A=p=q").unwrap().path, "p=q");
        for bad in [
            "NOEQUALS", "=/apps/x", "1X=/a", "A-B=/a", "A B=/a", "A.B=/a", "A=", "A=/", "É=/a",
        ] {
            assert!(parse_mapping(bad).is_err(), "{bad:?}");
        }
        assert!(is_env_name("_x1") && !is_env_name("") && !is_env_name("9"));
        assert!(is_bundle_key("app.key") && !is_bundle_key(".x") && !is_bundle_key("A=B"));
    }

    #[test]
    fn command_line() {
        let r = parse(&[
            "--secret",
            "A=/x",
            "--bundle",
            "/b",
            "--timeout",
            "5",
            "--ttl",
            "30",
            "--",
            "sh",
            "-c",
            "echo --secret",
        ])
        .unwrap();
        assert_eq!(r.secrets.len(), 1);
        assert_eq!(r.bundles, ["/b"]);
        assert_eq!(r.command, ["sh", "-c", "echo --secret"]);
        assert_eq!((r.timeout, r.ttl), (5, Some(30)));
        assert!(!r.keep_token);
        // Invalid ENV, no command, no `--`, nothing to inject: refused by the parser.
        assert!(parse(&["--secret", "BAD-NAME=/x", "--", "true"]).is_err());
        assert!(parse(&["--secret", "/x", "--", "true"]).is_err());
        assert!(parse(&["--secret", "A=/x"]).is_err());
        assert!(parse(&["--secret", "A=/x", "true"]).is_err());
        assert!(parse(&["--", "true"]).is_err());
        assert!(parse(&["--bundle", "/b", "--", "true"]).is_ok());
    }

    #[test]
    fn exit_codes_as_shells_report_them() {
        use std::process::ExitStatus;
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn variables_are_refused_twice() {
        let mut vars = Vars::new();
        add(
            &mut vars,
            "A",
            "--secret A=/x".into(),
            Zeroizing::new("1".into()),
        )
        .unwrap();
        let e = add(
            &mut vars,
            "A",
            "--bundle /b".into(),
            Zeroizing::new("2".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--secret A=/x") && e.contains("--bundle /b"),
            "{e}"
        );
        assert!(add(&mut vars, "B", "x".into(), Zeroizing::new("a\0b".into())).is_err());
    }
}
