//! Results of a run: counters, rates, gauges and HDR latency histograms;
//! the human table and the one-line JSON summary. Workers print the full
//! report (histograms serialized) and the parent merges them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies in microseconds (1 µs to 1 h, 3 significant digits).
#[derive(Debug, Clone)]
pub struct Latency(pub Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // 1 µs .. 1 hour at 3 significant digits: cannot fail.
        Self(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
                Histogram::new(3).unwrap_or_else(|_| unreachable!("3 sigfig histogram"))
            }),
        )
    }

    /// Records `us` microseconds (clamped into range).
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    pub fn add(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(q) as f64 / 1000.0
        }
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.0.len(),
            mean_ms: round3(self.0.mean() / 1000.0),
            p50_ms: round3(self.ms(0.5)),
            p90_ms: round3(self.ms(0.9)),
            p99_ms: round3(self.ms(0.99)),
            p999_ms: round3(self.ms(0.999)),
            max_ms: round3(self.0.max() as f64 / 1000.0),
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut buf)
            .map_err(|e| serde::ser::Error::custom(format!("{e:?}")))?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(buf))
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("{e:?}")))?;
        let mut l = Latency::new();
        let _ = l.0.add(&h);
        Ok(l)
    }
}

/// One latency histogram shared by many tasks of a process. A histogram
/// (1 µs to 1 h, 3 digits) takes about 180 KB: one per connection would
/// cost gigabytes at 20,000 members. Tasks record in batches
/// ([`LatencyBatch`]) to take the lock rarely.
#[derive(Debug, Clone, Default)]
pub struct SharedLatency(Arc<Mutex<Latency>>);

impl SharedLatency {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the histogram so far.
    pub fn snapshot(&self) -> Latency {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A batch that records into this histogram.
    pub fn batch(&self) -> LatencyBatch {
        LatencyBatch {
            shared: self.clone(),
            values: Vec::new(),
        }
    }
}

/// Values waiting to be recorded into a [`SharedLatency`]; recorded when
/// the batch is full and when it is dropped.
#[derive(Debug)]
pub struct LatencyBatch {
    shared: SharedLatency,
    values: Vec<u64>,
}

impl LatencyBatch {
    const SIZE: usize = 128;

    pub fn record(&mut self, us: u64) {
        if self.values.capacity() == 0 {
            self.values.reserve_exact(Self::SIZE);
        }
        self.values.push(us);
        if self.values.len() >= Self::SIZE {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.values.is_empty() {
            return;
        }
        let mut h = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        for v in self.values.drain(..) {
            h.record(v);
        }
    }
}

impl Drop for LatencyBatch {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The result of one run (or one worker's part of it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// Worker processes merged into this report.
    pub procs: usize,
    /// Wall-clock seconds of the measured phase.
    pub elapsed_s: f64,
    /// Summed over workers.
    pub counters: BTreeMap<String, u64>,
    /// Rates (per second), summed over workers.
    pub rates: BTreeMap<String, f64>,
    /// Other figures (server memory…): the maximum over workers.
    pub gauges: BTreeMap<String, f64>,
    /// Merged over workers.
    pub latencies: BTreeMap<String, Latency>,
    /// Scenario parameters, as given.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The first errors seen (at most 10).
    pub errors: Vec<String>,
    /// Where the server's memory figures come from (`/proc/<pid>/status`,
    /// `GET /api/v1/admin/stats`, or none and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_source: Option<String>,
    /// The hosts the connections were spread over, in the order given
    /// (`node<k>_…` figures are of host k); empty with one host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.into(),
            procs: 1,
            ..Self::default()
        }
    }

    pub fn count(&mut self, key: &str, n: u64) {
        *self.counters.entry(key.into()).or_default() += n;
    }

    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    pub fn rate(&mut self, key: &str, v: f64) {
        self.rates.insert(key.into(), v);
    }

    pub fn gauge(&mut self, key: &str, v: f64) {
        self.gauges.insert(key.into(), v);
    }

    pub fn param(&mut self, key: &str, v: impl Into<serde_json::Value>) {
        self.params.insert(key.into(), v.into());
    }

    pub fn latency(&mut self, key: &str) -> &mut Latency {
        self.latencies.entry(key.into()).or_default()
    }

    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.count("errors", 1);
        if self.errors.len() < 10 {
            self.errors.push(e.to_string());
        }
    }

    /// Merges a worker's report into this one.
    pub fn merge(&mut self, other: &Report) {
        if self.scenario.is_empty() {
            self.scenario.clone_from(&other.scenario);
            self.params.clone_from(&other.params);
            self.procs = 0;
        }
        self.procs += other.procs;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        for (k, v) in &other.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.rates {
            *self.rates.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.gauges {
            let e = self.gauges.entry(k.clone()).or_insert(*v);
            *e = e.max(*v);
        }
        for (k, v) in &other.latencies {
            self.latency(k).add(v);
        }
        for e in &other.errors {
            if self.errors.len() < 10 {
                self.errors.push(e.clone());
            }
        }
        if self.memory_source.is_none() {
            self.memory_source.clone_from(&other.memory_source);
        }
        if self.hosts.is_empty() {
            self.hosts.clone_from(&other.hosts);
        }
    }

    /// The one-line JSON summary (percentiles instead of histograms).
    pub fn json_line(&self) -> String {
        let lat: BTreeMap<&String, LatencySummary> = self
            .latencies
            .iter()
            .map(|(k, v)| (k, v.summary()))
            .collect();
        let mut line = serde_json::json!({
            "scenario": self.scenario,
            "procs": self.procs,
            "elapsed_s": round3(self.elapsed_s),
            "params": self.params,
            "counters": self.counters,
            "rates": self.rates.iter().map(|(k, v)| (k.clone(), (v * 10.0).round() / 10.0)).collect::<BTreeMap<_, _>>(),
            "gauges": self.gauges,
            "latency_ms": lat,
            "memory_source": self.memory_source,
            "errors": self.errors,
        });
        // Only with several hosts: a one-host line stays as it was.
        if !self.hosts.is_empty() {
            line["hosts"] = self.hosts.clone().into();
        }
        line.to_string()
    }

    /// The human summary table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "tern-bench {}  ({} process{}, {:.2} s)",
            self.scenario,
            self.procs,
            if self.procs == 1 { "" } else { "es" },
            self.elapsed_s
        );
        if !self.params.is_empty() {
            let p: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "  params: {}", p.join(" "));
        }
        if !self.hosts.is_empty() {
            let h: Vec<String> = self
                .hosts
                .iter()
                .enumerate()
                .map(|(k, h)| format!("node{k}={h}"))
                .collect();
            let _ = writeln!(out, "  hosts ({}): {}", self.hosts.len(), h.join(" "));
        }
        for (k, v) in &self.counters {
            let _ = writeln!(out, "  {k:<28} {v:>14}");
        }
        for (k, v) in &self.rates {
            let _ = writeln!(out, "  {k:<28} {v:>14.1} /s");
        }
        for (k, v) in &self.gauges {
            let _ = writeln!(out, "  {k:<28} {v:>14.2}");
        }
        if let Some(m) = &self.memory_source {
            let _ = writeln!(out, "  server memory from: {m}");
        }
        if !self.latencies.is_empty() {
            let _ = writeln!(
                out,
                "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (ms)",
                "latency", "count", "p50", "p90", "p99", "p99.9", "max"
            );
            for (k, v) in &self.latencies {
                let s = v.summary();
                let _ = writeln!(
                    out,
                    "  {:<16} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    k, s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
                );
            }
        }
        for e in &self.errors {
            let _ = writeln!(out, "  error: {e}");
        }
        out
    }
}
