//! JWTs: verifying tokens (HS256 with the server secret, or EdDSA / RS256
//! with an operator's public key) and issuing HS256 tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthSetupError;

/// Clock leeway on `exp`, seconds (PROTOCOL.md §2: at most 60).
pub const EXP_LEEWAY_S: u64 = 60;

/// The claims tern reads. `exp` is required and checked by `jsonwebtoken`
/// itself (from the raw payload), so it is not repeated here.
#[derive(Debug, Deserialize)]
pub struct VerifiedClaims {
    pub sub: String,
    #[serde(default)]
    pub role: Option<String>,
}

/// The claims tern writes.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

/// Why a token was refused (for logs and the failure metric; the client
/// only ever sees "invalid or expired token").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    Expired,
    Invalid,
}

impl TokenFault {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired_token",
            Self::Invalid => "invalid_token",
        }
    }
}

/// Signs and checks tokens.
///
/// Verification accepts ONLY the configured algorithm with its own key, so
/// `alg: none` (which `jsonwebtoken` cannot even parse), HS256 tokens signed
/// with a public key as the HMAC secret, and any other algorithm are refused.
/// Issuing (`/login`, admin tokens) always uses HS256 with the server secret:
/// with `EdDSA`/`RS256` configured, the operator's back end is the minter
/// and tokens issued by this server are NOT accepted by it.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// `algorithm` is `HS256`, `EdDSA` or `RS256` (case-insensitive);
    /// `public_key_pem` is required for the latter two.
    pub fn new(
        secret: &str,
        algorithm: &str,
        public_key_pem: Option<&[u8]>,
    ) -> Result<Self, AuthSetupError> {
        let alg = parse_algorithm(algorithm)?;
        let decoding = match (alg, public_key_pem) {
            (Algorithm::HS256, _) => DecodingKey::from_secret(secret.as_bytes()),
            (Algorithm::EdDSA, Some(pem)) => DecodingKey::from_ed_pem(pem)?,
            (Algorithm::RS256, Some(pem)) => DecodingKey::from_rsa_pem(pem)?,
            (_, None) => return Err(AuthSetupError::MissingPublicKey(algorithm.to_owned())),
            _ => return Err(AuthSetupError::Algorithm(algorithm.to_owned())),
        };
        let mut validation = Validation::new(alg);
        validation.leeway = EXP_LEEWAY_S;
        validation.validate_exp = true;
        // Operators' back ends may set `aud`; tern has no audience of its own.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding,
            validation,
        })
    }

    /// Checks signature, algorithm, `exp` and `sub`.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenFault> {
        match jsonwebtoken::decode::<VerifiedClaims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenFault::Expired),
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                Err(TokenFault::Invalid)
            }
        }
    }

    /// An HS256 token for `user` valid `ttl_s` seconds, and its expiry in ms.
    pub fn issue(
        &self,
        user: &str,
        admin: bool,
        ttl_s: u64,
    ) -> Result<(String, i64), jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let exp = now.saturating_add(ttl_s);
        let claims = IssuedClaims {
            sub: user,
            exp,
            iat: now,
            role: admin.then_some("admin"),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        let expires_at_ms = i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok((token, expires_at_ms))
    }
}

fn parse_algorithm(name: &str) -> Result<Algorithm, AuthSetupError> {
    match name.to_ascii_uppercase().as_str() {
        "" | "HS256" => Ok(Algorithm::HS256),
        "EDDSA" => Ok(Algorithm::EdDSA),
        "RS256" => Ok(Algorithm::RS256),
        _ => Err(AuthSetupError::Algorithm(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new("unit-test-secret", "HS256", None).unwrap()
    }

    #[test]
    fn issued_token_verifies_with_role() {
        let k = keys();
        let (token, exp_ms) = k.issue("alice", true, 60).unwrap();
        assert!(exp_ms > 0);
        let claims = k.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role.as_deref(), Some("admin"));
        let (plain, _) = k.issue("bob", false, 60).unwrap();
        assert_eq!(k.verify(&plain).unwrap().role, None);
    }

    #[test]
    fn other_secret_and_garbage_are_invalid() {
        let other = TokenKeys::new("another-secret", "HS256", None).unwrap();
        let (token, _) = other.issue("alice", false, 60).unwrap();
        assert_eq!(keys().verify(&token).unwrap_err(), TokenFault::Invalid);
        assert_eq!(keys().verify("not.a.jwt").unwrap_err(), TokenFault::Invalid);
    }

    #[test]
    fn unknown_algorithm_and_missing_key_are_setup_errors() {
        assert!(TokenKeys::new("s", "HS512", None).is_err());
        assert!(TokenKeys::new("s", "EdDSA", None).is_err());
        assert!(TokenKeys::new("s", "RS256", Some(b"not pem")).is_err());
    }
}
