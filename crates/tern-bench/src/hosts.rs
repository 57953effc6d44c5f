//! Several servers: `--host a --host b` (or `--host a,b`, or
//! `TERN_BENCH_HOST=a,b`) spreads the connections over the nodes of a
//! cluster, deterministically: the user whose name ends in index i
//! connects to host i mod n, in every process of `--procs` (each worker
//! has the whole list), so a user always lands on the same host.
//!
//! `direct` puts the receiver of pair i on host i + 1 (mod n), so with two
//! hosts or more every message crosses nodes; `fanout` spreads its members
//! and senders round-robin and builds its group through the first host.
//! With one host nothing changes, in the load or in the report.

use std::sync::Arc;

use anyhow::anyhow;

use crate::cli::Common;
use crate::net::Target;
use crate::report::Report;

/// The resolved hosts of a run, in the order given (at least one).
#[derive(Debug, Clone)]
pub struct Hosts(Arc<[Arc<Target>]>);

impl Hosts {
    /// Resolves every `--host`; fails if there is none or one does not
    /// resolve.
    pub async fn resolve(common: &Common) -> anyhow::Result<Self> {
        let names = common.host_list();
        if names.is_empty() {
            return Err(anyhow!("no --host given"));
        }
        let mut targets = Vec::with_capacity(names.len());
        for (i, h) in names.iter().enumerate() {
            targets.push(Arc::new(Target::resolve_host(common, i, h).await?));
        }
        Ok(Self(targets.into()))
    }

    /// One resolved target (tests, single-host callers).
    pub fn single(target: Target) -> Self {
        Self(vec![Arc::new(target)].into())
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: [`Hosts::resolve`] fails without a host.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the run spreads over two hosts or more.
    pub fn multi(&self) -> bool {
        self.0.len() > 1
    }

    /// The host of user index `i`: host `i mod n`.
    pub fn get(&self, i: usize) -> &Arc<Target> {
        &self.0[i % self.0.len()]
    }

    /// The first host: group creation, admin calls.
    pub fn first(&self) -> &Arc<Target> {
        self.get(0)
    }

    /// Every host, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.0.iter()
    }

    /// Sets the source address of every loopback IPv4 host that has none
    /// (the parent of `--procs`: see [`crate::scenario::fanout`]).
    pub fn with_loopback_source(&self, source: std::net::IpAddr) -> Self {
        let targets: Vec<Arc<Target>> = self
            .0
            .iter()
            .map(|t| {
                if t.source.is_none() && t.addr.ip().is_loopback() && t.addr.is_ipv4() {
                    let mut t = Target::clone(t);
                    t.source = Some(source);
                    Arc::new(t)
                } else {
                    t.clone()
                }
            })
            .collect();
        Self(targets.into())
    }

    /// With several hosts, writes them into `report` (the `hosts` list and
    /// the `hosts` parameter); with one, leaves the report as it was.
    pub fn describe(&self, report: &mut Report) {
        report.param("transport", self.0[0].transport.name());
        if self.multi() {
            report.hosts = self.0.iter().map(|t| t.host.clone()).collect();
            report.param("hosts", self.len());
        }
    }
}

/// Counters of connections per host (`connected_node<k>`), written only
/// with several hosts: `ok[i]` tells whether user `i` (at host
/// `host_of(i)`) is connected.
pub fn count_per_host(
    report: &mut Report,
    hosts: &Hosts,
    ok: impl Iterator<Item = bool>,
    host_of: impl Fn(usize) -> usize,
) {
    if !hosts.multi() {
        return;
    }
    for k in 0..hosts.len() {
        report.count(&node_key(k, "connected"), 0);
    }
    for (i, up) in ok.enumerate() {
        if up {
            report.count(&node_key(host_of(i) % hosts.len(), "connected"), 1);
        }
    }
}

/// The report key of figure `what` of host `k`: `node<k>_<what>`.
pub fn node_key(k: usize, what: &str) -> String {
    format!("node{k}_{what}")
}
