//! PLACEHOLDER: tokens (JWT), passwords (Argon2id) and authentication.
pub struct Authenticator;
