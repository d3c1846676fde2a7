//! Envelope encryption of secret values: AES-256-GCM under a fresh data key per version,
//! the data key wrapped by a key-encryption key (KEK) from the keyring. The AAD binds each
//! ciphertext to its namespace, path and version (and the wrapped key also to the KEK id),
//! so a ciphertext copied onto another record fails to decrypt.

pub mod keyring;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use keyring::{Kek, Keyring, KeyringError};

/// A secret value in memory: never printed by `Debug`, zeroized on drop.
pub type SecretValue = secrecy::SecretSlice<u8>;

const NONCE_LEN: usize = 12;

/// Failures of encryption and decryption.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The KEK named by a record is not in the keyring.
    #[error("key-encryption key {0} is not in the keyring")]
    UnknownKek(u32),
    /// Authentication failed: wrong key, or the record was altered or moved.
    #[error("decryption failed: the ciphertext does not belong to this record or key")]
    Decrypt,
    /// A stored blob is too short to hold a nonce.
    #[error("malformed ciphertext")]
    Malformed,
}

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The secret's namespace.
    pub namespace: &'a str,
    /// The secret's full path.
    pub path: &'a str,
    /// The version number.
    pub version: u64,
}

impl Binding<'_> {
    fn value_aad(&self) -> Vec<u8> {
        format!(
            "latchkey:value:v1\0{}\0{}\0{}",
            self.namespace, self.path, self.version
        )
        .into_bytes()
    }

    fn key_aad(&self, kek_id: u32) -> Vec<u8> {
        format!(
            "latchkey:dek:v1\0{}\0{}\0{}\0{}",
            self.namespace, self.path, self.version, kek_id
        )
        .into_bytes()
    }
}

/// An encrypted value as stored: the wrapped data key and the value's ciphertext,
/// each prefixed by its nonce.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sealed {
    /// Which KEK wraps the data key.
    pub kek_id: u32,
    /// nonce ‖ AES-GCM(KEK, data key).
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
    /// nonce ‖ AES-GCM(data key, value).
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// Encrypts `plain` under a fresh data key wrapped by the keyring's newest KEK.
pub fn seal(keyring: &Keyring, binding: Binding<'_>, plain: &[u8]) -> Sealed {
    let mut dek = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(dek.as_mut());
    let ciphertext = aead_seal(&dek, &binding.value_aad(), plain);
    let kek = keyring.newest();
    let wrapped_key = aead_seal(kek.bytes(), &binding.key_aad(kek.id), dek.as_ref());
    Sealed {
        kek_id: kek.id,
        wrapped_key,
        ciphertext,
    }
}

/// Decrypts a sealed value.
pub fn open(
    keyring: &Keyring,
    binding: Binding<'_>,
    sealed: &Sealed,
) -> Result<SecretValue, CryptoError> {
    let dek = unwrap_key(keyring, binding, sealed)?;
    let plain = aead_open(&dek, &binding.value_aad(), &sealed.ciphertext)?;
    Ok(SecretValue::from(plain.to_vec()))
}

/// Re-wraps the data key under the newest KEK; the value ciphertext is unchanged.
/// Returns `None` when it is already wrapped by the newest key.
pub fn rewrap(
    keyring: &Keyring,
    binding: Binding<'_>,
    sealed: &Sealed,
) -> Result<Option<Sealed>, CryptoError> {
    let kek = keyring.newest();
    if sealed.kek_id == kek.id {
        return Ok(None);
    }
    let dek = unwrap_key(keyring, binding, sealed)?;
    let wrapped_key = aead_seal(kek.bytes(), &binding.key_aad(kek.id), dek.as_ref());
    Ok(Some(Sealed {
        kek_id: kek.id,
        wrapped_key,
        ciphertext: sealed.ciphertext.clone(),
    }))
}

fn unwrap_key(
    keyring: &Keyring,
    binding: Binding<'_>,
    sealed: &Sealed,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let kek = keyring
        .get(sealed.kek_id)
        .ok_or(CryptoError::UnknownKek(sealed.kek_id))?;
    let dek = aead_open(
        kek.bytes(),
        &binding.key_aad(sealed.kek_id),
        &sealed.wrapped_key,
    )?;
    let mut out = Zeroizing::new([0u8; 32]);
    if dek.len() != 32 {
        return Err(CryptoError::Malformed);
    }
    out.copy_from_slice(&dek);
    Ok(out)
}

/// AES-256-GCM with a random nonce; returns nonce ‖ ciphertext.
pub(crate) fn aead_seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    // Encryption with a valid key and in-memory buffers cannot fail.
    let ct = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens nonce ‖ ciphertext produced by [`aead_seal`].
pub(crate) fn aead_open(
    key: &[u8; 32],
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// Fills a buffer with random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    OsRng.fill_bytes(out.as_mut());
    out
}

/// Base64 (standard, padded) for serde byte fields.
pub(crate) mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn binding(version: u64) -> Binding<'static> {
        Binding {
            namespace: "production",
            path: "production/openai/key",
            version,
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let ring = Keyring::generate();
        let sealed = seal(&ring, binding(1), b"sk-hello");
        assert_eq!(
            open(&ring, binding(1), &sealed).unwrap().expose_secret(),
            b"sk-hello"
        );
        // Moved to another version or path: refused.
        assert!(matches!(
            open(&ring, binding(2), &sealed),
            Err(CryptoError::Decrypt)
        ));
        let other = Binding {
            namespace: "production",
            path: "production/other",
            version: 1,
        };
        assert!(open(&ring, other, &sealed).is_err());
        // Claims another KEK id: refused.
        let mut forged = sealed.clone();
        forged.kek_id = 2;
        assert!(open(&ring, binding(1), &forged).is_err());
        assert!(!format!("{sealed:?}").contains("wrapped"));
    }

    #[test]
    fn rotation_and_rewrap() {
        let mut ring = Keyring::generate();
        let old = seal(&ring, binding(1), b"v1");
        ring.add_generated();
        assert_eq!(
            open(&ring, binding(1), &old).unwrap().expose_secret(),
            b"v1"
        );
        let new = rewrap(&ring, binding(1), &old).unwrap().unwrap();
        assert_eq!(new.kek_id, 2);
        assert_eq!(
            open(&ring, binding(1), &new).unwrap().expose_secret(),
            b"v1"
        );
        assert!(rewrap(&ring, binding(1), &new).unwrap().is_none());
    }
}
