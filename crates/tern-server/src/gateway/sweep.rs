//! The session sweep: one task that times every session's idle timeout
//! and the drain, instead of a timer in each connection's future (an idle
//! connection then holds no timer at all). It closes a session through its
//! outbox, with the code the connection then writes.

use std::time::Duration;

use tern_proto::CloseCode;
use tokio::time::{sleep_until, Instant};

use crate::service::registry::clock_ms;
use crate::state::AppState;

/// Sweeps at least this often (the idle timeout is met within this).
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// And at most this often (tests run with idle timeouts of a few ms).
const MIN_PERIOD: Duration = Duration::from_millis(5);

/// Runs until the server's background tasks stop: closes sessions silent
/// past their idle timeout (4003); once draining starts, tells every
/// session `goaway` and, `limits.drain_timeout_ms` later, closes those
/// still open (1001).
pub async fn run(state: AppState) {
    let lifecycle = &state.lifecycle;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let period = period(&state);
        let mut next = Instant::now() + period;
        if let Some(deadline) = drain_deadline {
            next = next.min(deadline);
        }
        tokio::select! {
            () = lifecycle.root.cancelled() => return,
            () = lifecycle.drain.cancelled(), if drain_deadline.is_none() => {
                let limits = state.hub.config().limits.clone();
                drain_deadline = Some(Instant::now() + Duration::from_millis(limits.drain_timeout_ms));
                state.hub.registry().for_each(|s| {
                    s.tell_goaway(limits.goaway_reconnect_ms);
                });
                continue;
            }
            () = sleep_until(next) => {}
        }
        let drained = drain_deadline.is_some_and(|d| Instant::now() >= d);
        sweep(&state, drained);
    }
}

/// One pass: idle sessions close with 4003; after the drain deadline every
/// session closes with 1001.
fn sweep(state: &AppState, drained: bool) {
    let now = clock_ms();
    state.hub.registry().for_each(|s| {
        if drained {
            s.outbox.close(CloseCode::GoingAway);
        } else if s.is_idle(now) {
            s.outbox.close(CloseCode::IdleTimeout);
        }
    });
}

/// A tenth of the idle timeout, within [`MIN_PERIOD`, `MAX_PERIOD`]: a
/// session closes at most that late.
fn period(state: &AppState) -> Duration {
    let idle = Duration::from_millis(state.hub.config().limits.idle_timeout_ms);
    (idle / 10).clamp(MIN_PERIOD, MAX_PERIOD)
}
