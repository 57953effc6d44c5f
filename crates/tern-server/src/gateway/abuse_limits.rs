//! Abuse limits keyed by client: open connections (counted when a socket is
//! accepted, before any HTTP is parsed) and new WebSocket sessions per
//! second per IP address, login attempts per IP and per username. Behind
//! `http.trusted_proxies` the client address comes from the forwarding
//! headers. Per-key state is bounded: counts drop to nothing when the last
//! connection ends, and a sweeper trims idle rate-limiter state.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tern_proto::ids::validate_username;

use crate::config::LimitsConfig;
use crate::http::client_ip::TrustedProxies;
use crate::service::{ServiceError, ServiceResult};

/// Shards of the open-connection counts, so that connects from many
/// addresses rarely wait on one lock.
const SHARDS: usize = 16;
/// `retry_after_ms` suggested when an address already holds its maximum of
/// connections: there is no schedule to compute, one must close first.
const FULL_RETRY_MS: u64 = 1_000;

/// An address already holds its maximum of connections.
const TOO_MANY: Refused = Refused {
    reason: "too many connections from this address",
    retry_after_ms: FULL_RETRY_MS,
};

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: &'static str,
    pub retry_after_ms: u64,
}

/// Every per-client abuse limit of one server. Shared as `Arc<AbuseLimits>`.
pub struct AbuseLimits {
    /// Changed by a reload; the rate quotas below are fixed at start.
    max_connections_per_ip: AtomicU32,
    open: Box<[Mutex<HashMap<IpAddr, u32>>]>,
    shard_hasher: RandomState,
    connects: DefaultKeyedRateLimiter<IpAddr>,
    logins_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    logins_by_user: DefaultKeyedRateLimiter<String>,
    proxies: TrustedProxies,
}

/// One open connection counted against its address; dropping it (when the
/// connection task ends) gives the place back.
pub struct ConnectionSlot {
    limits: Arc<AbuseLimits>,
    ip: IpAddr,
}

impl AbuseLimits {
    /// Builds the limits; [`AbuseLimits::sweeper`] keeps their memory
    /// bounded.
    pub fn new(cfg: &LimitsConfig) -> Arc<Self> {
        Self::with_proxies(cfg, TrustedProxies::default())
    }

    /// Like [`AbuseLimits::new`], believing the forwarding headers of `proxies`.
    pub fn with_proxies(cfg: &LimitsConfig, proxies: TrustedProxies) -> Arc<Self> {
        let connects = nonzero(cfg.connects_per_sec_per_ip);
        let by_ip = nonzero(cfg.login_per_ip_per_min);
        let by_user = nonzero(cfg.login_per_user_per_min);
        Arc::new(Self {
            max_connections_per_ip: AtomicU32::new(cfg.max_connections_per_ip),
            open: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_hasher: RandomState::new(),
            connects: RateLimiter::keyed(Quota::per_second(connects).allow_burst(connects)),
            logins_by_ip: RateLimiter::keyed(Quota::per_minute(by_ip).allow_burst(by_ip)),
            logins_by_user: RateLimiter::keyed(Quota::per_minute(by_user).allow_burst(by_user)),
            proxies,
        })
    }

    /// Trims idle limiter state every `every` until `stop` (run it on the
    /// server's background tracker). Holds the limits only weakly.
    pub fn sweeper(
        self: &Arc<Self>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let limits: Weak<AbuseLimits> = Arc::downgrade(self);
        async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(limits) = limits.upgrade() else {
                    return;
                };
                limits.sweep();
            }
        }
    }

    /// Applies a reloaded `limits.max_connections_per_ip`; connections
    /// already open stay open.
    pub fn set_max_connections_per_ip(&self, max: u32) {
        self.max_connections_per_ip.store(max, Ordering::Relaxed);
    }

    /// The client address of a request from `peer` (see [`TrustedProxies`]).
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        self.proxies.client_ip(peer, headers)
    }

    /// Admits a socket just accepted from `peer`, before any HTTP is read:
    /// counts it against `limits.max_connections_per_ip`. A trusted proxy
    /// carries many clients and is not counted here (`Ok(None)`); its
    /// clients are counted one by one when they open WebSocket sessions.
    pub fn admit_socket(self: &Arc<Self>, peer: IpAddr) -> Result<Option<ConnectionSlot>, Refused> {
        if self.proxies.contains(peer) {
            return Ok(None);
        }
        self.take_slot(client_key(peer)).map(Some).ok_or(TOO_MANY)
    }

    /// Admits a WebSocket session of the client at `ip` (already counted
    /// at accept time when `counted`), or says why not: its connect rate,
    /// and, when not counted yet, its open connections. A returned slot
    /// must live as long as the session.
    pub fn admit_session(
        self: &Arc<Self>,
        ip: IpAddr,
        counted: bool,
    ) -> Result<Option<ConnectionSlot>, Refused> {
        let ip = client_key(ip);
        let slot = if counted {
            None
        } else {
            Some(self.take_slot(ip).ok_or(TOO_MANY)?)
        };
        // Checked second: a refused slot must not also spend a connect token.
        // On refusal `slot` is dropped and the count goes back down.
        check(&self.connects, &ip).map_err(|retry_after_ms| Refused {
            reason: "connecting too fast from this address",
            retry_after_ms,
        })?;
        Ok(slot)
    }

    /// Admits a new WebSocket connection from `ip` that was not counted at
    /// accept time, or says why not. The returned slot must live as long
    /// as the connection.
    pub fn admit_connection(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refused> {
        self.admit_session(ip, false)?.ok_or(TOO_MANY)
    }

    /// Counts a login attempt by `ip` (when known) for `username`; refuses it
    /// with `RateLimited` when either is over its per-minute budget. Names
    /// that cannot exist are limited by address only, so junk names cannot
    /// fill the table.
    pub fn check_login(&self, ip: Option<IpAddr>, username: &str) -> ServiceResult<()> {
        let limited = |retry_after_ms| ServiceError::RateLimited { retry_after_ms };
        if let Some(ip) = ip {
            check(&self.logins_by_ip, &client_key(ip)).map_err(limited)?;
        }
        if validate_username(username).is_ok() {
            check(&self.logins_by_user, &username.to_owned()).map_err(limited)?;
        }
        Ok(())
    }

    /// Forgets rate-limiter state that is back to "fresh" and frees the
    /// memory it held.
    pub fn sweep(&self) {
        self.connects.retain_recent();
        self.connects.shrink_to_fit();
        self.logins_by_ip.retain_recent();
        self.logins_by_ip.shrink_to_fit();
        self.logins_by_user.retain_recent();
        self.logins_by_user.shrink_to_fit();
    }

    /// Connections open from `ip` right now.
    pub fn open_connections(&self, ip: IpAddr) -> u32 {
        let ip = client_key(ip);
        self.shard(&ip).get(&ip).copied().unwrap_or(0)
    }

    fn take_slot(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut shard = self.shard(&ip);
        let count = shard.entry(ip).or_insert(0);
        if *count >= self.max_connections_per_ip.load(Ordering::Relaxed) {
            if *count == 0 {
                shard.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        if let Entry::Occupied(mut e) = self.shard(&ip).entry(ip) {
            *e.get_mut() = e.get().saturating_sub(1);
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// The locked shard of `ip`. Counts stay consistent under a poisoned
    /// lock (every update is a single write), so poisoning is ignored.
    fn shard(&self, ip: &IpAddr) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        let index = self.shard_hasher.hash_one(ip) as usize % self.open.len();
        self.open[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip);
    }
}

/// One check of a keyed limiter: `Err(retry_after_ms)` when over budget.
fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), u64> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

/// The key an address is limited by: IPv4 (also when IPv4-mapped) as is;
/// IPv6 by its /64, the block one subscriber usually holds whole.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Validation keeps limits above 0; this only keeps construction total.
fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(tweak: impl FnOnce(&mut LimitsConfig)) -> LimitsConfig {
        let mut c = LimitsConfig::default();
        tweak(&mut c);
        c
    }

    fn total_entries(l: &AbuseLimits) -> usize {
        l.open.iter().map(|s| s.lock().unwrap().len()).sum()
    }

    #[test]
    fn slots_count_and_free_on_drop() {
        let limits = AbuseLimits::new(&cfg(|c| c.max_connections_per_ip = 2));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = limits.admit_connection(ip).unwrap();
        let b = limits.admit_connection(ip).unwrap();
        assert_eq!(limits.open_connections(ip), 2);
        let refused = limits.admit_connection(ip).err().unwrap();
        assert_eq!(refused.retry_after_ms, FULL_RETRY_MS);
        assert_eq!(limits.open_connections(ip), 2);
        // Another address is not affected.
        let other = limits
            .admit_connection("10.0.0.2".parse().unwrap())
            .unwrap();
        drop(a);
        assert_eq!(limits.open_connections(ip), 1);
        let c = limits.admit_connection(ip).unwrap();
        drop((b, c, other));
        assert_eq!(limits.open_connections(ip), 0);
        assert_eq!(total_entries(&limits), 0, "zero entries are removed");
    }

    #[test]
    fn connect_rate_refuses_past_the_burst() {
        let limits = AbuseLimits::new(&cfg(|c| c.connects_per_sec_per_ip = 3));
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        let slots: Vec<_> = (0..3)
            .map(|_| limits.admit_connection(ip).unwrap())
            .collect();
        let refused = limits.admit_connection(ip).err().unwrap();
        assert!((1..=1000).contains(&refused.retry_after_ms), "{refused:?}");
        assert_eq!(limits.open_connections(ip), 3, "a refusal holds no slot");
        drop(slots);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_v4_by_the_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn logins_limited_per_user_and_per_ip() {
        let limits = AbuseLimits::new(&cfg(|c| {
            c.login_per_user_per_min = 2;
            c.login_per_ip_per_min = 3;
        }));
        let ip = Some("10.0.0.4".parse().unwrap());
        limits.check_login(None, "alice").unwrap();
        limits.check_login(None, "alice").unwrap();
        let err = limits.check_login(None, "alice").unwrap_err();
        assert!(
            matches!(err, ServiceError::RateLimited { retry_after_ms } if retry_after_ms > 1000)
        );
        for _ in 0..3 {
            limits.check_login(ip, "NOT A NAME").unwrap();
        }
        assert!(limits.check_login(ip, "bob").is_err());
        limits.check_login(None, "bob").unwrap();
    }

    #[test]
    fn sweep_forgets_idle_keys() {
        // 1000/s: a key used once is back to fresh after 1 ms.
        let limits = AbuseLimits::new(&cfg(|c| {
            c.connects_per_sec_per_ip = 1000;
            c.login_per_user_per_min = 10;
        }));
        for i in 0..50u8 {
            drop(
                limits
                    .admit_connection(IpAddr::from([10, 1, 0, i]))
                    .unwrap(),
            );
        }
        limits.check_login(None, "carol").unwrap();
        assert_eq!(limits.connects.len(), 50);
        std::thread::sleep(Duration::from_millis(1100));
        limits.sweep();
        assert_eq!(limits.connects.len(), 0);
        assert_eq!(limits.logins_by_user.len(), 1, "carol is not fresh yet");
    }
}
