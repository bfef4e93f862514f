#!/usr/bin/env bash
# The benchmark, one command (bench/README.md):
#   bench/run.sh [CONNECTIONS] [MESSAGES] [SERVERS]
#   defaults: 10000 connections, 200 fan-out messages, SERVERS="zena ws bun"
# Builds the release binaries and the peers (npm ci in bench/peers), then for each server:
# starts it pinned to CPU 0 (zena-realtime with one event-loop thread), runs each scenario with
# zena-loadgen pinned to CPU 1, and stops it. Then the raw limit probe (1 and 8 frames per
# sendmsg). Loopback only. Writes the JSON lines to bench/results/<date>-<time>.md; the ratios
# are read from them into the dated summary by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-10000}
messages=${2:-200}
servers=${3:-zena ws bun}
scripts/build.sh release >/dev/null
(cd bench/peers && npm ci --no-audit --no-fund >/dev/null)
source bench/lib.sh
out=$(results_file)

{
  echo "# Benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD). Servers on CPU 0 (zena-realtime: 1 thread), generator on CPU 1."
  quota_line
  echo "Command: bench/run.sh $connections $messages \"$servers\""
  echo
  echo '```'
} >"$out"

# One scenario on a freshly started server: scenario SERVER NAME DESCRIPTION LOADGEN-ARGS...
# The idle scenario also records the server's RSS before the connections.
scenario() {
  local name=$1 label=$2 what=$3
  shift 3
  start_server "$name" "$([[ $label == *deflate* ]] && echo 1 || echo 0)"
  local before=""
  [[ $label == idle ]] && before=" rss_before_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
  echo "$name $label: $what" >&2
  echo "$name $label$before $(loadgen --connections "$connections" "$@" || true)" >>"$out"
  stop_server
}

fanout=(--messages "$messages" --publishers 1 --inflight 8)
for name in $servers; do
  scenario "$name" idle "$connections connections held 5 s" --messages 0 --hold-ms 5000
  scenario "$name" fanout "$connections connections x $messages messages, 8 in flight" "${fanout[@]}"
  scenario "$name" fanout_rate "$connections connections x $messages messages at 40 a second" "${fanout[@]}" --rate 40
  scenario "$name" targeted "100000 single-user publishes over 4 connections" \
    --mode targeted --messages 100000 --publishers 4 --inflight 1
  scenario "$name" batch "100000 single-user publishes in /api/batch requests of 50, over 4 connections" \
    --mode targeted --batch 50 --messages 100000 --publishers 4 --inflight 1
  scenario "$name" ask "a 1000-chunk stream to one user while the fan-out runs at 40 a second" \
    "${fanout[@]}" --rate 40 --ask-chunks 1000
  # The seed's ws design would compress per connection; it is left out of this one.
  [[ $name == ws ]] || scenario "$name" fanout_deflate "the fan-out with permessage-deflate" "${fanout[@]}" --deflate 1
done

probe_connections=$((connections < 19000 ? connections : 19000))
for batch in 1 8; do
  echo "probe: $probe_connections sockets x $messages frames, $batch per sendmsg" >&2
  echo "probe $(taskset -c 0 build/zena-send-probe --connections "$probe_connections" --messages "$messages" --batch "$batch" --reader-cpu 1 || true)" >>"$out"
done

echo '```' >>"$out"
echo "results: $out" >&2
