//! The Grafana dashboard (`deploy/grafana/tern-dashboard.json`) only
//! queries metrics the server exports: a server is started, `/metrics` is
//! scraped once (before any traffic: every family must already be there),
//! every PromQL expression of the dashboard is tokenised, and each metric
//! name it selects must be an exported family (`_bucket`, `_sum`, `_count`
//! only on histograms). Also checks the file is an importable dashboard
//! with its data source as a variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DASHBOARD: &str = include_str!("../../../deploy/grafana/tern-dashboard.json");

/// Words of PromQL that are not metric names: binary operators, modifiers,
/// literals and the aggregation operators (which may be followed by `by`
/// rather than by their parenthesis).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "Inf",
    "NaN",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a parenthesised list of label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression selects: identifiers that are not
/// functions, keywords, label names (in `{…}` or grouping lists), numbers,
/// durations or Grafana variables.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let s: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i = match c {
            '"' | '\'' | '`' => skip_string(&s, i)?,
            '{' => skip_until(&s, i, '}')?,
            '[' => skip_until(&s, i, ']')?,
            '$' => skip_word(&s, i + 1, |c| c.is_alphanumeric() || "_{}".contains(c)),
            '(' => {
                depth += 1;
                i + 1
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ) in {expr}"));
                }
                i + 1
            }
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                skip_word(&s, i, |c| c.is_alphanumeric() || c == '.')
            }
            c if c.is_alphabetic() || c == '_' || c == ':' => {
                let end = skip_word(&s, i, |c| c.is_alphanumeric() || c == '_' || c == ':');
                let word: String = s[i..end].iter().collect();
                let next = (end..s.len()).find(|&j| !s[j].is_whitespace());
                let opens = next.is_some_and(|j| s[j] == '(');
                if GROUPING.contains(&word.as_str()) {
                    match next {
                        Some(j) if opens => skip_until(&s, j, ')')?,
                        _ => end,
                    }
                } else if KEYWORDS.contains(&word.as_str()) || opens {
                    end // a keyword or a function call
                } else {
                    names.insert(word);
                    end
                }
            }
            c if c.is_whitespace() || "+-*/%^=!<>,".contains(c) => i + 1,
            other => return Err(format!("unexpected {other:?} in {expr}")),
        };
    }
    if depth != 0 {
        return Err(format!("unbalanced ( in {expr}"));
    }
    Ok(names)
}

fn skip_word(s: &[char], mut i: usize, part: impl Fn(char) -> bool) -> usize {
    while i < s.len() && part(s[i]) {
        i += 1;
    }
    i
}

/// Index after the string starting at `i` (quote at `i`).
fn skip_string(s: &[char], i: usize) -> Result<usize, String> {
    let quote = s[i];
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            '\\' if quote != '`' => j += 2,
            c if c == quote => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err("unterminated string".into())
}

/// Index after the `close` matching the opener at `i`, strings skipped.
fn skip_until(s: &[char], i: usize, close: char) -> Result<usize, String> {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            '"' | '\'' | '`' => j = skip_string(s, j)?,
            c if c == close => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(format!("no closing {close:?}"))
}

/// Family name → type, from the `# TYPE` lines of an exposition.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// Whether `name`, as selected in PromQL, is a series the exposition has.
fn exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    if let Some(kind) = families.get(name) {
        return kind != "histogram" && kind != "summary";
    }
    let suffixed = |suffix: &str, kinds: &[&str]| {
        name.strip_suffix(suffix)
            .and_then(|base| families.get(base))
            .is_some_and(|k| kinds.contains(&k.as_str()))
    };
    suffixed("_bucket", &["histogram"])
        || suffixed("_sum", &["histogram", "summary"])
        || suffixed("_count", &["histogram", "summary"])
}

/// Every `expr` of every panel (rows may nest panels).
fn exprs(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_owned());
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

#[test]
fn the_tokeniser_finds_metric_names_only() {
    let names = |e: &str| metric_names(e).unwrap().into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{instance=~"$instance", x="a{b}"}[$__rate_interval])))"#
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(rate(x_total[5m])) by (reason) / on (instance) group_left b + 1e3 and c offset 5m"
        ),
        ["b", "c", "x_total"]
    );
    assert_eq!(
        names("time() - max(process_start_time_seconds)"),
        ["process_start_time_seconds"]
    );
    assert!(metric_names("sum(x").is_err());
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let srv = TestServer::start().await;
    let text = scrape(srv.addr).await;
    let families = families(&text);

    let mut queried = BTreeSet::new();
    for expr in exprs(&dashboard) {
        let names = metric_names(&expr).unwrap_or_else(|e| panic!("{e}"));
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(
                exported(&name, &families),
                "the dashboard queries {name} (in `{expr}`), which the server does not export; \
                 families: {:?}",
                families.keys().collect::<Vec<_>>()
            );
            queried.insert(name);
        }
    }
    // What an operator expects on it (issue 12).
    for must in [
        "tern_connections",
        "tern_sessions",
        "tern_messages_stored_total",
        "tern_send_ack_seconds_bucket",
        "tern_store_commit_seconds_bucket",
        "tern_store_batch_size_sum",
        "tern_pushes_delivered_total",
        "tern_slow_consumer_closes_total",
        "tern_rate_limited_total",
        "tern_auth_failures_total",
        "tern_push_queue_depth",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            queried.contains(must),
            "the dashboard has no panel on {must}"
        );
    }
    // And the exporter's own checks caught a missing name.
    assert!(!exported("tern_no_such_total", &families));
    assert!(
        !exported("tern_send_ack_seconds", &families),
        "a bare histogram name"
    );
    srv.shutdown().await;
}

#[test]
fn the_dashboard_is_importable_with_its_data_source_as_a_variable() {
    let d: Value = serde_json::from_str(DASHBOARD).unwrap();
    assert!(d["title"].is_string() && d["uid"].is_string());
    assert!(d["schemaVersion"].as_u64().unwrap() >= 30);
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
}
