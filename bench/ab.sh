#!/usr/bin/env bash
# A/B of two zena-realtime binaries on the benchmark's fan-out and targeted scenarios, run
# alternately (A, B, A, B, ...) so that the drift of this shared machine falls on both alike:
#   bench/ab.sh BINARY_A BINARY_B [RUNS] [CONNECTIONS] [-- LOADGEN-ARGS...]
#   defaults: 3 runs each, 10000 connections
# The scenarios are bench/run.sh's `fanout` (200 broadcast-all messages, 8 in flight: answer-
# gated) and `targeted` (100,000 single-user publishes over 4 connections, 1 in flight each),
# with the same generator, pinning and credentials (bench/lib.sh); given LOADGEN-ARGS after `--`,
# that one shape instead (e.g. `-- --messages 256 --publishers 1 --inflight 64 --gate delivery`).
# The order flips each round (A B, B A, ...), so neither side always runs first (the first run
# after a quiet spell is systematically different here). One JSON line per run goes to
# bench/results/<date>-<time>-ab.md, prefixed with the side and the scenario; summarize it with
# bench/summarize.py or read deliveries_per_s / publishes_per_s and the latency fields.
# AB_ENGINE=redis runs both on engine redis, each run with a fresh redis-server of its own
# (pinned to $REDIS_CPUS, default the server's CPU 0).
# Loopback only; every run is bounded by the generator's --timeout-ms.
set -euo pipefail
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
if (($# < 2)); then
  echo "usage: bench/ab.sh BINARY_A BINARY_B [RUNS] [CONNECTIONS]" >&2
  exit 2
fi
binary_a=$(realpath "$1")
binary_b=$(realpath "$2")
shift 2
runs=3 connections=10000
if (($# > 0)) && [[ $1 != -- ]]; then runs=$1 && shift; fi
if (($# > 0)) && [[ $1 != -- ]]; then connections=$1 && shift; fi
[[ ${1:-} == -- ]] && shift
shape=("$@")
ninja -C build zena-loadgen >/dev/null
source bench/lib.sh
shield
out=$(results_file ab)
{
  echo "# A/B run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(uname -r). Servers on CPU 0 (1 thread), generator on CPU 1."
  echo "Engine: ${AB_ENGINE:-memory}$([[ ${AB_ENGINE:-memory} == redis ]] && echo ", Redis on CPU ${REDIS_CPUS:-0}")"
  echo "A: $binary_a"
  echo "B: $binary_b"
  quota_line
  echo "Command: bench/ab.sh A B $runs $connections${shape[*]:+ -- ${shape[*]}}"
  echo
  echo '```'
} >"$out"

one() {  # one SIDE BINARY SCENARIO ARGS...
  local side=$1 binary=$2 label=$3
  shift 3
  if [[ ${AB_ENGINE:-memory} == redis ]]; then
    local rport dir
    rport=$(free_port) dir=$(mktemp -d)
    start_redis "$rport" "$dir"
    ZENA_ENGINE=redis ZENA_REDIS_URL=redis://127.0.0.1:$rport ZENA_NODE_ID=ab ZENA_BINARY=$binary start_server zena
  else
    ZENA_BINARY=$binary start_server zena
  fi
  echo "$side $label" >&2
  echo "$side $label $(loadgen --connections "$connections" "$@" || true)" >>"$out"
  stop_server
  if [[ ${AB_ENGINE:-memory} == redis ]]; then
    stop_redis
    rm -rf "$dir"
  fi
}

for ((i = 1; i <= runs; i++)); do
  order="A B"
  ((i % 2 == 0)) && order="B A"
  for side in $order; do
    binary=$binary_a
    [[ $side == B ]] && binary=$binary_b
    if ((${#shape[@]} > 0)); then
      one "$side" "$binary" shape "${shape[@]}"
    else
      one "$side" "$binary" fanout --messages 200 --publishers 1 --inflight 8
      one "$side" "$binary" targeted --mode targeted --messages 100000 --publishers 4 --inflight 1
    fi
  done
done
echo '```' >>"$out"
echo "results: $out" >&2
