//! Authentication: tokens (JWT), built-in accounts (Argon2id passwords) and
//! the check every connection and API call goes through, [`Authenticator`].

pub mod password;
mod provision;
pub mod secret;
pub mod token;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tern_proto::ids::{is_reserved_username, validate_username};
use tern_store::Store;
use tokio::sync::Semaphore;

use crate::config::{AuthConfig, Config};
use crate::metrics::AUTH_FAILURES;
use crate::service::{ServiceError, ServiceResult};
use token::TokenKeys;

/// Passwords are 8 to 128 characters (Unicode scalar values).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// Users remembered by the ban cache before it is emptied and refilled.
const USER_CACHE_MAX: usize = 100_000;
const BAD_LOGIN: &str = "invalid username or password";
const BAD_TOKEN: &str = "invalid or expired token";

/// Who a request or a session acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// The token carried `role: "admin"`.
    pub admin: bool,
}

/// Why authentication could not be set up (bad config or data directory).
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JWT secret file {path} is unusable ({reason}); delete it to generate a new one")]
    BadSecretFile { path: PathBuf, reason: String },
    #[error("unsupported auth.jwt_algorithm {0:?}: use HS256, EdDSA or RS256")]
    Algorithm(String),
    #[error("auth.jwt_algorithm {0} needs auth.jwt_public_key_file")]
    MissingPublicKey(String),
    #[error("bad JWT public key: {0}")]
    PublicKey(#[from] jsonwebtoken::errors::Error),
}

/// Verifies tokens, registers and logs in users. One per server, shared.
pub struct Authenticator {
    keys: TokenKeys,
    store: Arc<dyn Store>,
    /// `auth.auto_provision` and `auth.token_ttl_s`, changed by a reload.
    auto_provision: AtomicBool,
    token_ttl_s: AtomicU64,
    hash_permits: Arc<Semaphore>,
    /// username → banned, for users known to exist: a reconnect storm must
    /// not cost one database query per connection. Kept current on this node
    /// by [`Authenticator::set_banned_cached`]; never held across `.await`.
    users: Mutex<HashMap<String, bool>>,
    /// Batches the first connects of users not in `users`.
    provisioner: provision::Provisioner,
}

impl Authenticator {
    /// Loads the secret (config, else `<data_dir>/jwt.secret`, generated on
    /// first start) and, for EdDSA/RS256, the public key file.
    pub async fn new(cfg: &Config, store: Arc<dyn Store>) -> Result<Self, AuthSetupError> {
        let secret = secret::load(&cfg.jwt_secret, &cfg.data_dir)?;
        let key_file = &cfg.auth.jwt_public_key_file;
        let pem = if key_file.is_empty() || cfg.auth.jwt_algorithm.eq_ignore_ascii_case("HS256") {
            None
        } else {
            let bytes = tokio::fs::read(key_file)
                .await
                .map_err(|source| AuthSetupError::Io {
                    path: PathBuf::from(key_file),
                    source,
                })?;
            Some(bytes)
        };
        Ok(Self {
            keys: TokenKeys::with_rules(
                &secret,
                &cfg.auth.jwt_algorithm,
                pem.as_deref(),
                claim_rules(&cfg.auth),
            )?,
            provisioner: provision::Provisioner::spawn(store.clone(), cfg.auth.provision_batch_max),
            store,
            auto_provision: AtomicBool::new(cfg.auth.auto_provision),
            token_ttl_s: AtomicU64::new(cfg.auth.token_ttl_s),
            hash_permits: Arc::new(Semaphore::new(cfg.auth.max_concurrent_hashes.max(1))),
            users: Mutex::default(),
        })
    }

    /// Applies the reloadable `[auth]` keys; tokens already issued keep
    /// their expiry.
    pub fn apply_reload(&self, cfg: &AuthConfig) {
        self.auto_provision
            .store(cfg.auto_provision, Ordering::Relaxed);
        self.token_ttl_s.store(cfg.token_ttl_s, Ordering::Relaxed);
    }

    /// Who `token` speaks for. Invalid, expired, reserved or (without
    /// auto-provisioning) unknown → `Unauthorized`; banned → `Forbidden`.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Identity> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|f| fail(f.as_str(), BAD_TOKEN))?;
        let user = claims.sub;
        if is_reserved_username(&user) || validate_username(&user).is_err() {
            return Err(fail("bad_subject", BAD_TOKEN));
        }
        if self.is_banned(&user).await? {
            return Err(banned());
        }
        Ok(Identity {
            admin: claims.role.as_deref() == Some("admin"),
            user,
        })
    }

    /// Creates a password account.
    pub async fn register(&self, username: &str, password: &str) -> ServiceResult<()> {
        validate_username(username).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if is_reserved_username(username) {
            return Err(ServiceError::BadRequest(format!(
                "username {username:?} is reserved"
            )));
        }
        if !PASSWORD_CHARS.contains(&password.chars().count()) {
            return Err(ServiceError::BadRequest(
                "password must be 8 to 128 characters".into(),
            ));
        }
        let password = password.to_owned();
        let hash = self
            .hashing(move || password::hash(&password))
            .await?
            .map_err(|e| ServiceError::Internal(format!("password hashing: {e}")))?;
        if self
            .store
            .create_user(username, Some(&hash), now_ms())
            .await?
        {
            self.remember(username, false);
            Ok(())
        } else {
            Err(ServiceError::Conflict("username taken".into()))
        }
    }

    /// Checks a password and issues a token: `(token, expires_at ms)`.
    ///
    /// Unknown users and users without a password (created by a token) get
    /// the same answer as a wrong password, after the same amount of work.
    pub async fn login(&self, username: &str, password: &str) -> ServiceResult<(String, i64)> {
        let record = if validate_username(username).is_ok() {
            self.store.get_user(username).await?
        } else {
            None
        };
        let stored = record.as_ref().and_then(|r| r.password_hash.clone());
        let has_hash = stored.is_some();
        let phc = stored.unwrap_or_else(|| password::DUMMY_HASH.to_owned());
        let password = password.to_owned();
        let matches = self
            .hashing(move || password::verify(&password, &phc))
            .await?;
        let Some(record) = record.filter(|_| matches && has_hash) else {
            return Err(fail("bad_password", BAD_LOGIN));
        };
        self.remember(username, record.banned);
        if record.banned {
            return Err(banned());
        }
        let ttl_s = self.token_ttl_s.load(Ordering::Relaxed);
        self.issue(username, false, ttl_s)
    }

    /// An HS256 token for `user` (`role: "admin"` when `admin`), valid
    /// `ttl_s` seconds: `(token, expires_at ms)`.
    pub fn issue(&self, user: &str, admin: bool, ttl_s: u64) -> ServiceResult<(String, i64)> {
        self.keys
            .issue(user, admin, ttl_s)
            .map_err(|e| ServiceError::Internal(format!("signing a token: {e}")))
    }

    /// Updates the ban cache after a ban or unban (the admin API calls this
    /// besides `Store::set_banned`).
    pub fn set_banned_cached(&self, user: &str, banned: bool) {
        self.remember(user, banned);
    }

    /// Whether `user` is banned; creates it when unknown and auto-provisioning
    /// (batched with other first connects: one store call for many).
    async fn is_banned(&self, user: &str) -> ServiceResult<bool> {
        if let Some(banned) = self.cached(user) {
            return Ok(banned);
        }
        let banned = if self.auto_provision.load(Ordering::Relaxed) {
            let found = self.provisioner.provision(user).await?;
            if found.created {
                tracing::debug!(user, "user provisioned from a token");
            }
            found.banned
        } else {
            match self.store.get_user(user).await? {
                Some(record) => record.banned,
                None => return Err(fail("unknown_user", BAD_TOKEN)),
            }
        };
        self.remember(user, banned);
        Ok(banned)
    }

    fn cached(&self, user: &str) -> Option<bool> {
        self.users.lock().ok()?.get(user).copied()
    }

    fn remember(&self, user: &str, banned: bool) {
        if let Ok(mut users) = self.users.lock() {
            if users.len() >= USER_CACHE_MAX && !users.contains_key(user) {
                users.clear();
            }
            users.insert(user.to_owned(), banned);
        }
    }

    /// Runs a password hash or check on the blocking pool, at most
    /// `auth.max_concurrent_hashes` at once (each takes ~19 MiB and a core).
    async fn hashing<T, F>(&self, work: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self
            .hash_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal("hash semaphore closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing task: {e}")))
    }
}

impl crate::service::BanCache for Authenticator {
    fn set_banned_cached(&self, user: &str, banned: bool) {
        Authenticator::set_banned_cached(self, user, banned);
    }

    fn forget_all(&self) {
        if let Ok(mut users) = self.users.lock() {
            users.clear();
        }
    }
}

/// The `iss` / `aud` a token must carry, from `[auth]` (empty: unchecked).
pub fn claim_rules(cfg: &AuthConfig) -> token::ClaimRules {
    let set = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    token::ClaimRules {
        issuer: set(&cfg.jwt_issuer),
        audience: set(&cfg.jwt_audience),
    }
}

/// Counts an authentication failure and builds the `Unauthorized` answer.
fn fail(reason: &'static str, message: &str) -> ServiceError {
    metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
    ServiceError::Unauthorized(message.to_owned())
}

fn banned() -> ServiceError {
    metrics::counter!(AUTH_FAILURES, "reason" => "banned").increment(1);
    ServiceError::Forbidden("user is banned".into())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
