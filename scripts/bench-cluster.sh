#!/usr/bin/env bash
# Cluster figures of issue 9, on this machine: one node vs three nodes on one
# PostgreSQL and one Redis, driven by tern-bench (release builds).
#   scripts/bench-cluster.sh            # direct (1 node, 3 nodes cross-node), fanout 3,000 over 3 nodes, idle over 3 nodes
# Env: PG (default postgres://postgres@127.0.0.1:5432/test), REDIS (redis://127.0.0.1:6379),
#      IDLE (connections in total for the idle figure, default 51000), OUT (raw JSON lines dir).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tern-target}"
cargo build --release -q -p tern-server -p tern-bench
BIN="$CARGO_TARGET_DIR/release/tern"; BENCH="$CARGO_TARGET_DIR/release/tern-bench"
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}; REDIS=${REDIS:-redis://127.0.0.1:6379}
IDLE=${IDLE:-51000}; OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SECRET=bench-secret-0123456789abcdef
export TERN_JWT_SECRET=$SECRET
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start N PORT0 [redis]: N nodes on ports PORT0.. in a fresh schema
start() {
  local n=$1 port0=$2 redis=${3:-}
  local schema="bench_$(date +%s%N)"
  psql "$PG" -qc "create schema $schema" >/dev/null
  local db="$PG?options=-c%20search_path%3D$schema"
  HOSTS=""
  for i in $(seq 0 $((n - 1))); do
    local port=$((port0 + i)) data; data=$(mktemp -d)
    local args=(serve --http 127.0.0.1:$port --tcp off --data "$data" --database-url "$db" --node-id n$i)
    [ -n "$redis" ] && args+=(--redis-url "$redis")
    TERN_CLUSTER_KEY_PREFIX="bench-$schema:" TERN_LOG_FILTER=warn \
    TERN_LIMITS_SEND_RATE=1000000 TERN_LIMITS_SEND_BURST=1000000 \
    TERN_LIMITS_MAX_CONNECTIONS_PER_IP=1000000 TERN_LIMITS_CONNECTS_PER_SEC_PER_IP=1000000 \
    TERN_LIMITS_MAX_SESSIONS_PER_USER=64 \
      "$BIN" "${args[@]}" 2>>"$OUT/server.log" &
    PIDS+=($!)
    HOSTS="${HOSTS:+$HOSTS,}127.0.0.1:$port"
  done
  for i in $(seq 0 $((n - 1))); do
    until curl -sf "http://127.0.0.1:$((port0 + i))/readyz" >/dev/null; do sleep 0.1; done
  done
}
stop() { cleanup; PIDS=(); sleep 1; }

redis_cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -x redis-server | head -1)/stat"; }
redis_cmds() { redis-cli info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }

echo "== direct, one node (PostgreSQL)"
start 1 8201
"$BENCH" --host "$HOSTS" --json --quiet direct -p 100 -w 10 -t 10 | tee "$OUT/direct-1.json"
stop

echo "== direct, three nodes, every pair cross-node"
start 3 8211 "$REDIS"
c0=$(redis_cpu); k0=$(redis_cmds)
"$BENCH" --host "$HOSTS" --json --quiet direct -p 100 -w 10 -t 10 | tee "$OUT/direct-3.json"
c1=$(redis_cpu); k1=$(redis_cmds)
echo "redis: cpu_ticks=$((c1 - c0)) commands=$((k1 - k0))" | tee "$OUT/redis-direct.txt"

echo "== fanout to 3,000 members over three nodes"
c0=$(redis_cpu); k0=$(redis_cmds)
"$BENCH" --host "$HOSTS" --json --quiet fanout -m 3000 -n 300 | tee "$OUT/fanout-3.json"
c1=$(redis_cpu); k1=$(redis_cmds)
echo "redis: cpu_ticks=$((c1 - c0)) commands=$((k1 - k0))" | tee "$OUT/redis-fanout.txt"
stop

echo "== idle: $IDLE connections over three nodes (3 load processes)"
start 3 8221 "$REDIS"
"$BENCH" --host "$HOSTS" --json --quiet --procs 3 idle -n "$IDLE" | tee "$OUT/idle-3.json"
stop
echo "raw results in $OUT"
