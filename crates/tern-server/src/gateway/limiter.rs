//! Per-session send limits: a token bucket (`limits.send_rate` per second,
//! `limits.send_burst` burst) and the abuse window that turns too many
//! `rate_limited` answers within a minute into a 4008 close.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const ABUSE_WINDOW: Duration = Duration::from_secs(60);

/// What the limiter decided about one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; retry after this many ms.
    Limited {
        retry_after_ms: u64,
    },
    /// Refused, and the session crossed the abuse limit: close it (4008).
    Abuse {
        retry_after_ms: u64,
    },
}

/// Token bucket plus abuse counter. Plain data: owned by its connection task.
#[derive(Debug)]
pub struct SendLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    abuse_limit: u32,
    /// When the recent refusals happened (a true sliding minute). `None`,
    /// one word in every connection's future, for sessions that behave
    /// (a bare `VecDeque` is four words in every one of them).
    #[allow(clippy::box_collection)]
    refusals: Option<Box<VecDeque<Instant>>>,
}

impl SendLimiter {
    pub fn new(rate: u32, burst: u32, abuse_limit: u32) -> Self {
        let now = Instant::now();
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            refilled: now,
            abuse_limit,
            refusals: None,
        }
    }

    /// Takes one token if there is one.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        let retry_after_ms = (((1.0 - self.tokens) / self.rate) * 1000.0).ceil() as u64;
        let refusals = self.refusals.get_or_insert_with(Box::default);
        while let Some(&first) = refusals.front() {
            if now.saturating_duration_since(first) < ABUSE_WINDOW {
                break;
            }
            refusals.pop_front();
        }
        refusals.push_back(now);
        // Only the newest abuse_limit + 1 refusals matter: keep no more.
        if refusals.len() > self.abuse_limit as usize + 1 {
            refusals.pop_front();
        }
        if refusals.len() > self.abuse_limit as usize {
            Verdict::Abuse { retry_after_ms }
        } else {
            Verdict::Limited { retry_after_ms }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_abuse() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(10, 3, 2);
        for _ in 0..3 {
            assert_eq!(l.check(t0), Verdict::Allowed);
        }
        assert_eq!(
            l.check(t0),
            Verdict::Limited {
                retry_after_ms: 100
            }
        );
        assert_eq!(l.check(t0 + Duration::from_millis(100)), Verdict::Allowed);
        let t1 = t0 + Duration::from_millis(100);
        assert!(matches!(l.check(t1), Verdict::Limited { .. }));
        assert!(
            matches!(l.check(t1), Verdict::Abuse { .. }),
            "third refusal in the window"
        );
    }

    #[test]
    fn abuse_window_slides() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(1, 1, 2);
        assert_eq!(l.check(t0), Verdict::Allowed);
        let t1 = t0 + Duration::from_millis(10);
        assert!(matches!(l.check(t1), Verdict::Limited { .. }));
        let t2 = t0 + Duration::from_secs(59);
        // Refill gives one token at t2; spend it, then two refusals.
        assert_eq!(l.check(t2), Verdict::Allowed);
        assert!(matches!(l.check(t2), Verdict::Limited { .. }));
        // Third refusal within 60 s of the first (t1): abuse, across any
        // fixed minute boundary.
        let t3 = t0 + Duration::from_millis(59_500);
        assert!(matches!(l.check(t3), Verdict::Abuse { .. }));
        // Once t1 is more than a minute old it no longer counts.
        let mut l = SendLimiter::new(1, 1, 2);
        l.check(t0);
        l.check(t1);
        assert!(matches!(
            l.check(t0 + Duration::from_secs(61)),
            Verdict::Allowed
        ));
        assert!(matches!(
            l.check(t0 + Duration::from_secs(61)),
            Verdict::Limited { .. }
        ));
        assert!(matches!(
            l.check(t0 + Duration::from_secs(61)),
            Verdict::Limited { .. }
        ));
    }

    #[test]
    fn abuse_window_resets_after_a_minute() {
        let t0 = Instant::now();
        let mut l = SendLimiter::new(1, 1, 1);
        assert_eq!(l.check(t0), Verdict::Allowed);
        assert!(matches!(l.check(t0), Verdict::Limited { .. }));
        let later = t0 + Duration::from_secs(61);
        assert_eq!(l.check(later), Verdict::Allowed);
        assert!(matches!(l.check(later), Verdict::Limited { .. }));
    }
}
