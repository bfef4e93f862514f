#!/usr/bin/env bash
# Issue 17's benchmark: every publisher shape, against Bun and ws in the same run, one command
# (bench/README.md, "Shapes"):
#   bench/shapes.sh [CONNECTIONS] [SERVERS] [PARTS]
#   defaults: CONNECTIONS="1000 10000", SERVERS="zena bun ws",
#             PARTS="delivery answer targeted open mixed burst big probe"
# For each connection count, each shape, and each server in turn (the order rotates from one shape
# to the next, so no server always goes first), a fresh server pinned to CPU 0 (zena-realtime with
# one event-loop thread) and zena-loadgen pinned to CPU 1 (bench/lib.sh):
# - delivery: fan-out (/api/broadcast-all), W = 1, 8, 64 publishes in flight, each until every
#   connection received it (--gate delivery); each run as long as window_messages says.
# - answer: the same, each in flight until answered (--gate answer, the generator's old shape).
# - targeted: 100,000 single-user publishes, 8 in flight on each of 8 keep-alive connections (64),
#   answer-gated and delivery-gated.
# - open: the open loop: Poisson arrivals stepping up through $RATES_<N> (default for 1,000
#   connections 50..1600 a second, for 10,000 10..320), 5 s a step, until a step's p99 passes
#   1 s; per rate p50/p99/p99.9, and the highest rate held with p99 under 150 ms.
# - mixed: the fan-out at half the rate Bun held in this run's open loop (zena-realtime's when Bun
#   is not in the run; $MIXED_RATE sets it) for 10 s, while targeted publishes arrive at 200 a
#   second and measure their own latency.
# - burst: 100 fan-out publishes due at once, every second, 5 times.
# - big: the delivery- and answer-gated W = 8 fan-out once at 19,000 connections (about this
#   machine's open-file limit).
# - probe: the raw limit probe (zena-send-probe: a ready-made frame to N loopback sockets, 1 and 8
#   frames per sendmsg, and 8 gathered with 64 writes per io_uring_enter, on CPU 0, read on CPU 1)
#   at each connection count and at 19,000 with big, as many frames each as a W = 8 window run
#   publishes: the ceilings the delivery-gated W = 8 fan-out is held against.
# Smaller runs (smoke tests): $MESSAGES (every window run's messages; by default window_messages
# sizes each, with $WINDOW_DELIVERIES), $TARGETED_MESSAGES (default 100000), $STEP_MS (an
# open-loop step, default 5000; the mixed run lasts two), $BURSTS (default 5), $RATES_<N>,
# $WINDOWS (the windows run, default "1 8 64"). $REPEAT=N runs each window, targeted, burst and
# big shape N times, the servers alternating and the order rotating each round; the tables give
# each server's median run and the N figures (a single run of one shape swings by a third on this
# shared machine).
# $SERVER_CPU_QUOTA holds every server to that share of a CPU (bench/lib.sh).
# Before each run it waits (at most $QUIET_WAIT s, default 60) for a quiet machine and writes what
# it found (busy=<percent>), and it runs in its own session with the scheduler weight of nice -19
# (bench/lib.sh's shield; ZENA_BENCH_NICE= turns it off). Builds in $ZENA_BUILD (default build)
# unless ZENA_BINARY and ZENA_LOADGEN name the binaries. Results: the JSON lines in
# bench/results/<date>-<time>-shapes.md, then the tables bench/summarize_shapes.py computes from
# them (ratios against Bun per shape). Loopback only; every run is bounded by --timeout-ms.
set -euo pipefail
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
counts=${1:-1000 10000}
servers=${2:-zena bun ws}
parts=${3:-delivery answer targeted open mixed burst big probe}
build=${ZENA_BUILD:-build}
[[ ${REPEAT:-1} =~ ^[1-9][0-9]*$ ]] || { echo "REPEAT must be a whole number of rounds, 1 or more" >&2; exit 1; }
targeted_messages=${TARGETED_MESSAGES:-100000} step_ms=${STEP_MS:-5000} bursts=${BURSTS:-5}
windows=${WINDOWS:-1 8 64}
window_deliveries=${WINDOW_DELIVERIES:-2000000}
[[ $window_deliveries =~ ^[1-9][0-9]*$ ]] || { echo "WINDOW_DELIVERIES must be a whole number, 1 or more" >&2; exit 1; }
# window_messages N W: the messages of a W-window run (and of the probe) at N connections:
# $MESSAGES if set, else at least 256, 16 windows and $WINDOW_DELIVERIES deliveries (default
# 2,000,000). A run of 256 lasted 0.07 s at 1,000 connections and 4 windows at W = 64: the
# servers' start, not their sustained rate (bench/README.md, "Shapes").
window_messages() {
  if [[ -n ${MESSAGES:-} ]]; then echo "$MESSAGES"; return; fi
  local m=256 by_deliveries=$(((window_deliveries + $1 - 1) / $1)) by_windows=$((16 * $2))
  ((by_deliveries > m)) && m=$by_deliveries
  ((by_windows > m)) && m=$by_windows
  echo "$m"
}
if [[ -n ${ZENA_BINARY:-} && -n ${ZENA_LOADGEN:-} ]]; then
  :
elif [[ -f $build/build.ninja ]]; then
  ninja -C "$build" zena-realtime zena-loadgen zena-send-probe >/dev/null
else
  scripts/build.sh release >/dev/null
fi
export ZENA_BINARY=${ZENA_BINARY:-$build/zena-realtime} ZENA_LOADGEN=${ZENA_LOADGEN:-$build/zena-loadgen}
[[ " $servers " == *" bun "* || " $servers " == *" ws "* ]] && (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
source bench/lib.sh
shield
out=$(results_file shapes)
started=$(date +%s)

{
  echo "# Shapes benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD). Servers on CPU 0 (zena-realtime: 1 thread), generator on CPU 1;" \
    "Bun $(bench/peers/node_modules/.bin/bun --version 2>/dev/null || echo '?'), Node $(node --version)."
  quota_line
  echo "Command: bench/shapes.sh \"$counts\" \"$servers\" \"$parts\" (nice $(ps -o ni= -p $$ | tr -d ' ');" \
    "MESSAGES=${MESSAGES:-per run} WINDOW_DELIVERIES=$window_deliveries TARGETED_MESSAGES=$targeted_messages STEP_MS=$step_ms BURSTS=$bursts WINDOWS=\"$windows\" REPEAT=${REPEAT:-1})"
  echo
  echo '```'
} >"$out"

# one SERVER LABEL LOADGEN-ARGS...: a fresh server, a quiet machine, the run, its line.
one() {
  local name=$1 label=$2
  shift 2
  start_server "$name"
  local busy
  busy=$(quiet)
  echo "$name $label (busy $busy %)" >&2
  echo "$name $label busy=$busy $(loadgen "$@" || true)" >>"$out"
  stop_server
}

# alternate LABEL LOADGEN-ARGS...: the run on every server, starting one further along each time;
# $REPEAT rounds of it (default 1) for every shape but the open loop and the mixed load.
turn=0
alternate() {
  local -a order
  read -ra order <<<"$servers"
  local n=${#order[@]} i r rounds=${REPEAT:-1}
  [[ $1 == open || $1 == mixed ]] && rounds=1
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < n; i++)); do one "${order[$(((turn + i) % n))]}" "$@"; done
    turn=$((turn + 1))
  done
}

# The highest rate SERVER held in this run's open loop at N connections (0: none).
held_rate() {
  python3 - "$out" "$1" "$2" <<'EOF'
import json, sys
path, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
held = 0
for line in open(path, encoding='utf-8'):
    parts = line.split(' ', 3)
    if len(parts) == 4 and parts[0] == server and parts[1] == 'open' and parts[3].startswith('{'):
        data = json.loads(parts[3])
        if data['connections'] == n:
            held = max(held, data.get('held_rate', 0))
print(held)
EOF
}

for n in $counts; do
  c=(--connections "$n")
  if [[ " $parts " == *" delivery "* || " $parts " == *" answer "* ]]; then
    for gate in delivery answer; do
      [[ " $parts " == *" $gate "* ]] || continue
      for w in $windows; do
        alternate "${gate}_w$w" "${c[@]}" --messages "$(window_messages "$n" "$w")" --publishers 1 --inflight "$w" --gate "$gate"
      done
    done
  fi
  if [[ " $parts " == *" targeted "* ]]; then
    for gate in answer delivery; do
      alternate "targeted_$gate" "${c[@]}" --mode targeted --messages "$targeted_messages" --publishers 8 \
        --inflight 8 --gate "$gate"
    done
  fi
  if [[ " $parts " == *" open "* ]]; then
    rates_var=RATES_$n
    default_rates=$([[ $n -le 1000 ]] && echo 50,100,200,400,800,1600 || echo 10,20,40,80,160,320)
    alternate open "${c[@]}" --rates "${!rates_var:-$default_rates}" --step-ms "$step_ms" --drain-ms 10000 \
      --hold-p99-ms 150 --stop-p99-ms 1000 --publishers 4
  fi
  if [[ " $parts " == *" mixed "* ]]; then
    reference=$([[ " $servers " == *" bun "* ]] && echo bun || echo zena)
    held=$(held_rate "$reference" "$n")
    rate=${MIXED_RATE:-$(python3 -c "print(round($held / 2))")}
    if ((rate < 1)); then
      echo "mixed at $n: left out: $reference held no rate in this run's open loop (set MIXED_RATE)" >&2
    else
      echo "mixed at $n: the fan-out at $rate/s (MIXED_RATE, or half of $reference's held $held/s)" >&2
      alternate mixed "${c[@]}" --rates "$rate" --targeted-rate 200 --step-ms $((2 * step_ms)) --drain-ms 10000 \
        --publishers 4
    fi
  fi
  if [[ " $parts " == *" burst "* ]]; then
    alternate burst "${c[@]}" --burst 100 --burst-every-ms 1000 --bursts "$bursts" --publishers 4
  fi
done
if [[ " $parts " == *" big "* ]]; then
  for gate in delivery answer; do
    alternate "big_${gate}_w8" --connections 19000 --messages "$(window_messages 19000 8)" --publishers 1 --inflight 8 --gate "$gate"
  done
fi
# probe N: the limit probe at N sockets, 1 and 8 frames per system call, and 8 frames gathered with
# 64 writes per io_uring_enter (the server's flush).
probe() {
  local batch busy extra label
  for label in 1 8 8r; do
    batch=${label%r} extra=()
    [[ $label == 8r ]] && extra=(--uring 64)
    busy=$(quiet)
    echo "probe $1 x $label per call (busy $busy %)" >&2
    echo "probe probe$label busy=$busy $(taskset -c 0 "${ZENA_SEND_PROBE:-$build/zena-send-probe}" --connections "$1" \
      --messages "$(window_messages "$1" 8)" --batch "$batch" "${extra[@]}" --reader-cpu 1 || true)" >>"$out"
  done
}
if [[ " $parts " == *" probe "* ]]; then
  for n in $counts; do probe "$n"; done
  [[ " $parts " == *" big "* ]] && probe 19000
fi
echo '```' >>"$out"
echo >>"$out"
echo "Wall time of the whole run: $(($(date +%s) - started)) s." >>"$out"
echo >>"$out"
python3 bench/summarize_shapes.py "$out" >>"$out"
echo "results: $out" >&2
