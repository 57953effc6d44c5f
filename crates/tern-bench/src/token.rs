//! HS256 tokens minted from the server's secret (no registration needed).

use std::time::{SystemTime, UNIX_EPOCH};

/// A token for `user`, valid for a day.
pub fn mint(secret: &str, user: &str) -> anyhow::Result<String> {
    mint_claims(secret, user, None)
}

/// A token for `user` with the claim `role: "admin"` (the admin API),
/// valid for a day.
pub fn mint_admin(secret: &str, user: &str) -> anyhow::Result<String> {
    mint_claims(secret, user, Some("admin"))
}

fn mint_claims(secret: &str, user: &str, role: Option<&str>) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims = serde_json::json!({"sub": user, "iat": now, "exp": now + 86_400});
    if let Some(role) = role {
        claims["role"] = role.into();
    }
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Wall-clock microseconds since the Unix epoch (carried in message bodies
/// to measure send→delivery latency, also across worker processes).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
