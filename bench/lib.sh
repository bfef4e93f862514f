# The benchmark's shared pieces, sourced by bench/run.sh and bench/ab.sh from the repository's
# root: the credentials and port, start_server NAME [DEFLATE] (pinned to CPU 0; NAME zena, ws,
# bun or sio; zena runs $ZENA_BINARY, default build/zena-realtime, with one event-loop thread),
# stop_server, and loadgen ARGS... (the generator pinned to CPU 1; $ZENA_LOADGEN, default
# build/zena-loadgen). Loopback only. Other ZENA_* variables set by the caller (for example
# ZENA_CHANNELS_HISTORY_SIZE=0) reach the zena server as they are, and REDIS_URL reaches the
# Node peers (ws with Redis pub/sub, sio with its Redis adapter). $SERVER_CPUS and $LOADGEN_CPUS
# (taskset lists, default 0 and 1) move the two sides. start_server uses $port and $log, so a
# caller with several servers (bench/cluster.sh) sets both before each; free_port, start_redis
# and redis_info serve that caller. $SERVER_CPU_QUOTA (a share of one CPU, e.g. 0.5) runs each
# server in a cgroup of its own that may use that much CPU time (see in_server_cgroup).
secret=bench-secret-0123456789abcdef0123456789abcdef
key=bench-api-key-0123456789
port=$((20000 + RANDOM % 20000))
ulimit -n 20000 2>/dev/null || true
log=/tmp/zena-bench-server.log

# The CPU quota ($SERVER_CPU_QUOTA): when the generator, not the server, sets the pace (one
# receive per delivery costs the generator about as much as the server's send), both servers
# run at the generator's speed and their ratio says nothing about them. Capped at a share of a
# CPU, each server is the bottleneck again, and the same cap for every server keeps the
# comparison fair. The quota is enforced per $SERVER_CPU_PERIOD_US (default 10,000 µs: a
# throttled server waits at most the rest of one period) through the cgroup v1 cpu controller
# or cgroup v2's cpu.max, in a group of its own per server (removed by stop_server), with the
# highest scheduler weight in place of the shield's nice. Root only.
declare -A server_cgroups=()
new_server_cgroup() {
  local quota=$1 period=${SERVER_CPU_PERIOD_US:-10000} dir us
  us=$(awk -v q="$quota" -v p="$period" 'BEGIN { if (q + 0 <= 0 || q + 0 > 1) exit 1; printf "%d", q * p }') ||
    { echo "SERVER_CPU_QUOTA must be a share of one CPU (0 < share <= 1), not '$quota'" >&2; exit 1; }
  # Groups a run left behind when it stopped before its stop_server (rmdir only removes an empty one).
  rmdir /sys/fs/cgroup/cpu/zena-bench-* /sys/fs/cgroup/zena-bench-* 2>/dev/null || true
  if [[ -d /sys/fs/cgroup/cpu && -w /sys/fs/cgroup/cpu ]]; then
    dir=/sys/fs/cgroup/cpu/zena-bench-$$-$RANDOM
    if ! { mkdir "$dir" && echo "$period" >"$dir/cpu.cfs_period_us" && echo "$us" >"$dir/cpu.cfs_quota_us" &&
      echo 262144 >"$dir/cpu.shares"; }; then
      echo "cannot set up the cgroup $dir" >&2
      exit 1
    fi
  elif [[ -w /sys/fs/cgroup/cgroup.subtree_control ]]; then
    dir=/sys/fs/cgroup/zena-bench-$$-$RANDOM
    if ! { echo +cpu >/sys/fs/cgroup/cgroup.subtree_control && mkdir "$dir" && echo "$us $period" >"$dir/cpu.max" &&
      echo 10000 >"$dir/cpu.weight"; }; then
      echo "cannot set up the cgroup $dir" >&2
      exit 1
    fi
  else
    echo "SERVER_CPU_QUOTA needs a writable cgroup cpu controller (v1 or v2): run as root" >&2
    exit 1
  fi
  echo "$dir"
}
# in_server_cgroup CMD...: runs CMD (exec) in $server_cgroup when one is set, else as it is.
in_server_cgroup() {
  if [[ -n ${server_cgroup:-} ]]; then echo "$BASHPID" >"$server_cgroup/cgroup.procs"; fi
  exec "$@"
}

# quota_line: the results file's line for $SERVER_CPU_QUOTA, which bench/summarize.py's
# bottleneck rule reads (nothing without a quota).
quota_line() {
  if [[ -n ${SERVER_CPU_QUOTA:-} ]]; then
    echo "Server CPU quota: $SERVER_CPU_QUOTA of a CPU per ${SERVER_CPU_PERIOD_US:-10000} µs (SERVER_CPU_QUOTA)."
  fi
}

# start_server NAME [DEFLATE]: DEFLATE=1 lets the server negotiate permessage-deflate.
start_server() {
  local name=$1 deflate=${2:-0} server_cgroup=""
  : >"$log"
  if [[ -n ${SERVER_CPU_QUOTA:-} ]]; then server_cgroup=$(new_server_cgroup "$SERVER_CPU_QUOTA") || exit 1; fi
  case $name in
    zena)
      ZENA_PERMESSAGE_DEFLATE=$([[ $deflate == 1 ]] && echo true || echo false) \
      ZENA_JWT_SECRET=$secret ZENA_API_KEY=$key ZENA_THREADS=1 ZENA_LOG_LEVEL=info \
      ZENA_MAX_CONNECTIONS_PER_ADDRESS=1000000 ZENA_HANDSHAKES_PER_ADDRESS_PER_SECOND=1000000 \
      ZENA_MAX_CONNECTIONS=1000000 \
        in_server_cgroup taskset -c "${SERVER_CPUS:-0}" "${ZENA_BINARY:-build/zena-realtime}" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
      ;;
    ws)
      PORT=$port JWT_SECRET=$secret API_KEY=$key in_server_cgroup taskset -c "${SERVER_CPUS:-0}" node bench/peers/ws_server.mjs >"$log" 2>&1 &
      ;;
    sio)
      PORT=$port JWT_SECRET=$secret API_KEY=$key in_server_cgroup taskset -c "${SERVER_CPUS:-0}" node bench/peers/sio_server.mjs >"$log" 2>&1 &
      ;;
    bun)
      DEFLATE=$deflate PORT=$port JWT_SECRET=$secret API_KEY=$key \
        in_server_cgroup taskset -c "${SERVER_CPUS:-0}" bench/peers/node_modules/.bin/bun bench/peers/bun_server.mjs >"$log" 2>&1 &
      ;;
  esac
  server_pid=$!
  if [[ -n $server_cgroup ]]; then server_cgroups[$server_pid]=$server_cgroup; fi
  for _ in $(seq 100); do
    grep -q listening "$log" && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$log" >&2; exit 1
}
stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  local dir=${server_cgroups[$server_pid]:-}
  if [[ -n $dir ]]; then
    unset "server_cgroups[$server_pid]"
    # The last thread may take a moment to leave the group after the process is reaped.
    for _ in $(seq 50); do rmdir "$dir" 2>/dev/null && return 0; sleep 0.1; done
    echo "stop_server: the cgroup $dir is still busy; the next start_server removes it once empty" >&2
  fi
}

# results_file [KIND]: creates this run's file in bench/results (and the folder) and prints its
# name, bench/results/DATE-HHMM-KIND.md (DATE-HHMM.md without KIND); when a run of the same minute
# already took it, -2, -3, ... is added, so that two short runs never write over each other.
results_file() {
  local base i=2
  mkdir -p bench/results
  base=bench/results/$(date +%F-%H%M)${1:+-$1}
  local name=$base.md
  while [[ -e $name ]]; do name=$base-$i.md; i=$((i + 1)); done
  : >"$name"
  echo "$name"
}

# shield: on this shared machine, gives what the calling script starts from now on (the server,
# the generator) the scheduler weight of nice $ZENA_BENCH_NICE (default -19; empty: nothing), so
# that other users' jobs wait while a run is busy rather than taking its CPU. With autogroups
# (kernel.sched_autogroup_enabled=1, as here) nice counts only inside a session's group, so it is
# the group's nice that is set: the caller must be in its own session (bench/channels.sh and
# bench/perf_server.sh re-run themselves under setsid). Used by those two scripts only; run.sh
# and ab.sh do not call it.
shield() {
  local nice=${ZENA_BENCH_NICE--19}
  [[ -z $nice ]] && return 0
  renice -n "$nice" -p $$ >/dev/null
  if [[ -w /proc/$$/autogroup ]]; then echo "$nice" >"/proc/$$/autogroup" || true; fi
}

# busy_percent: the share of the last second both cores were busy, in percent. quiet: waits (at
# most $QUIET_WAIT seconds, default 60) until that is under 15 % and prints what it found, since
# this machine is shared (bench/channels.sh, bench/shapes.sh, bench/presence.sh).
busy_percent() {
  local a b
  read -ra a </proc/stat
  sleep 1
  read -ra b </proc/stat
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $((total > 0 ? 100 * (total - idle) / total : 0))
}
quiet() {
  local busy
  for _ in $(seq "${QUIET_WAIT:-60}"); do
    busy=$(busy_percent)
    ((busy < 15)) && break
  done
  echo "$busy"
}

loadgen() {
  taskset -c "${LOADGEN_CPUS:-1}" "${ZENA_LOADGEN:-build/zena-loadgen}" --port "$port" --secret "$secret" --api-key "$key" --server-pid "$server_pid" \
    --sources 32 --timeout-ms 120000 "$@"
}


# free_port: a loopback TCP port nobody listens on now (the kernel's pick), for a caller that
# starts several servers on this shared machine, where a random port may be someone else's.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis PORT DIR: a redis-server of our own on 127.0.0.1:PORT, nothing persisted, its files
# in DIR, pinned to $REDIS_CPUS (default: the server side's CPUs); sets redis_pid. Waits (10 s at
# most) until it answers PING. stop_redis: ends that one, by its PID.
start_redis() {
  local rport=$1 dir=$2
  taskset -c "${REDIS_CPUS:-${SERVER_CPUS:-0}}" redis-server --port "$rport" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do
    [[ $(redis-cli -p "$rport" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  echo "redis-server did not start on $rport" >&2; cat "$dir/redis.log" >&2; exit 1
}
stop_redis() { kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; }

# redis_info PORT: Redis's counters as one line of JSON (INFO's stats, cpu, memory and
# commandstats; bench/summarize_cluster.py --redis-delta takes two of them apart).
redis_info() {
  redis-cli -p "$1" info everything | python3 bench/summarize_cluster.py --redis-info
}
