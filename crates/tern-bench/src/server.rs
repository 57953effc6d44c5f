//! The server's memory (resident set size), from `/proc/<pid>/status` when
//! `--server-pid` is given, else from `GET /api/v1/admin/stats` (its
//! `nodes[0].rss_kib`) with a minted admin token.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::Common;
use crate::net::Target;

/// VmRSS of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Longest wait for one `/admin/stats` answer.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server's memory is read.
#[derive(Debug, Clone)]
pub enum MemSource {
    /// `/proc/<pid>/status` (`--server-pid`; the server on this machine).
    Proc(u32),
    /// `GET /api/v1/admin/stats`, `nodes[0].rss_kib`, with this admin token.
    AdminStats { target: Target, token: String },
}

impl MemSource {
    /// The source of this run and how the report names it: `/proc/<pid>`
    /// with `--server-pid`, else `/admin/stats` if it answers with
    /// `rss_kib`. Workers never read memory (their parent does): `None`.
    pub async fn detect(common: &Common) -> (Option<Arc<Self>>, Option<String>) {
        if common.worker_index.is_some() {
            return (None, None);
        }
        if let Some(pid) = common.server_pid {
            let s = Self::Proc(pid);
            let name = s.describe();
            return (Some(Arc::new(s)), Some(name));
        }
        let target = match Target::resolve(common).await {
            Ok(t) => t,
            Err(e) => return (None, Some(format!("none ({e:#})"))),
        };
        let token = match crate::token::mint_admin(&common.jwt_secret, &common.admin_user) {
            Ok(t) => t,
            Err(e) => return (None, Some(format!("none (admin token: {e:#})"))),
        };
        let s = Self::AdminStats { target, token };
        match s.admin_rss().await {
            Ok(_) => {
                let name = format!("{} (as {})", s.describe(), common.admin_user);
                (Some(Arc::new(s)), Some(name))
            }
            Err(e) => (
                None,
                Some(format!(
                    "none (no --server-pid, and /api/v1/admin/stats: {e})"
                )),
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Proc(pid) => format!("/proc/{pid}/status"),
            Self::AdminStats { .. } => "GET /api/v1/admin/stats".into(),
        }
    }

    /// The server's RSS in KiB, if it can be read now.
    pub async fn rss_kib(&self) -> Option<u64> {
        match self {
            Self::Proc(pid) => rss_kib(*pid),
            Self::AdminStats { .. } => self.admin_rss().await.ok(),
        }
    }

    async fn admin_rss(&self) -> Result<u64, String> {
        let Self::AdminStats { target, token } = self else {
            return Err("not an admin source".into());
        };
        let call = target.http_with("GET", "/api/v1/admin/stats", token, None);
        let (status, v) = match tokio::time::timeout(STATS_TIMEOUT, call).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(format!("{e:#}")),
            Err(_) => return Err(format!("no answer within {STATS_TIMEOUT:?}")),
        };
        if status != 200 {
            return Err(format!(
                "HTTP {status} {}",
                crate::net::truncate(&v.to_string())
            ));
        }
        v["nodes"][0]["rss_kib"]
            .as_u64()
            .ok_or_else(|| "no nodes[0].rss_kib in the answer".into())
    }
}

/// Samples the server's RSS every `every` until stopped.
pub struct RssSampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

impl RssSampler {
    pub fn start(source: Arc<MemSource>, every: Duration) -> Self {
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    v = source.rss_kib() => {
                        if let Some(v) = v {
                            samples.push(v);
                        }
                    }
                    _ = rx.changed() => break,
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = rx.changed() => break,
                }
            }
            samples
        });
        Self { stop, task }
    }

    /// Stops sampling; returns the samples (KiB).
    pub async fn finish(self) -> Vec<u64> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
