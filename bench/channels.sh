#!/usr/bin/env bash
# The channels benchmark (docs/channels.md; bench/README.md, "Channels"), one command:
#   bench/channels.sh [CONNECTIONS] [MESSAGES] [RUNS] [PARTS]
#   defaults: 10000 connections, 200 fan-out messages, 3 runs, PARTS="fanout resume store micro"
#   (PARTS may also name framesize, below)
# zena-realtime only, pinned to CPU 0 with one event-loop thread, the generator on CPU 1, a fresh
# server for every run (bench/lib.sh), the runs of the scenarios compared alternated:
# - fanout: `fanout` (POST /api/broadcast-all), `channel` (the same messages through
#   POST /api/publish to the one channel bench:all that every connection subscribed to, history
#   on, the default) and `channel_nohist` (the same with ZENA_CHANNELS_HISTORY_SIZE=0), each 8 in
#   flight, then the three again paced at 40 messages a second (`*_rate`); RUNS rounds of six.
# - resume: the reconnect storm, `--mode resume --rounds 3 --missed 20` (each run alternates 3
#   plain reconnects and 3 resumes of all CONNECTIONS users), RUNS runs.
# - store: 100,000 events of a 120-byte payload (a frame of about 210 bytes) published to 1,000
#   channels, the server's RSS before and after, RUNS runs.
# - micro: build/zena-history-bench (memory_history's own accounting, time per append and read).
# Before each run the script waits (at most $QUIET_WAIT seconds, default 60) until the machine is
# quiet (both cores under 15 % busy over a second) and writes what it found (busy=<percent>),
# since this machine is shared; and it runs in its own session with the scheduler weight of nice
# -19 (bench/lib.sh's shield; ZENA_BENCH_NICE= turns it off). Builds in $ZENA_BUILD (default
# build, as bench/run.sh), unless ZENA_BINARY and ZENA_LOADGEN (and ZENA_HISTORY_BENCH) name the
# binaries. Results go to bench/results/<date>-<time>-channels.md; bench/summarize_channels.py
# turns them into tables.
# Loopback only; every run is bounded by the generator's --timeout-ms.
set -euo pipefail
# Its own session, so that bench/lib.sh's shield sets the nice of its own scheduler group only.
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
connections=${1:-10000}
messages=${2:-200}
runs=${3:-3}
parts=${4:-fanout resume store micro}
build=${ZENA_BUILD:-build}
if [[ -n ${ZENA_BINARY:-} && -n ${ZENA_LOADGEN:-} ]]; then
  :  # given binaries (copies taken out of a build directory that others rebuild meanwhile)
elif [[ -f $build/build.ninja ]]; then
  ninja -C "$build" zena-realtime zena-loadgen zena-history-bench >/dev/null
else
  scripts/build.sh release >/dev/null
fi
export ZENA_BINARY=${ZENA_BINARY:-$build/zena-realtime} ZENA_LOADGEN=${ZENA_LOADGEN:-$build/zena-loadgen}
source bench/lib.sh
shield
out=$(results_file channels)

{
  echo "# Channels benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD) (with the working tree's changes). Server: $ZENA_BINARY on CPU 0 (1 thread); generator on CPU 1."
  quota_line
  echo "Command: bench/channels.sh $connections $messages $runs \"$parts\" (nice $(ps -o ni= -p $$ | tr -d ' '))"
  echo
  echo '```'
} >"$out"

# one LABEL LOADGEN-ARGS...: a fresh server (the caller's ZENA_* variables reach it), the run, its line.
one() {
  local label=$1
  shift
  start_server zena
  local busy
  busy=$(quiet)
  echo "$label (busy $busy %)" >&2
  echo "zena $label busy=$busy $(loadgen "$@" || true)" >>"$out"
  stop_server
}

fan=(--connections "$connections" --messages "$messages" --publishers 1 --inflight 8)
chan=(--mode channel --channel bench:all --grant 'bench:*')
if [[ " $parts " == *" fanout "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    one fanout "${fan[@]}"
    one channel "${fan[@]}" "${chan[@]}"
    ZENA_CHANNELS_HISTORY_SIZE=0 one channel_nohist "${fan[@]}" "${chan[@]}"
  done
  for ((i = 1; i <= runs; i++)); do
    one fanout_rate "${fan[@]}" --rate 40
    one channel_rate "${fan[@]}" "${chan[@]}" --rate 40
    ZENA_CHANNELS_HISTORY_SIZE=0 one channel_nohist_rate "${fan[@]}" "${chan[@]}" --rate 40
  done
fi
# framesize: the broadcast-all fan-out with messages as long on the wire as the channel's (its
# "channel", "epoch" and "seq" add 53 bytes here) against both: what of the difference is bytes.
if [[ " $parts " == *" framesize "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    one fs_fanout "${fan[@]}"
    one fs_fanout_wide "${fan[@]}" --payload 253
    one fs_channel "${fan[@]}" "${chan[@]}"
  done
fi
if [[ " $parts " == *" resume "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    one resume --connections "$connections" --mode resume --missed 20 --rounds 3 --batch 1000
  done
fi
if [[ " $parts " == *" store "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    one store --connections 1 --mode store --messages 100000 --store-channels 1000 --payload 120 --batch 1000
  done
fi
echo '```' >>"$out"
if [[ " $parts " == *" micro "* ]]; then
  echo "micro" >&2
  {
    echo
    echo "taskset -c 1 ${ZENA_HISTORY_BENCH:-$build/zena-history-bench} (busy $(quiet) % before)"
    echo
    echo '```'
    taskset -c 1 "${ZENA_HISTORY_BENCH:-$build/zena-history-bench}" 2>&1 | grep -E '^(BM_|Benchmark|-)' || true
    echo '```'
  } >>"$out"
fi
echo "results: $out" >&2
