#!/usr/bin/env bash
# The Debian package, built and run as shipped: `cpack -G DEB` from the build directory, unpacked
# with `dpkg-deb -x` into a scratch root, then the binary from there: --version, check-config on
# the shipped configuration (valid with the secrets, every error listed without them), and a run
# on a free loopback port that must say READY=1 on $NOTIFY_SOCKET and answer /healthz.
#   tests/package/deb_test.sh BUILD_DIR [ALLOCATOR]
# ALLOCATOR (jemalloc or glibc, from CMake): the malloc the build linked, which the package's
# Depends and the server's start log must show.
set -euo pipefail
build=$(cd "${1:?usage: deb_test.sh BUILD_DIR [ALLOCATOR]}" && pwd)
allocator=${2:-jemalloc}
scratch=$(mktemp -d)
server_pid=
listener_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -n $listener_pid ]] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

step "cpack -G DEB"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$scratch"/out/zena-realtime_*.deb)
echo "$deb ($(stat -c %s "$deb") bytes)"

step "control"
dpkg-deb -I "$deb" >"$scratch/info"
grep -q '^ Package: zena-realtime$' "$scratch/info" || fail "package name"
grep -q '^ Depends:.*libssl' "$scratch/info" || fail "Depends lacks the shared libraries: $(grep Depends "$scratch/info")"
if [[ $allocator == jemalloc ]]; then
  grep -q '^ Depends:.*libjemalloc2' "$scratch/info" || fail "Depends lacks jemalloc: $(grep Depends "$scratch/info")"
fi
# The control archive is written to a file and read from there. Through a pipe (`dpkg-deb
# --ctrl-tarfile | tar -t | grep -q`, under pipefail) a reader that stops early (tar at the
# archive's end, grep at its match) leaves its writer a SIGPIPE, and the check failed now and
# then on a package that was right (a clean-clone CI run, the ASan build's package).
dpkg-deb --ctrl-tarfile "$deb" >"$scratch/control.tar"
tar -x -O -f "$scratch/control.tar" ./conffiles >"$scratch/conffiles"
grep -qx /etc/zena-realtime/zena-realtime.toml "$scratch/conffiles" || fail "the toml is not a conffile"
tar -t -f "$scratch/control.tar" >"$scratch/control.list"
grep -qx './postinst' "$scratch/control.list" || fail "no postinst: $(tr '\n' ' ' <"$scratch/control.list")"

step "dpkg-deb -x"
root=$scratch/root
dpkg-deb -x "$deb" "$root"
for f in usr/bin/zena-realtime etc/zena-realtime/zena-realtime.toml etc/zena-realtime/zena-realtime.env \
  lib/systemd/system/zena-realtime.service usr/lib/sysusers.d/zena-realtime.conf \
  usr/share/doc/zena-realtime/README.md usr/share/doc/zena-realtime/deployment.md \
  usr/share/doc/zena-realtime/configuration.md usr/share/doc/zena-realtime/examples/nginx/zena-realtime.conf; do
  [[ -e $root/$f ]] || fail "missing /$f"
done
[[ $(stat -c %a "$root/etc/zena-realtime/zena-realtime.env") == 640 ]] || fail "the secrets file is not 0640"
unit=$root/lib/systemd/system/zena-realtime.service
for line in Type=notify Restart=on-failure User=zena-realtime NoNewPrivileges=yes ProtectSystem=strict \
  ProtectHome=yes PrivateTmp=yes CapabilityBoundingSet= LimitNOFILE=; do
  grep -q "^$line" "$unit" || fail "the unit lacks $line"
done
if command -v systemd-analyze >/dev/null; then
  # Offline check of the unit's syntax, against the unpacked binary.
  sed "s|/usr/bin/zena-realtime|$root/usr/bin/zena-realtime|" "$unit" >"$scratch/zena-realtime.service"
  systemd-analyze verify "$scratch/zena-realtime.service" 2>"$scratch/verify" || true
  if grep -v -e 'Failed to .*bus' -e 'network-online.target' -e 'redis-server.service' "$scratch/verify" |
    grep -q 'zena-realtime.service'; then
    cat "$scratch/verify" >&2; fail "systemd-analyze verify"
  fi
fi

bin=$root/usr/bin/zena-realtime
step "--version"
version=$("$bin" --version)
echo "$version"
[[ $version =~ ^zena-realtime\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "--version: $version"

step "check-config on the shipped toml"
conf=$root/etc/zena-realtime/zena-realtime.toml
export ZENA_JWT_SECRET=package-test-secret-0123456789abcdef ZENA_API_KEY=package-test-api-key
"$bin" check-config --config "$conf" | tee "$scratch/check"
grep -q 'configuration OK' "$scratch/check" || fail "check-config did not say OK"
set +e
env -u ZENA_JWT_SECRET -u ZENA_API_KEY "$bin" check-config --config "$conf" --port 99999 2>"$scratch/errors"
rc=$?
set -e
cat "$scratch/errors"
[[ $rc == 2 ]] || fail "check-config without secrets exited $rc, not 2"
grep -q '3 configuration errors' "$scratch/errors" || fail "not every error was listed"

step "run from the unpacked root"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
notify=$scratch/notify.sock
# systemd's side of Type=notify: a datagram socket; what arrives is written to notify.out.
python3 - "$notify" "$scratch/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
data = s.recv(4096)
open(sys.argv[2], "wb").write(data)
PY
listener_pid=$!
for _ in $(seq 50); do [[ -S $notify ]] && break; sleep 0.1; done
[[ -S $notify ]] || fail "notify socket"
NOTIFY_SOCKET=$notify "$bin" --config "$conf" --port "$port" --threads 1 >"$scratch/server.log" 2>&1 &
server_pid=$!
wait "$listener_pid" || { cat "$scratch/server.log" >&2; fail "no datagram on NOTIFY_SOCKET"; }
listener_pid=
cat "$scratch/notify.out"; echo
grep -q '^READY=1' "$scratch/notify.out" || fail "the datagram is not READY=1"
health=$(curl -sS --max-time 5 "http://127.0.0.1:$port/healthz")
echo "/healthz: $health"
[[ $health == *'"ok"'* ]] || fail "/healthz answered $health"
grep -q "memory allocator=$allocator" "$scratch/server.log" ||
  { cat "$scratch/server.log" >&2; fail "the start log does not name $allocator"; }
kill -TERM "$server_pid"
wait "$server_pid" && rc=0 || rc=$?
server_pid=
[[ $rc == 0 ]] || { cat "$scratch/server.log" >&2; fail "exit status $rc after SIGTERM"; }
echo "PASS"
