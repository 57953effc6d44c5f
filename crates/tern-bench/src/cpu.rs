//! The server's CPU time over a measured phase (user + system time of every
//! thread, from `/proc/<pid>/stat`, with `--server-pid`), reported per
//! message so that servers of different speeds compare.

use std::time::Duration;

use crate::report::Report;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`,
/// 100 on every Linux architecture the bench runs on).
const TICKS_PER_SEC: u64 = 100;

/// User + system CPU time of process `pid` so far (its threads, live and
/// exited), if readable.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14, 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

/// The server's CPU time at the start of a measured phase.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    pid: u32,
    start: Duration,
}

impl CpuClock {
    /// Starts measuring process `pid` (`None` without `--server-pid` or if
    /// `/proc/<pid>/stat` cannot be read).
    pub fn start(pid: Option<u32>) -> Option<Self> {
        let pid = pid?;
        Some(Self {
            pid,
            start: cpu_time(pid)?,
        })
    }

    /// Writes the CPU seconds used since the start (`server_cpu_s`) and the
    /// microseconds per unit counted by the report's `counter`
    /// (`server_cpu_us_per_<unit>`).
    pub fn record(self, report: &mut Report, counter: &str, unit: &str) {
        let n = report.counter(counter);
        let Some(now) = cpu_time(self.pid) else {
            report.error(format!("cannot read /proc/{}/stat", self.pid));
            return;
        };
        let used = now.saturating_sub(self.start);
        report.gauge("server_cpu_s", used.as_secs_f64());
        if n > 0 {
            let per = used.as_secs_f64() * 1e6 / n as f64;
            report.gauge(
                &format!("server_cpu_us_per_{unit}"),
                (per * 100.0).round() / 100.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let t0 = super::cpu_time(pid).unwrap();
        // Burn a little CPU: the clock never goes back.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(super::cpu_time(pid).unwrap() >= t0);
        assert!(super::cpu_time(u32::MAX).is_none());
    }
}
