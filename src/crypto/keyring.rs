//! The keyring: key-encryption keys (KEKs) and the token-signing key, kept in
//! `keyring.json` (mode 0600), each sealed under the master key. The master key comes from
//! `LATCHKEY_MASTER_KEY` (base64), `LATCHKEY_MASTER_KEY_FILE`, or `master.key` in the data
//! directory (written by `init` when no master key was given). A wrong master key fails to
//! unseal the keyring, so the daemon refuses to start before it opens anything else.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{aead_open, aead_seal, random_bytes};

/// File name of the keyring inside the data directory.
pub const KEYRING_FILE: &str = "keyring.json";
/// File name of the generated master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Keyring failures, each with a message an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keyring file is not valid.
    #[error("{path}: malformed keyring: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The master key is not base64 of 32 bytes.
    #[error("the master key must be 32 bytes, base64-encoded ({0})")]
    BadMasterKey(String),
    /// No master key was found.
    #[error(
        "no master key: set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE (the data directory has no {MASTER_KEY_FILE})"
    )]
    NoMasterKey,
    /// The master key does not open this keyring.
    #[error(
        "the master key does not match the keyring in {0}: refusing to start (nothing was changed)"
    )]
    WrongMasterKey(PathBuf),
}

/// One key-encryption key.
pub struct Kek {
    /// Its number; higher is newer.
    pub id: u32,
    /// When it was added (RFC 3339).
    pub created_at: String,
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

/// The unsealed keyring held in memory.
pub struct Keyring {
    keys: Vec<Kek>,
    signing: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("Keyring")
            .field("kek_ids", &ids)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: u32,
    signing_key: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: u32,
    created_at: String,
    sealed: String,
}

impl Keyring {
    /// A fresh keyring with one random KEK and a random signing key.
    pub fn generate() -> Keyring {
        let mut ring = Keyring {
            keys: Vec::new(),
            signing: random_bytes::<32>(),
        };
        ring.add_generated();
        ring
    }

    /// Adds a new random KEK, which becomes the newest. Returns its id.
    pub fn add_generated(&mut self) -> u32 {
        let id = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        self.keys.push(Kek {
            id,
            created_at: now(),
            key: random_bytes::<32>(),
        });
        id
    }

    /// The KEK new data keys are wrapped with.
    pub fn newest(&self) -> &Kek {
        // A keyring always holds at least one key: `generate` and `load` ensure it.
        self.keys
            .iter()
            .max_by_key(|k| k.id)
            .unwrap_or_else(|| unreachable!("empty keyring"))
    }

    /// A KEK by id.
    pub fn get(&self, id: u32) -> Option<&Kek> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Ids and creation times of every KEK.
    pub fn list(&self) -> Vec<(u32, String)> {
        self.keys
            .iter()
            .map(|k| (k.id, k.created_at.clone()))
            .collect()
    }

    /// The key that signs scoped tokens and callback data.
    pub fn signing_key(&self) -> &[u8; 32] {
        &self.signing
    }

    /// Writes the keyring, sealed under `master`, atomically (temp file + rename), mode 0600.
    pub fn save(&self, dir: &Path, master: &[u8; 32]) -> Result<(), KeyringError> {
        let path = dir.join(KEYRING_FILE);
        let json = self.seal(master).map_err(|why| malformed(&path, why))?;
        write_private(&path, &json)
    }

    /// The keyring as JSON, every key sealed under `master` (what `keyring.json` holds, and
    /// what a PostgreSQL store keeps in its `latchkey_meta` table).
    pub fn seal(&self, master: &[u8; 32]) -> Result<Vec<u8>, String> {
        let file = KeyringFile {
            format: 1,
            signing_key: STANDARD.encode(aead_seal(
                master,
                b"latchkey:keyring:signing",
                self.signing.as_ref(),
            )),
            keys: self
                .keys
                .iter()
                .map(|k| KeyEntry {
                    id: k.id,
                    created_at: k.created_at.clone(),
                    sealed: STANDARD.encode(aead_seal(master, &kek_aad(k.id), k.key.as_ref())),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())
    }

    /// Reads and unseals the keyring; a wrong master key is refused.
    pub fn load(dir: &Path, master: &[u8; 32]) -> Result<Keyring, KeyringError> {
        let path = dir.join(KEYRING_FILE);
        let raw = fs::read(&path).map_err(|source| KeyringError::Io {
            path: path.clone(),
            source,
        })?;
        Keyring::unseal(&raw, master, &path)
    }

    /// Unseals a keyring sealed by [`Keyring::seal`]; `origin` names where it came from in
    /// errors (a file, or the database). A wrong master key is refused.
    pub fn unseal(raw: &[u8], master: &[u8; 32], origin: &Path) -> Result<Keyring, KeyringError> {
        let path = origin;
        let file: KeyringFile =
            serde_json::from_slice(raw).map_err(|e| malformed(path, e.to_string()))?;
        if file.format != 1 || file.keys.is_empty() {
            return Err(malformed(path, "unsupported format or no keys".into()));
        }
        let open = |aad: &[u8], b64: &str| -> Result<Zeroizing<[u8; 32]>, KeyringError> {
            let blob = STANDARD
                .decode(b64)
                .map_err(|e| malformed(path, e.to_string()))?;
            let plain = aead_open(master, aad, &blob)
                .map_err(|_| KeyringError::WrongMasterKey(path.to_path_buf()))?;
            let mut key = Zeroizing::new([0u8; 32]);
            if plain.len() != 32 {
                return Err(malformed(path, "key of wrong length".into()));
            }
            key.copy_from_slice(&plain);
            Ok(key)
        };
        let signing = open(b"latchkey:keyring:signing", &file.signing_key)?;
        let mut keys = Vec::new();
        for entry in &file.keys {
            keys.push(Kek {
                id: entry.id,
                created_at: entry.created_at.clone(),
                key: open(&kek_aad(entry.id), &entry.sealed)?,
            });
        }
        Ok(Keyring { keys, signing })
    }
}

fn kek_aad(id: u32) -> Vec<u8> {
    format!("latchkey:keyring:kek:{id}").into_bytes()
}

fn malformed(path: &Path, why: String) -> KeyringError {
    KeyringError::Malformed {
        path: path.to_path_buf(),
        why,
    }
}

fn now() -> String {
    crate::util::rfc3339(OffsetDateTime::now_utc())
}

/// Decodes a base64 master key.
pub fn parse_master_key(b64: &str) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64.trim())
            .map_err(|e| KeyringError::BadMasterKey(e.to_string()))?,
    );
    if raw.len() != 32 {
        return Err(KeyringError::BadMasterKey(format!(
            "got {} bytes",
            raw.len()
        )));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&raw);
    Ok(key)
}

/// Where the master key comes from: the environment, a file it names, or the data directory.
pub fn resolve_master_key(dir: &Path) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    if let Ok(b64) = std::env::var("LATCHKEY_MASTER_KEY") {
        return parse_master_key(&b64);
    }
    let path = match std::env::var("LATCHKEY_MASTER_KEY_FILE") {
        Ok(p) => PathBuf::from(p),
        Err(_) => dir.join(MASTER_KEY_FILE),
    };
    match fs::read_to_string(&path) {
        Ok(b64) => parse_master_key(&Zeroizing::new(b64)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(KeyringError::NoMasterKey),
        Err(source) => Err(KeyringError::Io { path, source }),
    }
}

/// Writes a file readable by its owner only, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let io = |source| KeyringError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_wrong_master() {
        let dir = tempfile::tempdir().unwrap();
        let master = random_bytes::<32>();
        let mut ring = Keyring::generate();
        ring.add_generated();
        ring.save(dir.path(), &master).unwrap();
        let mode = fs::metadata(dir.path().join(KEYRING_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = Keyring::load(dir.path(), &master).unwrap();
        assert_eq!(loaded.newest().id, 2);
        assert_eq!(loaded.signing_key(), ring.signing_key());
        let wrong = random_bytes::<32>();
        assert!(matches!(
            Keyring::load(dir.path(), &wrong),
            Err(KeyringError::WrongMasterKey(_))
        ));
    }

    #[test]
    fn master_key_parsing() {
        assert!(parse_master_key("c2hvcnQ=").is_err());
        assert!(parse_master_key("not base64!").is_err());
        let good = STANDARD.encode([7u8; 32]);
        assert_eq!(*parse_master_key(&good).unwrap(), [7u8; 32]);
    }
}
