//! A throwaway PostgreSQL cluster for tests and the benchmark harness (like the `pgtemp`
//! crate, but able to run as root): `initdb` into a fresh temporary directory, a server on a
//! free loopback port, databases made on demand, and everything stopped and removed on drop.
//!
//! - The binaries are the highest `/usr/lib/postgresql/<version>/bin`, else `pg_config
//!   --bindir`, else `LATCHKEY_PG_BINDIR` when set (it wins over both).
//! - `initdb` refuses to run as root, so as root the directory is given to the `postgres`
//!   user and `initdb`/`pg_ctl` run through `runuser -u postgres --`; otherwise directly.
//! - Every wait is bounded (`pg_ctl -w -t 30`, the kill and restart loops).
//! - A guard process (`sh`) stops the server and removes the directory once this process is
//!   gone, so a cluster kept in a `static` (one per test module) or a test killed half-way
//!   does not leave a postmaster behind.
//!
//! [`for_tests`] is what a test calls: `None` with a loud notice when no binaries exist, a
//! panic instead when `LATCHKEY_REQUIRE_POSTGRES=1` (CI), so a skip cannot pass unnoticed.

use std::io;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How a cluster is started.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Keep `fsync` on (the benchmark measures durable commits); tests turn it off.
    pub fsync: bool,
    /// The database made at start (its URL is [`Cluster::url`]).
    pub database: String,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions {
            fsync: false,
            database: "latchkey".into(),
        }
    }
}

/// A running (or stopped) throwaway cluster; dropped = stopped and removed.
#[derive(Debug)]
pub struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    opts: ClusterOptions,
    /// `Some(user)` when the server's tools run through `runuser -u user --`.
    run_as: Option<String>,
    running: bool,
}

/// The bin directory of the newest installed PostgreSQL, if any.
pub fn find_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LATCHKEY_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && dir.join("initdb").exists()).then_some(dir)
}

/// A cluster for a test: `None` (with a loud notice) when PostgreSQL is not installed, unless
/// `LATCHKEY_REQUIRE_POSTGRES=1`, which turns the skip into a panic. A cluster that fails to
/// start is a panic either way.
#[allow(clippy::panic)]
pub fn for_tests() -> Option<Cluster> {
    if find_bindir().is_none() {
        if std::env::var("LATCHKEY_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "LATCHKEY_REQUIRE_POSTGRES=1 but no PostgreSQL binaries were found \
                 (/usr/lib/postgresql/*/bin, pg_config --bindir, LATCHKEY_PG_BINDIR)"
            );
        }
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! SKIPPED: PostgreSQL test — no PostgreSQL binaries found              !!\n\
             !! (install postgresql, or set LATCHKEY_PG_BINDIR; CI sets              !!\n\
             !!  LATCHKEY_REQUIRE_POSTGRES=1 to make this a failure)                 !!\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return None;
    }
    match Cluster::start_new(ClusterOptions::default()) {
        Ok(c) => Some(c),
        Err(e) => panic!("the throwaway PostgreSQL cluster did not start: {e}"),
    }
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Is this process root (effective uid 0)?
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| {
            other(format!(
                "no user {user:?} in /etc/passwd (needed to run initdb as root)"
            ))
        })
}

/// A port nobody listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh, empty directory under the system temp dir.
fn fresh_dir() -> io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "latchkey-pg-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

fn check(what: &str, out: Output) -> io::Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl Cluster {
    /// Makes and starts a new cluster, with `opts.database` created in it.
    pub fn start_new(opts: ClusterOptions) -> io::Result<Cluster> {
        let bindir = find_bindir().ok_or_else(|| other("no PostgreSQL binaries found"))?;
        let dir = fresh_dir()?;
        let run_as = if is_root() {
            let (uid, gid) = user_ids("postgres")?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
            Some("postgres".to_string())
        } else {
            None
        };
        let mut cluster = Cluster {
            bindir,
            dir,
            port: 0,
            opts,
            run_as,
            running: false,
        };
        cluster.guard()?;
        let dir = cluster.dir.to_string_lossy().into_owned();
        check(
            "initdb",
            cluster
                .tool("initdb")
                .args(["-D", &dir, "-A", "trust", "-U", "postgres", "--no-sync"])
                .args(["-E", "UTF8", "--locale=C"])
                .output()?,
        )?;
        // A free port can be taken by someone else before the server binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        let db = cluster.opts.database.clone();
        cluster.create_database(&db)?;
        Ok(cluster)
    }

    /// A command for one of the server's tools, as the `postgres` user when we are root.
    fn tool(&self, name: &str) -> Command {
        let bin = self.bindir.join(name);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    /// A client tool (`createdb`, `psql`): run as we are, over TCP.
    fn client(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(name));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
        cmd
    }

    /// Starts a `sh` that, once this process has exited, stops the server and removes the
    /// directory (a `static` cluster is never dropped).
    fn guard(&self) -> io::Result<()> {
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; \
             {stop}\"$1/pg_ctl\" -D \"$2\" stop -m immediate >/dev/null 2>&1; rm -rf \"$2\""
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(std::process::id().to_string())
            .arg(&self.bindir)
            .arg(&self.dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    /// The data (and socket) directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the database made at start.
    pub fn url(&self) -> String {
        self.url_of(&self.opts.database)
    }

    /// The URL of database `db` of this cluster.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Makes a database (e.g. one per test sharing a cluster); answers its URL.
    pub fn create_database(&self, db: &str) -> io::Result<String> {
        check("createdb", self.client("createdb").arg(db).output()?)?;
        Ok(self.url_of(db))
    }

    /// Runs SQL through `psql` against database `db`; answers its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = check(
            "psql",
            self.client("psql")
                .args([
                    "-d",
                    db,
                    "-X",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ])
                .output()?,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Starts the server (again) on the same port and data.
    pub fn start(&mut self) -> io::Result<()> {
        let dir = self.dir.to_string_lossy().into_owned();
        let mut opts = format!(
            "-p {} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=400",
            self.port
        );
        if !self.opts.fsync {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = self.dir.join("log").to_string_lossy().into_owned();
        // After a kill the old server's children may still hold its shared memory for a
        // moment: a start that fails then is tried again, within a bound.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .tool("pg_ctl")
                .args([
                    "-D", &dir, "-w", "-t", "30", "-o", &opts, "-l", &log, "start",
                ])
                .output()?;
            match check("pg_ctl start", out) {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail = &tail[tail.len().saturating_sub(2000)..];
                    return Err(other(format!("{e}\nserver log:\n{tail}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        self.running = true;
        Ok(())
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`).
    pub fn stop(&mut self) -> io::Result<()> {
        let dir = self.dir.to_string_lossy().into_owned();
        check(
            "pg_ctl stop",
            self.tool("pg_ctl")
                .args(["-D", &dir, "-w", "-t", "30", "-m", "fast", "stop"])
                .output()?,
        )?;
        self.running = false;
        Ok(())
    }

    /// The postmaster's pid (from `postmaster.pid`).
    pub fn postmaster_pid(&self) -> io::Result<u32> {
        let pidfile = std::fs::read_to_string(self.dir.join("postmaster.pid"))?;
        pidfile
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| other("postmaster.pid has no pid"))
    }

    /// SIGKILLs the postmaster (a crash) and waits, bounded, until it is gone.
    pub fn kill(&mut self) -> io::Result<()> {
        let pid = self.postmaster_pid()?;
        check(
            "kill",
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output()?,
        )?;
        self.running = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() {
            if Instant::now() >= deadline {
                return Err(other(format!("postmaster {pid} still alive after SIGKILL")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let dir = self.dir.to_string_lossy().into_owned();
            let _ = self
                .tool("pg_ctl")
                .args(["-D", &dir, "-w", "-t", "10", "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_stops_restarts_and_survives_a_kill() {
        let Some(mut c) = for_tests() else { return };
        c.psql(
            "latchkey",
            "create table t (x int); insert into t values (7)",
        )
        .unwrap();
        let port = c.port();
        c.stop().unwrap();
        assert!(c.psql("latchkey", "select 1").is_err(), "stopped");
        c.start().unwrap();
        assert_eq!(c.port(), port);
        assert_eq!(c.psql("latchkey", "select x from t").unwrap(), "7");
        c.kill().unwrap();
        assert!(c.psql("latchkey", "select 1").is_err(), "killed");
        c.start().unwrap();
        assert_eq!(c.psql("latchkey", "select x from t").unwrap(), "7");
        let url = c.create_database("other").unwrap();
        assert!(url.ends_with("/other"));
        let dir = c.dir().to_path_buf();
        drop(c);
        assert!(!dir.exists(), "removed on drop");
    }
}
