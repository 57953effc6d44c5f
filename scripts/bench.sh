#!/usr/bin/env bash
# Runs the load figures of docs/benchmarks.md: each one RUNS times (default
# 3) over each transport of TRANSPORTS (default "ws ws-proto tcp": WebSocket
# with JSON, WebSocket with protobuf, the raw TCP door), each run on a fresh
# `tern serve` (SQLite in a temporary directory) with the abuse limits
# raised, and prints the median, min and max of each figure per transport.
#
# Usage (from the repository root):
#   cargo build --release -p tern-server -p tern-bench
#   scripts/bench.sh [FIGURE...]      # default: all figures but churn30
#   RUNS=5 scripts/bench.sh direct
#   TRANSPORTS=tcp scripts/bench.sh idle
# FIGURE is one of: idle idle19k connect direct direct-pg fanout fanout-half churn churn30
# (direct-pg needs PostgreSQL: TERN_BENCH_PG, default
# postgres://postgres@127.0.0.1:5432/tern_bench, a database it recreates.)
# Environment: TARGET (default target/release, or $CARGO_TARGET_DIR/release),
# PORT (default 8091: HTTP/WebSocket), TCP_PORT (default 7091: the TCP
# door), TRANSPORTS, OUT (directory for the raw JSON lines, one file per
# figure and transport; default a new temporary directory), SERVER_ENV
# (extra VAR=value settings for the server).
# Every run is bounded: tern-bench stops by itself (--deadline).
set -u
cd "$(dirname "$0")/.."
TARGET=${TARGET:-${CARGO_TARGET_DIR:-target}/release}
PORT=${PORT:-8091}
TCP_PORT=${TCP_PORT:-7091}
TRANSPORTS=${TRANSPORTS:-ws ws-proto tcp}
RUNS=${RUNS:-3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SECRET=bench-secret-0123456789abcdef
FIGURES=${*:-idle idle19k connect direct fanout fanout-half churn}
for bin in tern tern-bench; do
  [ -x "$TARGET/$bin" ] || { echo "missing $TARGET/$bin: cargo build --release -p tern-server -p tern-bench" >&2; exit 1; }
done

# One run: a fresh server, one tern-bench command over $TRANSPORT, the
# server stopped.
run() {
  local data pid
  data=$(mktemp -d)
  env TERN_LIMITS_MAX_CONNECTIONS_PER_IP=1000000 TERN_LIMITS_CONNECTS_PER_SEC_PER_IP=1000000 \
    TERN_LIMITS_SEND_RATE=1000000 TERN_LIMITS_SEND_BURST=1000000 \
    TERN_LIMITS_IDLE_TIMEOUT_MS=3600000 TERN_LOG_FILTER=warn ${SERVER_ENV:-} \
    "$TARGET/tern" serve --http 127.0.0.1:$PORT --tcp 127.0.0.1:$TCP_PORT --data "$data" --jwt-secret "$SECRET" \
    >"$data/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -sf 127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$TARGET/tern-bench" --host 127.0.0.1:$PORT --tcp-host 127.0.0.1:$TCP_PORT \
    --transport "$TRANSPORT" --jwt-secret "$SECRET" --server-pid $pid --json --quiet "$@"
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
  rm -rf "$data"
  # Let TIME_WAIT sockets and the page cache settle between runs.
  sleep 2
}

# The median (min–max) of the values at PATH in the JSON lines of FILE.
summary() {
  python3 - "$1" "$2" <<'EOF'
import json, statistics, sys
path, file = sys.argv[1].split("."), sys.argv[2]
vals = []
for line in open(file):
    try:
        v = json.loads(line)
        for k in path:
            v = v[k]
        vals.append(float(v))
    except (ValueError, KeyError, TypeError):
        pass
if vals:
    print(f"{'.'.join(path)}: median {statistics.median(vals):,.2f} "
          f"(min {min(vals):,.2f}, max {max(vals):,.2f}, n={len(vals)})")
else:
    print(f"{'.'.join(path)}: no value")
EOF
}

figure() {
  local name=$1; shift
  local fields=$1; shift
  local file
  for TRANSPORT in $TRANSPORTS; do
    file="$OUT/$name-$TRANSPORT.jsonl"
    echo "== $name over $TRANSPORT: tern-bench --transport $TRANSPORT $*"
    for i in $(seq 1 "$RUNS"); do
      run "$@" >>"$file"
    done
    for f in $fields; do summary "$f" "$file"; done
  done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); raw results in $OUT"
for fig in $FIGURES; do
  case $fig in
    idle) figure idle "gauges.server_kib_per_conn rates.connects" \
      idle -n 15000 -c 100 --hold 2 --settle 3 ;;
    # One server process holds at most ~19,950 sockets (open-file limit
    # 20,000); the load comes from two processes on 127.0.0.1 and .2.
    idle19k) figure idle19k "gauges.server_kib_per_conn rates.connects" \
      --procs 2 idle -n 19000 -c 100 --hold 2 --settle 3 ;;
    connect) figure connect "rates.sessions latency_ms.connect.p50_ms latency_ms.connect.p99_ms" \
      connect -n 10000 -c 100 ;;
    direct) figure direct "rates.delivered latency_ms.delivery.p50_ms latency_ms.delivery.p99_ms latency_ms.ack.p99_ms counters.lost counters.duplicated" \
      direct -p 100 -w 10 -t 10 ;;
    direct-pg)
      pg=${TERN_BENCH_PG:-postgres://postgres@127.0.0.1:5432/tern_bench}
      psql "${pg%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${pg##*/}" -c "CREATE DATABASE ${pg##*/}" || exit 1
      SERVER_ENV="TERN_DATABASE_URL=$pg" figure direct-pg "rates.delivered latency_ms.delivery.p50_ms latency_ms.delivery.p99_ms counters.lost counters.duplicated" \
        direct -p 100 -w 10 -t 10 ;;
    fanout) figure fanout "rates.deliveries latency_ms.delivery.p50_ms latency_ms.delivery.p99_ms counters.lost counters.duplicated" \
      fanout -m 1000 -n 1000 ;;
    fanout-half) figure fanout-half "rates.deliveries latency_ms.delivery.p50_ms latency_ms.delivery.p99_ms counters.lost counters.duplicated" \
      fanout -m 1000 -n 1000 --rate 250 ;;
    churn) figure churn "rates.cycles gauges.server_rss_before_kib gauges.server_rss_start_kib gauges.server_rss_after_kib gauges.server_rss_growth_pct" \
      churn -t 60 -c 20 --warmup 10 --settle 5 ;;
    churn30) RUNS=1 figure churn30 "rates.cycles gauges.server_rss_before_kib gauges.server_rss_start_kib gauges.server_rss_peak_kib gauges.server_rss_after_kib gauges.server_rss_growth_pct" \
      churn -t 1800 -c 20 --hold-ms 20 --warmup 60 --settle 10 ;;
    *) echo "unknown figure $fig" >&2; exit 64 ;;
  esac
done
