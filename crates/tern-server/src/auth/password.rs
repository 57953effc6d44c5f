//! Password hashing with Argon2id (the argon2 crate's defaults, which are the
//! OWASP parameters m = 19 MiB, t = 2, p = 1), as PHC strings.
//!
//! These functions are CPU- and memory-heavy: callers run them on the
//! blocking pool behind a semaphore (see [`super::Authenticator`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A hash of a password nobody knows, with the same parameters as real ones.
/// Login verifies against it when the user is unknown or has no password, so
/// that answering "no such user" takes as long as "wrong password".
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$dGVybi1kdW1teS1zYWx0IQ$l1x3ltLaQK2nFLX8J2bm/zll/tE5NQyfDSxx3x4Nxvs";

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the PHC string `phc`. A stored hash that does
/// not parse never matches (and is logged: it means a corrupt row).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash does not parse");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
    }

    #[test]
    fn dummy_hash_parses_with_default_params() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("", DUMMY_HASH));
        assert!(!verify("x", "not a phc string"));
    }
}
