#!/usr/bin/env bash
# Server memory per idle authenticated WebSocket connection.
#
# Usage (from the repository root, after
#   cargo build --release -p tern-server -p tern-client --examples --bins):
#   scripts/measure-idle.sh PROCS PER_PROC
# Starts `tern serve` on 127.0.0.1:8090, opens PROCS client processes of
# PER_PROC connections each (one process holds at most ~19,000 sockets: the
# open-file limit), and prints the server's RSS before and after, and the
# difference per connection in KiB. Tokens go in `?token=` (no auth frame).
set -u
TARGET=$(cd "${TARGET:-target/release}" && pwd)
PROCS=$1; PER=$2
D=$(mktemp -d); SECRET=measure-secret-0123456789
cd $D
TERN_LIMITS_IDLE_TIMEOUT_MS=600000 TERN_LIMITS_MAX_CONNECTIONS_PER_IP=1000000 TERN_LIMITS_CONNECTS_PER_SEC_PER_IP=1000000 TERN_LOG_FILTER=warn ${TARGET:-target/release}/tern serve --http 127.0.0.1:8090 --tcp off --data $D --jwt-secret $SECRET > server.log 2>&1 &
SPID=$!
sleep 1
# warm-up: 50 connections, so one-time lazy allocations are in the baseline
${TARGET:-target/release}/examples/idle --url ws://127.0.0.1:8090/ws --secret $SECRET --count 50 --hold 1 --prefix warm >/dev/null
sleep 1
BASE=$(awk '/VmRSS/{print $2}' /proc/$SPID/status)
for p in $(seq 1 $PROCS); do
  ${TARGET:-target/release}/examples/idle --url ws://127.0.0.1:8090/ws --secret $SECRET --count $PER --concurrency 100 --hold 40 --prefix p$p > idle$p.log 2>&1 &
done
for i in $(seq 1 60); do
  n=$(cat idle*.log 2>/dev/null | grep -c READY); [ "$n" -ge "$PROCS" ] && break; sleep 1
done
cat idle*.log
sleep 3
AFTER=$(awk '/VmRSS/{print $2}' /proc/$SPID/status)
N=$((PROCS*PER))
echo "base_kib=$BASE after_kib=$AFTER conns=$N per_conn_kib=$(python3 -c "print(round(($AFTER-$BASE)/$N,2))")"
kill -TERM $SPID; wait $SPID 2>/dev/null; pkill -f "examples/idle" ; rm -rf $D
