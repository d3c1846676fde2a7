//! Shell completions (`latchkey completions SHELL`) and man pages (`latchkey man`), generated
//! from the same command definitions the parser uses, so they cannot drift from it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Command;

pub use clap_complete::Shell;

/// The completion script for `shell`.
pub fn completions(mut cmd: Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The top-level man page (section 1, roff).
pub fn man_page(cmd: Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("cannot render the man page")?;
    Ok(out)
}

/// Prints generated text on stdout (a closed pipe, as with `| head`, ends quietly).
pub fn print(bytes: &[u8]) {
    super::write_stdout(format_args!("{}", String::from_utf8_lossy(bytes)));
}

/// Every subcommand's page names the version in its title, as the top page does (without
/// adding a `--version` flag: `secret rollback` has a `version` argument of its own).
fn versioned(cmd: Command, version: &'static str) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd;
    for name in names {
        cmd = cmd.mut_subcommand(&name, |s| {
            versioned(s.version(version).disable_version_flag(true), version)
        });
    }
    cmd
}

/// Writes one man page per command (`latchkey.1`, `latchkey-secret.1`,
/// `latchkey-secret-put.1`, …) into `dir`, created if missing; returns the files written.
pub fn man_pages(cmd: Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(versioned(cmd, env!("CARGO_PKG_VERSION")), dir)
        .with_context(|| format!("cannot write the man pages to {}", dir.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("latchkey") && n.ends_with(".1"))
        })
        .collect();
    pages.sort();
    Ok(pages)
}
