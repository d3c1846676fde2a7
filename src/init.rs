//! `latchkey init`: creates the data directory (0700), the master key (unless one is given
//! through `LATCHKEY_MASTER_KEY` / `LATCHKEY_MASTER_KEY_FILE`), the keyring (0600) and the
//! first admin token, printed once and stored only as a hash. `serve --dev` keeps its admin
//! token in the data directory ([`DEV_TOKEN_FILE`], 0600) and reuses it while it works.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::Config;
use crate::crypto::keyring::{KEYRING_FILE, MASTER_KEY_FILE, resolve_master_key, write_private};
use crate::crypto::{Keyring, KeyringError, random_bytes};
use crate::store::Origin;

/// Where `serve --dev` keeps its admin token, in the data directory (mode 0600). Development
/// only: it sits next to the development master key, which already opens everything.
pub const DEV_TOKEN_FILE: &str = "dev-admin-token";

/// Is the data directory initialised?
pub fn is_initialised(dir: &Path) -> bool {
    dir.join(KEYRING_FILE).exists()
}

/// Creates the data directory and keyring. Returns whether the master key was generated
/// into the data directory (rather than taken from the environment).
pub fn create_keyring(dir: &Path) -> anyhow::Result<bool> {
    if is_initialised(dir) {
        anyhow::bail!(
            "{} is already initialised (it holds {KEYRING_FILE})",
            dir.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    let (master, generated) = match resolve_master_key(dir) {
        Ok(k) => (k, false),
        Err(KeyringError::NoMasterKey) => (create_master_key(dir)?, true),
        Err(e) => return Err(e.into()),
    };
    Keyring::generate().save(dir, &master)?;
    Ok(generated)
}

/// Makes `dir` (and its parents) and sets its mode to 0700.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))
}

/// Generates a master key into `dir/master.key` (0600; the directory made 0700 when missing).
pub fn create_master_key(dir: &Path) -> anyhow::Result<zeroize::Zeroizing<[u8; 32]>> {
    create_private_dir(dir)?;
    let key = random_bytes::<32>();
    let b64 = zeroize::Zeroizing::new(STANDARD.encode(key.as_ref()));
    write_private(&dir.join(MASTER_KEY_FILE), b64.as_bytes())?;
    Ok(key)
}

/// Mints an admin token in an initialised data directory (opens and closes the store).
pub async fn mint_admin_token(config: &Config, description: &str) -> anyhow::Result<String> {
    let (store, writer, _) = crate::open_store(config)?;
    let (token, _) = store
        .create_admin_token(description.to_string(), Origin::system())
        .await?;
    drop(store);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok();
    Ok(token)
}

/// `serve --dev`'s admin token: the one saved in the data directory while it still works (not
/// revoked), otherwise a new one, saved there with mode 0600. Returns it and whether it is new.
pub async fn dev_admin_token(config: &Config) -> anyhow::Result<(String, bool)> {
    let path = config.data_dir.join(DEV_TOKEN_FILE);
    let saved = match fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_string()).filter(|t| !t.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let (store, writer, _) = crate::open_store(config)?;
    let result = async {
        if let Some(token) = saved
            && store.is_active_admin_token(&token)?
        {
            // Tighten a mode loosened by hand: the file holds an admin credential.
            crate::util::make_private_file(&path)
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            return Ok((token, false));
        }
        let (token, _) = store
            .create_admin_token("serve --dev".into(), Origin::system())
            .await?;
        write_private(&path, token.as_bytes())?;
        Ok((token, true))
    }
    .await;
    drop(store);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok();
    result
}

/// `latchkey init`: keyring plus first admin token, which is returned to be printed once.
pub async fn init(config: &Config) -> anyhow::Result<(String, bool)> {
    let generated = create_keyring(&config.data_dir)?;
    let token = mint_admin_token(config, "created by latchkey init").await?;
    Ok((token, generated))
}
