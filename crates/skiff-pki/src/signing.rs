//! The service-account signing key: an ECDSA P-256 key (`service.key`, PKCS#8, mode 0600) that
//! signs JSON Web Signatures in compact form with ES256, and verifies them. The API server puts
//! its service-account token claims in the payload; this module only knows bytes, the JWS
//! framing and the key's published form (a JWK with a key id).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{KeyPair, PublicKeyData};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};

use crate::{Error, Result, read_optional, write_private};

/// A key that signs and verifies ES256 JSON Web Signatures.
pub struct SigningKey {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key at `path`, generating (and writing, 0600) a new one if there is none.
    pub fn load_or_create(path: &Path) -> Result<SigningKey> {
        let pem = match read_optional(path)? {
            Some(pem) => pem,
            None => {
                let pem = generate_pem()?;
                write_private(path, &pem)?;
                pem
            }
        };
        Self::from_pem(&pem).map_err(|reason| Error::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// A new key that lives in memory only (for tests and throwaway servers).
    pub fn generate() -> Result<SigningKey> {
        let pem = generate_pem()?;
        Self::from_pem(&pem).map_err(|reason| Error::Invalid {
            path: "(generated)".into(),
            reason,
        })
    }

    /// A key from PKCS#8 PEM (an ECDSA P-256 private key).
    pub fn from_pem(pem: &str) -> std::result::Result<SigningKey, String> {
        let parsed = KeyPair::from_pem(pem).map_err(|e| e.to_string())?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &parsed.serialize_der(),
            &rng,
        )
        .map_err(|_| "not an ECDSA P-256 private key".to_owned())?;
        // As kube-apiserver does: the key id is the SHA-256 of the public key's DER
        // (SubjectPublicKeyInfo), so verifiers can pick the right key from a JWKS.
        let digest = ring::digest::digest(&ring::digest::SHA256, &parsed.subject_public_key_info());
        let key_id = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(SigningKey { key, rng, key_id })
    }

    /// The key id (`kid`) every signature names.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as a JSON Web Key's members: (`x`, `y`), base64url, for `kty: EC`,
    /// `crv: P-256`.
    pub fn public_coordinates(&self) -> (String, String) {
        // The uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = self.key.public_key().as_ref();
        (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
    }

    /// `payload` signed as a compact JWS (`header.payload.signature`, ES256, this key's id).
    pub fn sign(&self, payload: &[u8]) -> Result<String, SignError> {
        let header = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, self.key_id);
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| SignError)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The payload of a compact JWS if this key signed it (ES256); `None` for anything else:
    /// malformed, another algorithm or key, or a bad signature.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        let header: Vec<u8> = URL_SAFE_NO_PAD.decode(header).ok()?;
        // Only ES256 is accepted: never `none`, never a key named by the token.
        let header = std::str::from_utf8(&header).ok()?;
        if !header.contains(r#""alg":"ES256""#) {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        URL_SAFE_NO_PAD.decode(payload).ok()
    }
}

fn generate_pem() -> Result<String> {
    let key = KeyPair::generate().map_err(|source| Error::Issue {
        subject: "service-account signing key".to_owned(),
        source,
    })?;
    Ok(key.serialize_pem())
}

/// Signing failed (the system's random number generator failed).
#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service.key");
        let key = SigningKey::load_or_create(&path).unwrap();
        let token = key.sign(br#"{"sub":"a"}"#).unwrap();
        assert_eq!(key.verify(&token).unwrap(), br#"{"sub":"a"}"#);

        // The same key after a restart.
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert!(again.verify(&token).is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Another payload under the same signature.
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"b"}"#)
        );
        assert!(key.verify(&forged).is_none());
        // Another key's signature.
        let other = SigningKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.verify(&token).is_none());
        // An unsigned token ("alg": "none").
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#)
        );
        assert!(key.verify(&unsigned).is_none());
        for garbage in ["", "a", "a.b", "a.b.c", "...", "Zm9v.Zm9v.Zm9v"] {
            assert!(key.verify(garbage).is_none(), "{garbage}");
        }
    }
}
