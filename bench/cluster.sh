#!/usr/bin/env bash
# Issue 14's benchmark ("Performance"): many nodes on Redis, one command (bench/README.md,
# "Cluster"):
#   bench/cluster.sh [PARTS] [CONNECTIONS] [SERVERS]
#   defaults: PARTS="engine cluster", CONNECTIONS: 10000 for engine, 19000 per node for cluster
#             (one number sets both), SERVERS="zena ws sio" (the cluster part's)
# - engine: ONE zena-realtime node, engine `redis` (its own redis-server) against engine `memory`,
#   alternated run by run ($ROUNDS rounds, default 3, the order swapped each round), each run on a
#   fresh server (and a fresh Redis), the same generator flags:
#     fanout_delivery_w8, fanout_answer_w8: /api/broadcast-all, 8 in flight, each until every
#       connection received it / until answered ($MESSAGES messages, default 256);
#     targeted_answer, targeted_delivery: $TARGETED_MESSAGES (default 100000) single-user
#       /api/broadcast, 8 in flight on each of 8 connections;
#     fanout_open, targeted_open: Poisson arrivals at a rate both engines hold ($FANOUT_RATE,
#       default 40/s; $TARGETED_RATE, default 1000/s) for $STEP_MS (default 5000): the latency a
#       publish adds going through Redis, at the same load.
#   $LABELS (default all six) runs some of them.
#   bench/summarize_cluster.py gives redis ÷ memory (deliveries/s, publishes/s) against the
#   issue's targets (fan-out >= 0.8, targeted >= 0.6) and the p50/p99 Redis adds.
# - cluster: per server in SERVERS (zena: engine redis; ws: bench/peers/ws_server.mjs with
#   REDIS_URL, the seed's ws + Redis pub/sub; sio: bench/peers/sio_server.mjs, Socket.IO 4 with
#   @socket.io/redis-adapter), THREE nodes (three processes, distinct node ids and ports) on one
#   fresh redis-server, CONNECTIONS connections per node from one zena-loadgen process per node
#   (this machine's 20,000 open files per process), distinct users in each; the first process
#   publishes $CLUSTER_MESSAGES (default 100) /api/broadcast-all to its node, $CLUSTER_WINDOW
#   (default 8) in flight, each until every connection of all three processes received it (the
#   processes share a file: bench/cluster_shared.hpp). Every event must reach every connection
#   once: total deliveries/s, p50/p99 over all processes (merged histograms), lost/duplicates;
#   each node's RSS per connection (before the connects, and once all are in) and Redis's load
#   per publish (INFO commandstats/stats/cpu deltas over the publishing alone, read while the
#   publisher waits for DIR/go). $CLUSTER_ROUNDS rounds (default 2), the servers' order rotating.
# CPUs: the servers and Redis on $SERVER_CPUS (default 0; Redis on $REDIS_CPUS, default the
# same), the generators on $LOADGEN_CPUS (default 1), as in every benchmark of this machine.
# Before each run it waits (at most $QUIET_WAIT s, default 60) for a quiet machine and writes what
# it found (busy=<percent>), and it runs in its own session with the scheduler weight of nice -19
# (bench/lib.sh's shield; ZENA_BENCH_NICE= turns it off). Builds in $ZENA_BUILD (default build)
# unless ZENA_BINARY and ZENA_LOADGEN name the binaries. Results: the JSON lines in
# bench/results/<date>-<time>-cluster.md, then bench/summarize_cluster.py's tables. Loopback only;
# every generator is bounded by --timeout-ms ($TIMEOUT_MS, default 600000), every wait by a count.
set -euo pipefail
if [[ -z ${ZENA_BENCH_SESSION:-} ]]; then ZENA_BENCH_SESSION=1 exec setsid --wait "$0" "$@"; fi
cd "$(dirname "$0")/.."
parts=${1:-engine cluster}
engine_n=${2:-10000} cluster_n=${2:-19000}
servers=${3:-zena ws sio}
build=${ZENA_BUILD:-build}
rounds=${ROUNDS:-3} cluster_rounds=${CLUSTER_ROUNDS:-2}
messages=${MESSAGES:-256} targeted_messages=${TARGETED_MESSAGES:-100000} step_ms=${STEP_MS:-5000}
fanout_rate=${FANOUT_RATE:-40} targeted_rate=${TARGETED_RATE:-1000}
cluster_messages=${CLUSTER_MESSAGES:-100} cluster_window=${CLUSTER_WINDOW:-8} timeout_ms=${TIMEOUT_MS:-600000}
if [[ -n ${ZENA_BINARY:-} && -n ${ZENA_LOADGEN:-} ]]; then
  :
elif [[ -f $build/build.ninja ]]; then
  ninja -C "$build" zena-realtime zena-loadgen >/dev/null
else
  scripts/build.sh release >/dev/null
fi
export ZENA_BINARY=${ZENA_BINARY:-$build/zena-realtime} ZENA_LOADGEN=${ZENA_LOADGEN:-$build/zena-loadgen}
[[ " $parts " == *" cluster "* && ( " $servers " == *" ws "* || " $servers " == *" sio "* ) ]] &&
  (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
source bench/lib.sh
shield
out=$(results_file cluster)
started=$(date +%s)
work=$(mktemp -d /tmp/zena-cluster-bench.XXXXXX)
# Everything this script started and has not stopped yet, ended by PID on any exit (a
# generator started in the background runs under a subshell: its children go first).
declare -A live=()
started_pid() { live[$1]=1; }
stopped_pid() { unset "live[$1]"; }
cleanup() {
  local p
  for p in "${!live[@]}"; do
    pkill -P "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
  done
  for p in "${!live[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sio_version=$(node -p 'require("./bench/peers/node_modules/socket.io/package.json").version' 2>/dev/null || echo '?')
adapter_version=$(node -p 'require("./bench/peers/node_modules/@socket.io/redis-adapter/package.json").version' 2>/dev/null || echo '?')
{
  echo "# Cluster benchmark run $(date -u +%FT%TZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Commit: $(git rev-parse --short HEAD). Servers and Redis on CPU ${SERVER_CPUS:-0} (Redis: ${REDIS_CPUS:-${SERVER_CPUS:-0}};" \
    "zena-realtime: 1 thread per node), generators on CPU ${LOADGEN_CPUS:-1}; $(redis-server --version | cut -d' ' -f1-3)," \
    "Node $(node --version), Socket.IO $sio_version with @socket.io/redis-adapter $adapter_version."
  quota_line
  echo "Command: bench/cluster.sh \"$parts\" ${2:-} \"$servers\" (nice $(ps -o ni= -p $$ | tr -d ' ');" \
    "ROUNDS=$rounds MESSAGES=$messages TARGETED_MESSAGES=$targeted_messages STEP_MS=$step_ms" \
    "FANOUT_RATE=$fanout_rate TARGETED_RATE=$targeted_rate CLUSTER_ROUNDS=$cluster_rounds" \
    "CLUSTER_MESSAGES=$cluster_messages CLUSTER_WINDOW=$cluster_window TIMEOUT_MS=$timeout_ms)"
  echo
  echo '```'
} >"$out"

# redis_up: a fresh redis-server on a free port, its files in a fresh directory; sets rport.
redis_up() {
  rport=$(free_port)
  local dir
  dir=$(mktemp -d "$work/redis.XXXXXX")
  start_redis "$rport" "$dir"
  started_pid "$redis_pid"
}
redis_down() { stop_redis; stopped_pid "$redis_pid"; }
node_down() { server_pid=$1 stop_server; stopped_pid "$1"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# cores LIST...: how many distinct CPUs taskset lists ("0", "0-2,5") name together.
cores() {
  python3 -c 'import sys; print(len({c for l in sys.argv[1:] for p in l.split(",") for c in
    (range(int(p.split("-")[0]), int(p.split("-")[-1]) + 1))}))' "$@"
}
server_cores=$(cores "${SERVER_CPUS:-0}" "${REDIS_CPUS:-${SERVER_CPUS:-0}}") loadgen_cores=$(cores "${LOADGEN_CPUS:-1}")

# engine_run ENGINE LABEL ROUND LOADGEN-ARGS...: one node on a fresh server (and Redis), its line.
engine_run() {
  local engine=$1 label=$2 round=$3
  shift 3
  port=$(free_port) log=$work/node.log
  if [[ $engine == redis ]]; then
    redis_up
    ZENA_ENGINE=redis ZENA_REDIS_URL=redis://127.0.0.1:$rport ZENA_NODE_ID=bench-a start_server zena
  else
    ZENA_ENGINE=memory start_server zena
  fi
  started_pid "$server_pid"
  local busy before=""
  [[ $engine == redis ]] && before=$(redis_info "$rport")
  busy=$(quiet)
  echo "engine $engine $label round $round (busy $busy %)" >&2
  local line
  line=$(loadgen --timeout-ms "$timeout_ms" "$@" || true)
  [[ -n $line ]] || line='{}'
  echo "engine $engine $label r$round gen0 $line" >>"$out"
  if [[ $engine == redis ]]; then
    python3 bench/summarize_cluster.py --redis-delta "$before" "$(redis_info "$rport")" |
      sed "s/^/engine $engine $label r$round redis /" >>"$out"
    redis_down
  fi
  echo "engine $engine $label r$round run {\"busy\":$busy}" >>"$out"
  node_down "$server_pid"
}

if [[ " $parts " == *" engine "* ]]; then
  c=(--connections "$engine_n")
  for ((r = 1; r <= rounds; r++)); do
    order=(memory redis)
    ((r % 2 == 0)) && order=(redis memory)
    for label in ${LABELS:-fanout_delivery_w8 fanout_answer_w8 targeted_answer targeted_delivery fanout_open targeted_open}; do
      gate=${label#*_}
      gate=${gate%_w8}
      case $label in
        fanout_*_w8) args=(--messages "$messages" --publishers 1 --inflight 8 --gate "$gate") ;;
        targeted_answer | targeted_delivery)
          args=(--mode targeted --messages "$targeted_messages" --publishers 8 --inflight 8 --gate "$gate") ;;
        fanout_open) args=(--rates "$fanout_rate" --step-ms "$step_ms" --drain-ms 10000 --publishers 4) ;;
        targeted_open) args=(--mode targeted --rates "$targeted_rate" --step-ms "$step_ms" --drain-ms 10000 --publishers 4) ;;
      esac
      for engine in "${order[@]}"; do engine_run "$engine" "$label" "$r" "${c[@]}" "${args[@]}"; done
    done
  done
fi

# cluster_run SERVER ROUND: three nodes on one fresh Redis, one generator per node, the fan-out.
cluster_run() {
  local name=$1 round=$2 i
  local label=fanout_delivery_w$cluster_window
  redis_up
  local url=redis://127.0.0.1:$rport
  local -a node_ports node_pids rss_before rss_ready gen_pids
  for i in 0 1 2; do
    port=$(free_port) log=$work/node$i.log
    case $name in
      zena) ZENA_ENGINE=redis ZENA_REDIS_URL=$url ZENA_NODE_ID=bench-$i start_server zena ;;
      *) REDIS_URL=$url start_server "$name" ;;
    esac
    started_pid "$server_pid"
    node_ports+=("$port") node_pids+=("$server_pid")
  done
  sleep 1  # the nodes' first registry writes and canaries, not the connects'
  for i in 0 1 2; do rss_before+=("$(rss_kib "${node_pids[$i]}")"); done
  local busy
  busy=$(quiet)
  echo "cluster $name round $round: 3 nodes x $cluster_n connections (busy $busy %)" >&2
  local dir info0 info1 info2
  dir=$(mktemp -d "$work/run.XXXXXX")
  info0=$(redis_info "$rport")
  local proto=zena
  [[ $name == sio ]] && proto=socketio
  for i in 0 1 2; do
    port=${node_ports[$i]} server_pid=${node_pids[$i]}
    loadgen --connections "$cluster_n" --first-user $((i * cluster_n)) --messages "$cluster_messages" \
      --publishers 1 --inflight "$cluster_window" --gate delivery --protocol "$proto" --drain-ms 10000 \
      --cluster "$dir" --cluster-role "$([[ $i == 0 ]] && echo publish || echo receive)" --cluster-processes 3 \
      --timeout-ms "$timeout_ms" >"$dir/gen$i.json" 2>"$dir/gen$i.err" &
    gen_pids+=($!)
    started_pid $!
  done
  # Every connection in (the publisher says so with DIR/ready), or a generator gave up.
  local waited=0
  until [[ -e $dir/ready ]]; do
    sleep 0.1
    waited=$((waited + 1))
    if ((waited > timeout_ms / 100)) || ! kill -0 "${gen_pids[0]}" 2>/dev/null; then break; fi
  done
  for i in 0 1 2; do rss_ready+=("$(rss_kib "${node_pids[$i]}")"); done
  info1=$(redis_info "$rport")
  touch "$dir/go"
  # Every process printed (its deliveries are all in): Redis's counters before the connections
  # close, then they may (each holds them until DIR/end, at most --drain-ms).
  waited=0
  until [[ -s $dir/gen0.json && -s $dir/gen1.json && -s $dir/gen2.json ]]; do
    sleep 0.05
    waited=$((waited + 1))
    if ((waited > timeout_ms / 50)); then break; fi
    kill -0 "${gen_pids[0]}" 2>/dev/null || kill -0 "${gen_pids[1]}" 2>/dev/null ||
      kill -0 "${gen_pids[2]}" 2>/dev/null || break
  done
  info2=$(redis_info "$rport")
  touch "$dir/end"
  for i in 0 1 2; do
    wait "${gen_pids[$i]}" || true
    stopped_pid "${gen_pids[$i]}"
  done
  for i in 0 1 2; do
    local line
    line=$(cat "$dir/gen$i.json")
    [[ -n $line ]] || line='{}'
    if [[ -s $dir/gen$i.err ]]; then echo "generator $i: $(cat "$dir/gen$i.err")" >&2; fi
    echo "cluster $name $label r$round gen$i $line" >>"$out"
  done
  {
    echo -n "cluster $name $label r$round redis_connect "
    python3 bench/summarize_cluster.py --redis-delta "$info0" "$info1"
    echo -n "cluster $name $label r$round redis "
    python3 bench/summarize_cluster.py --redis-delta "$info1" "$info2"
    echo "cluster $name $label r$round run {\"busy\":$busy,\"connections_per_node\":$cluster_n," \
      "\"server_cores\":$server_cores,\"loadgen_cores\":$loadgen_cores," \
      "\"rss_before_kib\":[$(IFS=,; echo "${rss_before[*]}")],\"rss_ready_kib\":[$(IFS=,; echo "${rss_ready[*]}")]}"
  } >>"$out"
  for i in 0 1 2; do node_down "${node_pids[$i]}"; done
  redis_down
}

if [[ " $parts " == *" cluster "* ]]; then
  read -ra order <<<"$servers"
  for ((r = 1; r <= cluster_rounds; r++)); do
    n=${#order[@]}
    for ((i = 0; i < n; i++)); do cluster_run "${order[$(((r - 1 + i) % n))]}" "$r"; done
  done
fi

echo '```' >>"$out"
echo >>"$out"
echo "Wall time of the whole run: $(($(date +%s) - started)) s." >>"$out"
echo >>"$out"
python3 bench/summarize_cluster.py "$out" >>"$out"
echo "results: $out" >&2
