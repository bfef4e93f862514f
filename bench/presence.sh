#!/usr/bin/env bash
# Issue 13's performance targets for presence and typing (docs/presence.md; bench/README.md,
# "Presence and typing"), one command:
#   bench/presence.sh [RUNS] [PARTS]
#   defaults: 3 runs, PARTS="typing memory micro" (add "perf" for perf record of the typing runs)
# zena-realtime only, release build ($ZENA_BUILD, default build-bench), pinned to CPU 0 with one
# event-loop thread, a fresh server for every run (bench/lib.sh); the runs compared alternate
# A, B, A, B:
# - typing: "a channel of 1,000 users where 100 type at once: the relays cost the fan-out of other
#   channels less than 10 %". bench/typing.mjs (CPU 1) opens 1,000 connections of 1,000 users
#   subscribed to room:typing; then zena-loadgen (CPU 1) runs its channel fan-out: $CONNECTIONS
#   (10,000) connections subscribed to bench:all, $MESSAGES (1,000) ~200-byte messages through
#   POST /api/publish, 8 in flight. `typing`: 100 of the 1,000 send typing.start every 300 ms
#   through the whole generator run; `idle`: the same 1,000 connections, nobody types. Each line
#   has the generator's JSON (deliveries/s, latency, the server's CPU over its window), the typing
#   script's JSON (its relays and its own CPU over the same window, read through the generator's
#   --perf-ctl FIFO) and the server's zena_messages_dropped_ephemeral_total.
# - memory: "the presence of 10,000 connections costs less than 64 bytes each": $CONNECTIONS
#   connections subscribe to bench:all and are held 15 s (--hold-ms); 5 s after the last
#   subscribe the server's VmRSS, its heap in use (glibc malloc_stats through gdb, if present) and
#   the frames it queued (zena_messages_delivered_total: the presence joins), and the generator's
#   RSS reading at the end of the hold (server_rss_idle_kib); with channel presence on (the
#   default) and off (ZENA_CHANNELS_PRESENCE=false); also the RSS of the fresh server.
# - micro: engine::memory_presence alone (a small program built here against its source): the
#   heap (mallinfo2) and RSS 10,000 joins of one channel take, one user per client.
# - perf: one typing run and one idle run with the server under `perf record -g` (the generator's
#   window only, as bench/perf_server.sh), and the top 10 symbols (self).
# The script runs in its own session with the scheduler weight of nice -19 (bench/lib.sh's shield,
# $ZENA_BENCH_NICE). Before each run the script waits (at most $QUIET_WAIT seconds, default 60) until the machine is
# quiet (both cores under 15 % busy over a second) and writes what it found (busy=<percent>).
# Results go to bench/results/<date>-<time>-presence.md. Loopback only; every run is bounded: the
# generator by --timeout-ms, the typing script by --max-seconds and every wait by a count.
set -euo pipefail
# Its own session, so that bench/lib.sh's shield sets the nice of its own scheduler group only.
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
runs=${1:-3}
parts=${2:-typing memory micro}
connections=${CONNECTIONS:-10000}
messages=${MESSAGES:-1000}
build=${ZENA_BUILD:-build-bench}
if [[ -f $build/build.ninja ]]; then
  ninja -C "$build" zena-realtime zena-loadgen >/dev/null
else
  echo "no $build/build.ninja: configure a release build there (cmake -G Ninja -DCMAKE_BUILD_TYPE=Release)" >&2
  exit 1
fi
export ZENA_BINARY=${ZENA_BINARY:-$build/zena-realtime} ZENA_LOADGEN=${ZENA_LOADGEN:-$build/zena-loadgen}
source bench/lib.sh
# The server, the generator and the typing script outweigh other users' jobs (bench/lib.sh).
shield
out=$(results_file presence)
tmp=$(mktemp -d /tmp/zena-presence.XXXXXX)
trap 'rm -rf "$tmp"' EXIT  # also when a server does not start (bench/lib.sh exits)
# The server's log (bench/lib.sh's $log) in this run's own directory: other engineers' benchmarks
# on the same machine write theirs to lib.sh's fixed path.
log=$tmp/server.log

{
  echo "# Presence and typing benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD) (with the working tree's changes). Server: $ZENA_BINARY on CPU 0 (1 thread); generator and typing script on CPU 1."
  quota_line
  echo "Command: CONNECTIONS=$connections MESSAGES=$messages bench/presence.sh $runs \"$parts\""
  echo
  echo '```'
} >"$out"

# busy_percent and quiet come from bench/lib.sh.
# start_typing MODE READY_FILE OUT [ARGS...]: bench/typing.mjs on CPU 1 (1,000 connections, 100
# typists every 300 ms on room:typing), its pid in typing_pid; waits (at most 90 s) until it is
# ready; non-zero when it is not.
start_typing() {
  local mode=$1 ready=$2 typing_out=$3
  shift 3
  taskset -c 1 node bench/typing.mjs --port "$port" --secret "$secret" --connections 1000 --typists 100 \
    --interval-ms 300 --channel room:typing --mode "$mode" --max-seconds 300 --ready-file "$ready" \
    "$@" >"$typing_out" 2>"$tmp/typing.err" &
  typing_pid=$!
  for _ in $(seq 900); do
    [[ -s $ready ]] && return 0
    kill -0 "$typing_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -s $ready ]]
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { curl -s -m 5 -H "Authorization: Bearer $key" "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

fan=(--connections "$connections" --messages "$messages" --publishers 1 --inflight 8 --mode channel --channel bench:all --grant 'bench:*')

# typing_run MODE [PERF]: MODE typing or idle. A fresh server, the typing script (ready once its
# 1,000 connections are subscribed and their presence joins delivered), the generator's fan-out,
# then the script is stopped. With PERF=1 the server runs under perf record for the generator's
# window (and the typing script does not read the window).
typing_run() {
  local mode=$1 perf=${2:-0} busy ready=$tmp/ready fifo=$tmp/window typing_out=$tmp/typing.json perf_pid=
  start_server zena
  busy=$(quiet)
  echo "$mode (busy $busy %)" >&2
  rm -f "$ready" "$fifo" "$typing_out"
  mkfifo "$fifo"
  local window=(--window-fifo "$fifo") ctl=$fifo
  if [[ $perf == 1 ]]; then
    window=()
    ctl=$tmp/perf.ctl
    rm -f "$ctl"
    mkfifo "$ctl"
    perf record -F 1999 -g -p "$server_pid" -o "$tmp/perf-$mode.data" --control "fifo:$ctl" -D -1 \
      2>"$tmp/perf-$mode.log" &
    perf_pid=$!
  fi
  if ! start_typing "$mode" "$ready" "$typing_out" "${window[@]}"; then
    echo "the typing script did not get ready: $(tail -3 "$tmp/typing.err")" >&2
    echo "zena $mode busy=$busy error=\"the typing script did not get ready\"" >>"$out"
    kill "$typing_pid" 2>/dev/null || true
    wait "$typing_pid" 2>/dev/null || true
    [[ -n $perf_pid ]] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
    stop_server
    return 0
  fi
  local line
  line=$(loadgen "${fan[@]}" --perf-ctl "$ctl" || true)
  local dropped
  dropped=$(metric zena_messages_dropped_ephemeral_total)
  kill -TERM "$typing_pid"
  wait "$typing_pid" || true
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" 2>/dev/null || true
  fi
  echo "zena $mode busy=$busy dropped_ephemeral=$dropped loadgen=$line typing=$(cat "$typing_out")" >>"$out"
  stop_server
  rm -f "$fifo"
  if [[ $perf == 1 ]]; then
    {
      echo
      echo "perf top symbols (self), server, $mode run, the generator's window:"
      perf report -i "$tmp/perf-$mode.data" --stdio --no-children --sort symbol --percent-limit 0.5 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -10
      echo
    } >>"$out"
  fi
}

# alone_run MODE: MODE typing or idle, the typing script without the fan-out: 2 s after it is
# ready, $ALONE_SECONDS (20) seconds measured: the server's CPU (/proc/<pid>/stat), the ephemeral
# frames it dropped, and the script's relays and CPU over the same seconds (through its window
# FIFO, which this function writes).
alone_run() {
  local mode=$1 busy ready=$tmp/ready fifo=$tmp/window typing_out=$tmp/typing.json seconds=${ALONE_SECONDS:-20}
  start_server zena
  busy=$(quiet)
  echo "alone_$mode (busy $busy %)" >&2
  rm -f "$ready" "$fifo" "$typing_out"
  mkfifo "$fifo"
  if ! start_typing "$mode" "$ready" "$typing_out" --window-fifo "$fifo"; then
    echo "zena alone_$mode busy=$busy error=\"the typing script did not get ready\"" >>"$out"
    kill "$typing_pid" 2>/dev/null || true
    wait "$typing_pid" 2>/dev/null || true
    stop_server
    return 0
  fi
  sleep 2
  local tck c0 c1 d0 d1 m0 m1
  tck=$(getconf CLK_TCK)
  d0=$(metric zena_messages_dropped_ephemeral_total)
  m0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  echo enable >"$fifo"
  c0=$(head -1 /proc/stat | awk '{print $2 + $3 + $4 + $7 + $8 + $9}')
  sleep "$seconds"
  echo disable >"$fifo"
  m1=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  c1=$(head -1 /proc/stat | awk '{print $2 + $3 + $4 + $7 + $8 + $9}')
  d1=$(metric zena_messages_dropped_ephemeral_total)
  sleep 0.2
  kill -TERM "$typing_pid"
  wait "$typing_pid" || true
  echo "zena alone_$mode busy=$busy seconds=$seconds server_cpu_ticks=$((m1 - m0)) machine_busy_ticks=$((c1 - c0)) clk_tck=$tck dropped_ephemeral=$((d1 - d0)) typing=$(cat "$typing_out")" >>"$out"
  stop_server
  rm -f "$fifo"
}

# heap_in_use: the server's heap in use now, in bytes, from its allocator's own statistics, which
# the server writes to its log when gdb calls for them (empty without gdb): jemalloc's (the release
# binary's) "Allocated:", the bytes of live allocations, or glibc's malloc_stats, all arenas and
# mmap, for a build without jemalloc.
heap_in_use() {
  command -v gdb >/dev/null || return 0
  local before
  before=$(wc -l <"$log")
  if grep -q libjemalloc "/proc/$server_pid/maps"; then
    timeout 30 gdb -p "$server_pid" -batch -nx -ex 'call (void)malloc_stats_print(0, 0, 0)' >/dev/null 2>&1 || true
    tail -n +"$((before + 1))" "$log" | awk '/^Allocated:/ {gsub(",", "", $2); print $2; exit}'
    return 0
  fi
  timeout 30 gdb -p "$server_pid" -batch -nx -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
  tail -n +"$((before + 1))" "$log" | awk '/^Total/ {t = 1} t && /in use bytes/ {print $NF; exit}'
}

# memory_run LABEL: a fresh server (the caller's ZENA_* variables reach it) and its RSS, then the
# generator's connections subscribed to bench:all and held 15 s; 5 s after the last subscribe
# (the presence joins delivered by then) the server's RSS, heap in use and frames queued, and
# the generator's own reading of the RSS at the end of the hold (server_rss_idle_kib).
memory_run() {
  local label=$1 busy base held heap delivered line
  start_server zena
  busy=$(quiet)
  echo "$label (busy $busy %)" >&2
  base=$(rss_kib "$server_pid")
  loadgen --connections "$connections" --messages 0 --mode channel --channel bench:all --grant 'bench:*' \
    --hold-ms 15000 >"$tmp/memory.json" 2>&1 &
  local gen=$!
  for _ in $(seq 1200); do
    [[ $(metric zena_subscribes_total) == "$connections" ]] && break
    kill -0 "$gen" 2>/dev/null || break
    sleep 0.1
  done
  sleep 5
  held=$(rss_kib "$server_pid")
  heap=$(heap_in_use)
  delivered=$(metric zena_messages_delivered_total)
  wait "$gen" || true
  line=$(cat "$tmp/memory.json")
  echo "zena $label busy=$busy rss_fresh_kib=$base rss_held_kib=$held heap_in_use_bytes=$heap frames_queued=$delivered $line" >>"$out"
  stop_server
}

if [[ " $parts " == *" typing "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    typing_run idle
    typing_run typing
  done
fi
if [[ " $parts " == *" alone "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    alone_run idle
    alone_run typing
  done
fi
if [[ " $parts " == *" memory "* ]]; then
  for ((i = 1; i <= runs; i++)); do
    memory_run presence_on
    ZENA_CHANNELS_PRESENCE=false memory_run presence_off
  done
fi
if [[ " $parts " == *" perf "* ]]; then
  typing_run typing 1
  typing_run idle 1
fi
echo '```' >>"$out"

if [[ " $parts " == *" micro "* ]]; then
  echo "micro" >&2
  cat >"$tmp/presence_micro.cpp" <<'EOF'
// 10,000 joins of one channel in engine::memory_presence, one user per client (client ids as
// client::presence_client makes them, the connection's number; users u0, u1, ...): the heap it
// takes (mallinfo2's bytes in use, malloc's headers included, and its mmapped blocks: a big
// channel's arrays are allocated by mmap) and the RSS.
#include <malloc.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "engine/memory/memory_presence.hpp"

static long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == "VmRSS:") {
            in >> value;
            return value;
        }
        in.ignore(1 << 20, '\n');
    }
    return 0;
}

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::stoi(argv[1]) : 10000;
    zena::engine::memory_presence presence;
    int arrived = 0;
    const auto heap = [] {
        const auto m = mallinfo2();
        return m.uordblks + m.hblkhd;
    };
    const auto heap0 = heap();
    const auto rss0 = rss_kib();
    for (int i = 1; i <= n; ++i) {
        presence.join("bench:all", std::to_string(i), "u" + std::to_string(i - 1), std::chrono::hours(1),
                      [&](auto r) { arrived += r && *r; });
    }
    const auto heap1 = heap();
    const auto rss1 = rss_kib();
    std::printf("{\"joins\":%d,\"arrived\":%d,\"entries\":%zu,\"heap_bytes\":%zu,\"heap_bytes_per_entry\":%.1f,"
                "\"rss_kib\":%ld,\"rss_bytes_per_entry\":%.1f}\n",
                n, arrived, presence.entries(), heap1 - heap0, static_cast<double>(heap1 - heap0) / n,
                rss1 - rss0, (rss1 - rss0) * 1024.0 / n);
}
EOF
  g++ -std=c++20 -O2 -DNDEBUG -Isrc "$tmp/presence_micro.cpp" src/engine/memory/memory_presence.cpp \
    -o "$tmp/presence_micro"
  {
    echo
    echo "micro: engine::memory_presence, $connections joins of one channel (g++ -O2, glibc malloc)"
    echo
    echo '```'
    for ((i = 1; i <= runs; i++)); do "$tmp/presence_micro" "$connections"; done
    echo '```'
  } >>"$out"
fi
# The tables: per run and the medians (all runs, and the undisturbed ones: other processes took
# under 10 % of the window, the typing script's own CPU left out), typing against idle pair by pair.
python3 - "$out" "$connections" >>"$out" <<'EOF'
import json, re, statistics as st, sys
path, n = sys.argv[1], int(sys.argv[2])
runs = {"typing": [], "idle": [], "presence_on": [], "presence_off": [], "alone_idle": [], "alone_typing": []}
for line in open(path):
    m = re.match(r"zena (\w+) busy=(\d+) (.*)", line)
    if not m or m.group(1) not in runs or "error=" in line:
        continue
    r = {"busy": int(m.group(2))}
    rest = m.group(3)
    for k, v in re.findall(r"(\w+)=(\d+) ", rest):
        r[k] = int(v)
    if m.group(1).startswith("alone_"):
        r["typ"] = json.loads(rest[rest.index(" typing=") + 8:])
    elif "loadgen=" in rest:
        r["gen"] = json.loads(rest[rest.index("loadgen=") + 8:rest.index(" typing=")])
        r["typ"] = json.loads(rest[rest.index(" typing=") + 8:])
    else:
        r["gen"] = json.loads(rest[rest.index("{"):])
    runs[m.group(1)].append(r)
med = lambda xs: st.median(xs) if xs else float("nan")
if runs["idle"] or runs["typing"]:
    print("\n| run | deliveries/s | p50 ms | p99 ms | server CPU ns/delivery | relays received in window | typing script CPU in window | others | ephemeral dropped |")
    print("|---|---|---|---|---|---|---|---|---|")
    pairs = []
    for i, (a, b) in enumerate(zip(runs["idle"], runs["typing"])):
        for name, r in (("idle", a), ("typing", b)):
            g, w = r["gen"], r["typ"].get("window") or {}
            others = max(0.0, g["others_cpu_s"] - w.get("cpu_s", 0))
            r["disturbed"] = others > 0.1 * g["wall_s"]
            r["ns"] = 1e9 * g["server_cpu_s"] / g["delivered"]
            ww = max(w.get("wall_s", 0), 1e-9)
            print(f"| {name} {i + 1}{' (disturbed)' if r['disturbed'] else ''} | {g['deliveries_per_s']:,} | "
                  f"{g['latency_us']['p50'] / 1000:.0f} | {g['latency_us']['p99'] / 1000:.0f} | {r['ns']:.0f} | "
                  f"{w.get('relays_true', 0):,} ({w.get('relays_true', 0) / ww:,.0f}/s) | "
                  f"{w.get('cpu_s', 0):.2f} s ({100 * w.get('cpu_s', 0) / ww:.1f} %) | "
                  f"{others:.1f} s | {r.get('dropped_ephemeral', 0):,} |")
        pairs.append((a, b))
    print("\n| pairs | typing/idle deliveries/s | typing/idle p99 | typing/idle server CPU per delivery |")
    print("|---|---|---|---|")
    quiet = [p for p in pairs if not p[0]["disturbed"] and not p[1]["disturbed"]]
    for label, sel in (("all", pairs), ("undisturbed", quiet)):
        d = [b["gen"]["deliveries_per_s"] / a["gen"]["deliveries_per_s"] for a, b in sel]
        p99 = [b["gen"]["latency_us"]["p99"] / a["gen"]["latency_us"]["p99"] for a, b in sel]
        c = [b["ns"] / a["ns"] for a, b in sel]
        fmt = lambda xs: f"{med(xs):.3f} ({', '.join(f'{x:.3f}' for x in xs)})" if xs else "-"
        print(f"| {label} ({len(sel)}) | {fmt(d)} | {fmt(p99)} | {fmt(c)} |")
if runs["alone_idle"] or runs["alone_typing"]:
    print("\n| typing alone (no fan-out) | server CPU, % of a core | relays received/s | ephemeral dropped/s | typing script CPU | others |")
    print("|---|---|---|---|---|---|")
    for name in ("alone_idle", "alone_typing"):
        for i, r in enumerate(runs[name]):
            t, w = r["clk_tck"], r["typ"]["window"] or {}
            secs = w.get("wall_s") or r["seconds"]
            r["cpu"] = r["server_cpu_ticks"] / t / secs
            r["frames"] = (w.get("relays_true", 0) + w.get("relays_false", 0) + r["dropped_ephemeral"]) / secs
            others = r["machine_busy_ticks"] / t - r["server_cpu_ticks"] / t - w.get("cpu_s", 0)
            r["disturbed"] = others > 0.1 * secs
            print(f"| {name} {i + 1}{' (disturbed)' if r['disturbed'] else ''} | {100 * r['cpu']:.1f} | {w.get('relays_true', 0) / secs:,.0f} | "
                  f"{r['dropped_ephemeral'] / secs:,.0f} | {100 * w.get('cpu_s', 0) / secs:.1f} % | {others:.1f} s |")
    for label, keep in (("all runs", lambda r: True), ("undisturbed runs", lambda r: not r["disturbed"])):
        idle = med([r["cpu"] for r in runs["alone_idle"] if keep(r)])
        typing = med([r["cpu"] for r in runs["alone_typing"] if keep(r)])
        frames = med([r["frames"] for r in runs["alone_typing"] if keep(r)])
        got = med([r["typ"]["window"]["relays_true"] / r["typ"]["window"]["wall_s"] for r in runs["alone_typing"] if keep(r)])
        print(f"\nThe relays alone, {label}: {100 * (typing - idle):.1f} % of a core (median typing {100 * typing:.1f} % "
              f"less median idle {100 * idle:.1f} %), for {frames:,.0f} relay frames a second offered to connections "
              f"(received + dropped), {got:,.0f} received.")
        if frames == frames and frames > 0:  # not NaN: runs were kept
            # Each relay is offered to the channel's other 999 connections.
            relays = frames / 999
            print(f"Server CPU per relay: {1e6 * (typing - idle) / relays:,.0f} us ({relays:,.0f} relays/s); per "
                  f"frame offered {1e9 * (typing - idle) / frames:,.0f} ns, per frame received "
                  f"{1e9 * (typing - idle) / max(got, 1):,.0f} ns.")
if runs["presence_on"] or runs["presence_off"]:
    print("\n| run | RSS fresh KiB | RSS held KiB | RSS end of hold KiB | heap in use KiB | frames queued | server CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name in ("presence_on", "presence_off"):
        for i, r in enumerate(runs[name]):
            print(f"| {name} {i + 1} | {r['rss_fresh_kib']:,} | {r.get('rss_held_kib', 0):,} | "
                  f"{r['gen']['server_rss_idle_kib']:,} | {r.get('heap_in_use_bytes', 0) // 1024:,} | "
                  f"{r.get('frames_queued', 0):,} | {r['gen']['server_cpu_s']:.2f} |")
    print(f"\n| per connection (medians, on - off, / {n:,}) | bytes |")
    print("|---|---|")
    for label, f in (("RSS held, less the fresh RSS", lambda r: r.get("rss_held_kib", 0) - r["rss_fresh_kib"]),
                     ("RSS at the end of the hold", lambda r: r["gen"]["server_rss_idle_kib"]),
                     ("heap in use", lambda r: r.get("heap_in_use_bytes", 0) / 1024)):
        on = med([f(r) for r in runs["presence_on"]])
        off = med([f(r) for r in runs["presence_off"]])
        print(f"| {label} | {(on - off) * 1024 / n:.0f} |")
EOF
echo "results: $out" >&2
