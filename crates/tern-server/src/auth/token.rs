//! JWTs: verifying tokens (HS256 with the server secret, and EdDSA / RS256
//! with an operator's public key when configured) and issuing HS256 tokens.

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
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
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

/// What the server checks besides the signature: the issuer and audience
/// tokens must name, when configured.
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Signs and checks tokens.
///
/// Verification is by an allowlist of algorithms, each bound to its own key
/// (RFC 8725 §3.1): HS256 always, with the server secret (the tokens this
/// server issues at `/login`, to admins and with `tern token`), plus the
/// configured `EdDSA` or `RS256` with the operator's public key (tokens
/// minted by the operator's back end). The `alg` header only selects an
/// entry of that list; a key is never used with another algorithm, so
/// `alg: none`, an HS256 token "signed" with the public key as the HMAC
/// secret, and any other algorithm are refused.
pub struct TokenKeys {
    encoding: EncodingKey,
    rules: ClaimRules,
    /// (algorithm, its key, its validation), HS256 first.
    accepted: Vec<(Algorithm, DecodingKey, Validation)>,
}

impl TokenKeys {
    /// `algorithm` is `HS256`, `EdDSA` or `RS256` (case-insensitive);
    /// `public_key_pem` is required for the latter two.
    pub fn new(
        secret: &str,
        algorithm: &str,
        public_key_pem: Option<&[u8]>,
    ) -> Result<Self, AuthSetupError> {
        Self::with_rules(secret, algorithm, public_key_pem, ClaimRules::default())
    }

    /// Like [`TokenKeys::new`], also requiring `iss` / `aud` when `rules`
    /// name them (tokens issued here carry them).
    pub fn with_rules(
        secret: &str,
        algorithm: &str,
        public_key_pem: Option<&[u8]>,
        rules: ClaimRules,
    ) -> Result<Self, AuthSetupError> {
        let alg = parse_algorithm(algorithm)?;
        let mut accepted = vec![(
            Algorithm::HS256,
            DecodingKey::from_secret(secret.as_bytes()),
            validation(Algorithm::HS256, &rules),
        )];
        if alg != Algorithm::HS256 {
            let pem = public_key_pem
                .ok_or_else(|| AuthSetupError::MissingPublicKey(algorithm.to_owned()))?;
            accepted.push((alg, public_key(alg, pem)?, validation(alg, &rules)));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            rules,
            accepted,
        })
    }

    /// Checks algorithm (by the allowlist), signature, `exp`, `sub` and, when
    /// configured, `iss` and `aud`.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenFault> {
        let alg = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenFault::Invalid)?
            .alg;
        let Some((_, key, validation)) = self.accepted.iter().find(|(a, _, _)| *a == alg) else {
            tracing::debug!(?alg, "token algorithm not accepted");
            return Err(TokenFault::Invalid);
        };
        match jsonwebtoken::decode::<VerifiedClaims>(token, key, validation) {
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
            iss: self.rules.issuer.as_deref(),
            aud: self.rules.audience.as_deref(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        let expires_at_ms = i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok((token, expires_at_ms))
    }
}

/// The public key of `alg` from PEM; also used to validate the config file
/// before the server starts.
pub fn public_key(alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, AuthSetupError> {
    Ok(match alg {
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem)?,
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem)?,
        other => return Err(AuthSetupError::Algorithm(format!("{other:?}"))),
    })
}

/// Checks the public key file of `auth.jwt_algorithm`: readable, a PEM key of
/// that algorithm. The message names the file and the problem.
pub fn check_public_key_file(algorithm: &str, path: &str) -> Result<(), String> {
    let alg = parse_algorithm(algorithm).map_err(|e| e.to_string())?;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    public_key(alg, &pem)
        .map(drop)
        .map_err(|e| format!("{path} is not a PEM {algorithm} public key ({e})"))
}

fn validation(alg: Algorithm, rules: &ClaimRules) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = EXP_LEEWAY_S;
    v.validate_exp = true;
    let mut required = vec!["exp", "sub"];
    match &rules.audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    if let Some(iss) = &rules.issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
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
