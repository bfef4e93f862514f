#!/usr/bin/env bash
# The benchmark, one command (bench/README.md):
#   bench/run.sh [CONNECTIONS] [MESSAGES]     defaults: 10000 connections, 200 messages
# Builds the release binaries, starts zena-realtime pinned to CPU 0 and the load generator on
# CPU 1 (taskset), runs each scenario against loopback only, and writes the JSON lines and a
# table to bench/results/<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-10000}
messages=${2:-200}
scripts/build.sh release >/dev/null
secret=bench-secret-0123456789abcdef0123456789abcdef
key=bench-api-key-0123456789
port=$((20000 + RANDOM % 20000))
out=bench/results/$(date +%F).md
mkdir -p bench/results
ulimit -n 20000 2>/dev/null || true

start_server() {
  ZENA_JWT_SECRET=$secret ZENA_API_KEY=$key ZENA_THREADS=1 ZENA_LOG_LEVEL=info \
  ZENA_MAX_CONNECTIONS_PER_ADDRESS=1000000 ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND=1000000 \
  ZENA_MAX_CONNECTIONS=1000000 \
    taskset -c 0 build/zena-realtime --host 127.0.0.1 --port "$port" >/tmp/zena-bench-server.log 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    grep -q listening /tmp/zena-bench-server.log && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

loadgen() {
  taskset -c 1 build/zena-loadgen --port "$port" --secret "$secret" --api-key "$key" --server-pid "$server_pid" \
    --sources 8 --timeout-ms 120000 "$@"
}

{
  echo "# Benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD). Server on CPU 0 (1 thread), generator on CPU 1."
  echo
  echo '```'
} >"$out"

start_server
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$server_pid/status)
echo "idle: $connections connections held 5 s" >&2
idle=$(loadgen --connections "$connections" --messages 0 --hold-ms 5000 || true)
echo "idle rss_before_kib=$rss_before $idle" >>"$out"
stop_server

start_server
echo "fanout: $connections connections x $messages messages, 8 in flight" >&2
echo "fanout $(loadgen --connections "$connections" --messages "$messages" --publishers 1 --inflight 8 || true)" >>"$out"
stop_server

start_server
echo "targeted: 20000 single-user publishes over 4 connections" >&2
echo "targeted $(loadgen --mode targeted --connections "$connections" --messages 20000 --publishers 4 --inflight 1 || true)" >>"$out"
stop_server

echo '```' >>"$out"
echo "results: $out" >&2
