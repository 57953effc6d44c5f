#!/usr/bin/env bash
# Side-by-side figures: tern-bench's `direct` and `fanout` loads against
# tern, mosquitto at QoS 0 and QoS 1, and nats-server (through tern-bench's
# MQTT and NATS adapters, `--peer`), RUNS times each (default 3), every load
# on a freshly started server; prints one table of medians with tern's
# ratio to each peer. Absolute figures on a shared machine drift (up to 2x
# between sessions): only ratios taken from one run of this script count.
#
# Usage (from the repository root):
#   cargo build --release -p tern-server -p tern-bench
#   apt-get install mosquitto nats-server      # Debian's packages
#   scripts/bench-peers.sh
#   DURATION=5 RUNS=1 scripts/bench-peers.sh   # a quick look
# Each run does, in this order: direct on tern, mqtt-qos0, mqtt-qos1, nats;
# then fanout on the same four.
# Environment: RUNS (3); direct: PAIRS (100), INFLIGHT (10 per pair),
# DURATION (15 s of sending); fanout: MEMBERS (1000), MESSAGES (1000, flat
# out, 50 in flight); TRANSPORT (tern's: ws, ws-proto or tcp; default ws);
# TARGET (default target/release, or $CARGO_TARGET_DIR/release); loopback
# ports of the servers this script starts: PORT (8093, tern HTTP/WebSocket),
# TCP_PORT (7093, tern's TCP door), MQTT_PORT (18830), NATS_PORT (14222),
# never the system brokers' 1883 and 4222; MOSQUITTO and NATS_SERVER (the
# broker binaries; default from PATH or /usr/sbin); OUT (the raw JSON lines,
# one file per load and server; default a new temporary directory).
# The brokers run with configs this script writes (anonymous, in memory,
# TCP_NODELAY like tern's sockets); every load is bounded in time
# (tern-bench stops by itself) and every server is stopped on exit.
set -u
cd "$(dirname "$0")/.."
TARGET=${TARGET:-${CARGO_TARGET_DIR:-target}/release}
RUNS=${RUNS:-3}
PAIRS=${PAIRS:-100}
INFLIGHT=${INFLIGHT:-10}
DURATION=${DURATION:-15}
MEMBERS=${MEMBERS:-1000}
MESSAGES=${MESSAGES:-1000}
TRANSPORT=${TRANSPORT:-ws}
PORT=${PORT:-8093}
TCP_PORT=${TCP_PORT:-7093}
MQTT_PORT=${MQTT_PORT:-18830}
NATS_PORT=${NATS_PORT:-14222}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SECRET=bench-secret-0123456789abcdef
SERVERS="tern mqtt0 mqtt1 nats"

find_bin() {
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || echo "$1"
}
MOSQUITTO=${MOSQUITTO:-$(find_bin mosquitto)}
NATS_SERVER=${NATS_SERVER:-$(find_bin nats-server)}
for bin in "$TARGET/tern" "$TARGET/tern-bench"; do
  [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p tern-server -p tern-bench" >&2; exit 1; }
done
for bin in "$MOSQUITTO" "$NATS_SERVER"; do
  [ -x "$bin" ] || { echo "missing $bin: apt-get install mosquitto nats-server" >&2; exit 1; }
done

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$TCP_PORT" "$MQTT_PORT" "$NATS_PORT"; do
  if listening "$p"; then echo "port $p is taken: set PORT, TCP_PORT, MQTT_PORT or NATS_PORT" >&2; exit 1; fi
done

WORK=$(mktemp -d)
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# Starts server $1 (tern, mqtt0, mqtt1 or nats) in a fresh directory $2;
# sets SERVER_PID and PEER_ARGS (tern-bench's options to reach it).
start_server() {
  local dir=$2 port
  mkdir -p "$dir"
  case $1 in
    tern)
      env TERN_LIMITS_MAX_CONNECTIONS_PER_IP=1000000 TERN_LIMITS_CONNECTS_PER_SEC_PER_IP=1000000 \
        TERN_LIMITS_SEND_RATE=1000000 TERN_LIMITS_SEND_BURST=1000000 \
        TERN_LIMITS_IDLE_TIMEOUT_MS=3600000 TERN_LOG_FILTER=warn \
        "$TARGET/tern" serve --http 127.0.0.1:$PORT --tcp 127.0.0.1:$TCP_PORT --data "$dir" \
        --jwt-secret "$SECRET" >"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      port=$PORT
      PEER_ARGS=(--host 127.0.0.1:$PORT --tcp-host 127.0.0.1:$TCP_PORT --transport "$TRANSPORT" --jwt-secret "$SECRET")
      ;;
    mqtt0 | mqtt1)
      # In memory, no queue limit (the senders' windows bound the queues).
      cat >"$dir/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
EOF
      "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      port=$MQTT_PORT
      PEER_ARGS=(--peer "$1" --peer-host 127.0.0.1:$MQTT_PORT)
      ;;
    nats)
      echo "listen: \"127.0.0.1:$NATS_PORT\"" >"$dir/nats.conf"
      "$NATS_SERVER" -c "$dir/nats.conf" >"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      port=$NATS_PORT
      PEER_ARGS=(--peer nats --peer-host 127.0.0.1:$NATS_PORT)
      ;;
  esac
  for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if [ "$1" = tern ]; then
      curl -sf "127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    else
      listening "$port" && return 0
    fi
    sleep 0.1
  done
  echo "$1 did not start; its log:" >&2
  cat "$dir/server.log" >&2
  stop_server
  return 1
}

# One load: server $1 started fresh, `tern-bench ... $2...` (its JSON line
# on stdout), the server stopped.
load() {
  local server=$1; shift
  start_server "$server" "$WORK/$server-$RANDOM" || return 1
  "$TARGET/tern-bench" "${PEER_ARGS[@]}" --server-pid "$SERVER_PID" --json --quiet "$@"
  stop_server
  # Let TIME_WAIT sockets settle between loads.
  sleep 2
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $("$MOSQUITTO" -h 2>/dev/null | head -1); $("$NATS_SERVER" --version)"
echo "direct: $PAIRS pairs x $INFLIGHT in flight, $DURATION s; fanout: 1 sender, $MEMBERS members, $MESSAGES messages flat out; tern over $TRANSPORT; $RUNS run(s); raw results in $OUT"
for run in $(seq 1 "$RUNS"); do
  for server in $SERVERS; do
    echo "== run $run/$RUNS: direct on $server" >&2
    load "$server" direct -p "$PAIRS" -w "$INFLIGHT" -t "$DURATION" >>"$OUT/direct-$server.jsonl"
  done
  for server in $SERVERS; do
    echo "== run $run/$RUNS: fanout on $server" >&2
    load "$server" fanout -m "$MEMBERS" -n "$MESSAGES" >>"$OUT/fanout-$server.jsonl"
  done
done

python3 - "$OUT" $SERVERS <<'EOF'
import json, statistics, sys
out, servers = sys.argv[1], sys.argv[2:]
names = {"tern": "tern", "mqtt0": "mqtt-qos0", "mqtt1": "mqtt-qos1", "nats": "nats"}
rows = [
    ("direct msg/s", "direct", "rates.delivered", "{:,.0f}"),
    ("direct p50 (ms)", "direct", "latency_ms.delivery.p50_ms", "{:,.1f}"),
    ("direct p99 (ms)", "direct", "latency_ms.delivery.p99_ms", "{:,.1f}"),
    ("direct server CPU (µs/msg)", "direct", "gauges.server_cpu_us_per_msg", "{:,.1f}"),
    ("fanout deliveries/s", "fanout", "rates.deliveries", "{:,.0f}"),
    ("fanout p99 (ms)", "fanout", "latency_ms.delivery.p99_ms", "{:,.1f}"),
]

def lines(load, server):
    try:
        with open(f"{out}/{load}-{server}.jsonl") as f:
            return [json.loads(l) for l in f if l.strip().startswith("{")]
    except OSError:
        return []

def median(load, server, path):
    vals = []
    for v in lines(load, server):
        try:
            for k in path.split("."):
                v = v[k]
            vals.append(float(v))
        except (KeyError, TypeError, ValueError):
            pass
    return statistics.median(vals) if vals else None

peers = [s for s in servers if s != "tern"]
head = ["figure (median)"] + [names[s] for s in servers] + [f"tern / {names[p]}" for p in peers]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for label, load, path, fmt in rows:
    m = {s: median(load, s, path) for s in servers}
    cells = [fmt.format(m[s]) if m[s] is not None else "–" for s in servers]
    for p in peers:
        t, v = m.get("tern"), m[p]
        cells.append(f"{t / v:.2f}" if t is not None and v else "–")
    print(f"| {label} | " + " | ".join(cells) + " |")
print("tern / peer above 1: tern has more messages/s, or a higher latency or CPU cost.")
for load in ("direct", "fanout"):
    notes = []
    for s in servers:
        ls = lines(load, s)
        lost = sum(l.get("counters", {}).get("lost", 0) for l in ls)
        errors = sum(l.get("counters", {}).get("errors", 0) for l in ls)
        notes.append(f"{names[s]} {len(ls)} run(s), {lost} lost, {errors} errors")
    print(f"{load}: " + "; ".join(notes))
EOF
