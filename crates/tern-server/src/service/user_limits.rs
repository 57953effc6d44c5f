//! Per-user send limits for HTTP sends (`limits.send_rate` /
//! `limits.send_burst`, the same bucket as a WebSocket session's), answered
//! 429 with `Retry-After`. Idle buckets are trimmed so the map stays bounded
//! by the users active in the last minute. A reload changing the rate or
//! burst starts every user with a new, full bucket.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::gateway::{SendLimiter, Verdict};

/// Buckets idle this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(60);
/// Trim when the map grows past this many users (and then every time it
/// doubles), so trimming costs O(1) amortized per send.
const TRIM_AT: usize = 4096;

/// Token buckets per user.
pub struct UserSendLimits {
    inner: Mutex<Buckets>,
}

struct Buckets {
    rate: u32,
    burst: u32,
    map: HashMap<String, (SendLimiter, Instant)>,
    trim_at: usize,
}

impl UserSendLimits {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            inner: Mutex::new(Buckets {
                rate,
                burst,
                map: HashMap::new(),
                trim_at: TRIM_AT,
            }),
        }
    }

    /// `Ok` if `user` may send now, else how long to wait (ms).
    pub fn admit(&self, user: &str, now: Instant) -> Result<(), u64> {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if b.map.len() >= b.trim_at {
            b.map
                .retain(|_, (_, used)| now.saturating_duration_since(*used) < IDLE);
            b.trim_at = (b.map.len() * 2).max(TRIM_AT);
        }
        let (rate, burst) = (b.rate, b.burst);
        let entry = b
            .map
            .entry(user.to_owned())
            // No abuse close over HTTP (no connection to close): limit 0
            // keeps the refusal log at one entry; Abuse means Limited here.
            .or_insert_with(|| (SendLimiter::new(rate, burst, 0), now));
        entry.1 = now;
        match entry.0.check(now) {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after_ms } | Verdict::Abuse { retry_after_ms } => {
                Err(retry_after_ms)
            }
        }
    }

    /// Changes the rate and burst (on reload); when they differ, every
    /// bucket is forgotten, so each user starts again with a full one.
    pub fn set_rate(&self, rate: u32, burst: u32) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if (b.rate, b.burst) != (rate, burst) {
            (b.rate, b.burst) = (rate, burst);
            b.map.clear();
        }
    }

    /// Users with a live bucket (for tests and stats).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_buckets_and_trimming() {
        let l = UserSendLimits::new(1, 2);
        let t0 = Instant::now();
        assert!(l.admit("a", t0).is_ok());
        assert!(l.admit("a", t0).is_ok());
        assert_eq!(l.admit("a", t0), Err(1000));
        assert!(l.admit("b", t0).is_ok(), "buckets are per user");
        // Fill up to the trim threshold ("a" and "b" are already in).
        for i in 0..TRIM_AT - 2 {
            l.admit(&format!("u{i}"), t0).ok();
        }
        assert_eq!(l.len(), TRIM_AT);
        let later = t0 + IDLE + Duration::from_secs(1);
        l.admit("fresh", later).ok();
        assert_eq!(l.len(), 1, "idle buckets are trimmed");
    }
}
