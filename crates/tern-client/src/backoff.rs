//! Reconnect delays: exponential backoff with full jitter, and the jittered
//! wait after a `goaway`.

use std::time::Duration;

use rand::Rng;

use crate::config::ReconnectPolicy;

/// Counts failed attempts and picks the next delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self { policy, attempt: 0 }
    }

    /// The ceiling of attempt `n`: `min(max, initial * multiplier^n)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let p = &self.policy;
        let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = p.initial.as_secs_f64() * p.multiplier.powi(exp);
        if secs.is_finite() && secs < p.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            p.max
        }
    }

    /// The delay before the next attempt (uniform in `[0, ceiling]`), or
    /// `None` once `max_attempts` attempts have failed.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.policy.max_attempts.is_some_and(|m| self.attempt >= m) {
            return None;
        }
        let ceiling = self.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        Some(ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0)))
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection succeeded: start again from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The wait after `goaway`: `reconnect_ms` ± 25 %.
pub fn goaway_delay(reconnect_ms: u64) -> Duration {
    let factor = rand::thread_rng().gen_range(0.75..=1.25);
    Duration::from_millis(reconnect_ms).mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: Option<u32>) -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            max_attempts,
        }
    }

    #[test]
    fn ceiling_grows_then_caps() {
        let b = Backoff::new(policy(None));
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_below_ceiling_and_reset() {
        let mut b = Backoff::new(policy(None));
        for n in 0..20 {
            let ceiling = b.ceiling(n);
            let d = b.next_delay().unwrap();
            assert!(d <= ceiling, "{d:?} > {ceiling:?}");
        }
        assert_eq!(b.attempts(), 20);
        b.reset();
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let mut b = Backoff::new(policy(Some(2)));
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_none());
    }

    #[test]
    fn goaway_delay_is_near_the_hint() {
        for _ in 0..50 {
            let d = goaway_delay(2000);
            assert!(d >= Duration::from_millis(1500) && d <= Duration::from_millis(2500));
        }
    }
}
