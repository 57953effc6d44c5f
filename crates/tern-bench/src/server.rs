//! The server's memory (resident set size), from `/proc/<pid>/status` when
//! `--server-pid` is given, else from `GET /api/v1/admin/stats` (its
//! `nodes[0].rss_kib`) with a minted admin token.
//!
//! With several `--host`s the memory is read from each host's own
//! `/admin/stats` (only the answering node, `nodes[0]`, has its `rss_kib`;
//! `--server-pid` is ignored). Hosts answering with the same node id are
//! one node. The `server_rss_*` figures are then the sum over the nodes,
//! and each node has its own `node<k>_…` figures (k: the first host of that
//! node in the `--host` list).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Common;
use crate::hosts::{node_key, Hosts};
use crate::net::Target;
use crate::report::Report;

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
    /// `GET /api/v1/admin/stats`, `nodes[0].rss_kib`, with this admin
    /// token, from each of these hosts (one, or every `--host`).
    AdminStats { targets: Vec<Target>, token: String },
}

/// One host's answer: the node that answered, its RSS and connections.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRss {
    /// The host's index in the `--host` list.
    pub host: usize,
    /// The node's id (`nodes[0].id`).
    pub id: String,
    pub rss_kib: u64,
    /// The node's own count of its connections (`nodes[0].connections`).
    pub connections: u64,
}

impl MemSource {
    /// The source of this run and how the report names it: `/proc/<pid>`
    /// with `--server-pid`, else `/admin/stats` if it answers with
    /// `rss_kib`. Workers never read memory (their parent does): `None`.
    pub async fn detect(common: &Common) -> (Option<Arc<Self>>, Option<String>) {
        if common.worker_index.is_some() {
            return (None, None);
        }
        let several = common.host_list().len() > 1;
        if let (Some(pid), false) = (common.server_pid, several) {
            let s = Self::Proc(pid);
            let name = s.describe();
            return (Some(Arc::new(s)), Some(name));
        }
        let hosts = match Hosts::resolve(common).await {
            Ok(h) => h,
            Err(e) => return (None, Some(format!("none ({e:#})"))),
        };
        let token = match crate::token::mint_admin(&common.jwt_secret, &common.admin_user) {
            Ok(t) => t,
            Err(e) => return (None, Some(format!("none (admin token: {e:#})"))),
        };
        let targets = hosts.iter().map(|t| Target::clone(t)).collect();
        let s = Self::AdminStats { targets, token };
        match s.nodes().await {
            Ok(nodes) => {
                let mut name = format!("{} (as {}", s.describe(), common.admin_user);
                if several && common.server_pid.is_some() {
                    name.push_str("; --server-pid ignored with several hosts");
                }
                name.push(')');
                for n in &nodes {
                    if let Some(first) = nodes.iter().find(|m| m.id == n.id && m.host < n.host) {
                        name.push_str(&format!(
                            "; host {} is the same node as host {} ({})",
                            n.host, first.host, n.id
                        ));
                    }
                }
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
            Self::AdminStats { targets, .. } if targets.len() > 1 => format!(
                "GET /api/v1/admin/stats of each of the {} hosts",
                targets.len()
            ),
            Self::AdminStats { .. } => "GET /api/v1/admin/stats".into(),
        }
    }

    /// Whether the figures are per node (several hosts).
    pub fn per_node(&self) -> bool {
        matches!(self, Self::AdminStats { targets, .. } if targets.len() > 1)
    }

    /// The server's RSS in KiB, if it can be read now; with several hosts,
    /// the sum over the distinct nodes.
    pub async fn rss_kib(&self) -> Option<u64> {
        match self {
            Self::Proc(pid) => rss_kib(*pid),
            Self::AdminStats { .. } => {
                let nodes = self.nodes().await.ok()?;
                Some(distinct(&nodes).iter().map(|n| n.rss_kib).sum())
            }
        }
    }

    /// The RSS in KiB (summed over the nodes as [`Self::rss_kib`]) and,
    /// with several hosts, each host's answer, from one read.
    pub async fn snapshot(&self) -> Option<(u64, Vec<NodeRss>)> {
        if !self.per_node() {
            return self.rss_kib().await.map(|v| (v, Vec::new()));
        }
        let nodes = self.nodes().await.ok()?;
        let sum = distinct(&nodes).iter().map(|n| n.rss_kib).sum();
        Some((sum, nodes))
    }

    /// Each host's answer, in `--host` order (`/admin/stats` only; every
    /// host must answer).
    pub async fn nodes(&self) -> Result<Vec<NodeRss>, String> {
        let Self::AdminStats { targets, token } = self else {
            return Err("not an admin source".into());
        };
        let several = targets.len() > 1;
        let calls = targets.iter().enumerate().map(|(i, t)| async move {
            match admin_node(t, token).await {
                Ok((id, rss, conns)) => Ok((i, id, rss, conns)),
                Err(e) if several => Err(format!("host {i} ({}): {e}", t.host)),
                Err(e) => Err(e),
            }
        });
        let mut out = Vec::with_capacity(targets.len());
        for r in futures_util::future::join_all(calls).await {
            let (host, id, rss_kib, connections) = r?;
            out.push(NodeRss {
                host,
                id,
                rss_kib,
                connections,
            });
        }
        Ok(out)
    }
}

/// The first answer of each node id (hosts naming the same node count once).
pub fn distinct(nodes: &[NodeRss]) -> Vec<&NodeRss> {
    let mut seen = std::collections::HashSet::new();
    nodes
        .iter()
        .filter(|n| seen.insert(n.id.as_str()))
        .collect()
}

/// Writes `node<k>_rss_<phase>_kib` for each distinct node.
pub fn record_nodes(report: &mut Report, phase: &str, nodes: &[NodeRss]) {
    for n in distinct(nodes) {
        report.gauge(
            &node_key(n.host, &format!("rss_{phase}_kib")),
            n.rss_kib as f64,
        );
    }
}

/// The per-node figures of connections held: for each distinct node, the
/// connections the run holds there (the `connected_node<k>` counters of
/// its hosts), the node's own count, and its RSS per connection
/// (`held − base` over the connections the run holds there); and
/// `server_connections_total`, the sum of the nodes' own counts.
pub fn per_conn_by_node(report: &mut Report, base: &[NodeRss], held: &[NodeRss]) {
    let mut conns: BTreeMap<&str, u64> = BTreeMap::new();
    for n in held {
        *conns.entry(n.id.as_str()).or_default() += report.counter(&node_key(n.host, "connected"));
    }
    let mut total = 0;
    for n in distinct(held) {
        total += n.connections;
        report.gauge(
            &node_key(n.host, "server_connections"),
            n.connections as f64,
        );
        let Some(b) = base.iter().find(|b| b.id == n.id) else {
            continue;
        };
        let held_here = conns.get(n.id.as_str()).copied().unwrap_or(0);
        if held_here > 0 {
            report.gauge(
                &node_key(n.host, "kib_per_conn"),
                (n.rss_kib as f64 - b.rss_kib as f64) / held_here as f64,
            );
        }
    }
    report.gauge("server_connections_total", total as f64);
}

/// One host's `nodes[0]`: (id, rss_kib, connections).
async fn admin_node(target: &Target, token: &str) -> Result<(String, u64, u64), String> {
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
    let node = &v["nodes"][0];
    let rss = node["rss_kib"]
        .as_u64()
        .ok_or_else(|| "no nodes[0].rss_kib in the answer".to_owned())?;
    let id = node["id"].as_str().unwrap_or(&target.host).to_owned();
    Ok((id, rss, node["connections"].as_u64().unwrap_or(0)))
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
