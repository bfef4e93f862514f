#!/usr/bin/env bash
# Profiles zena-realtime over the part of one generator run that the generator measures:
#   bench/perf_server.sh NAME LOADGEN-ARGS...
# Starts the server as bench/lib.sh does (CPU 0, one thread; the caller's ZENA_* variables reach
# it), attaches `perf record` to it disabled, and runs zena-loadgen (CPU 1) with --perf-ctl: the
# generator enables the recording from its first publish to its end (or, in --mode resume with
# --perf-phase plain|resume, for the phases of that kind only). Prints the generator's JSON line
# and perf's top symbols (self time), and keeps /tmp/zena-perf-NAME.data for `perf report -i`.
# Loopback only; bounded by the generator's --timeout-ms.
set -euo pipefail
# Its own session, so that bench/lib.sh's shield sets the nice of its own scheduler group only.
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
name=$1
shift
export ZENA_BINARY=${ZENA_BINARY:-build/zena-realtime} ZENA_LOADGEN=${ZENA_LOADGEN:-build/zena-loadgen}
source bench/lib.sh
shield
data=/tmp/zena-perf-$name.data
ctl=/tmp/zena-perf-$name.ctl
rm -f "$ctl"
mkfifo "$ctl"
start_server zena
perf record -F 1999 -g -p "$server_pid" -o "$data" --control "fifo:$ctl" -D -1 2>/tmp/zena-perf-$name.log &
perf_pid=$!
sleep 1
loadgen "$@" --perf-ctl "$ctl" || true
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
stop_server
rm -f "$ctl"
echo "perf top symbols (self), $name:"
perf report -i "$data" --stdio --no-children --sort symbol --percent-limit 0.5 2>/dev/null |
  grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -20
