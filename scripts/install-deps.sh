#!/usr/bin/env bash
# Installs what building and testing zena-realtime need, from Debian's packages and the npm
# registry only. Safe to run again: it installs only what is missing.
#   scripts/install-deps.sh           build and run dependencies
#   scripts/install-deps.sh --test    also what the tests use (Python websockets, clang tools, npm ci)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev      # Beast (HTTP) and Asio
  zlib1g-dev            # permessage-deflate: compress a broadcast once, inflate client messages
  libsimdjson-dev       # validating JSON parser for everything from the network
  libssl-dev            # HMAC for JWT, constant-time compare, CSPRNG
  libspdlog-dev         # logging
  libtomlplusplus-dev   # the configuration file
  libhiredis-dev        # Redis: publishes in, client events out (blocking client on its own threads)
  liburing-dev          # io_uring: an event-loop turn's writes handed to the kernel 64 per system call
  libjemalloc-dev       # the server binary's malloc (docs/decisions.md, "Memory allocator")
  libgtest-dev          # unit tests (built with the project)
  libbenchmark-dev      # bench/: micro benchmarks of the hub (Google Benchmark)
)
if [[ ${1:-} == --test ]]; then
  packages+=(
    python3 python3-websockets  # the Python client tests (Debian's interpreter)
    redis-server                # the real Redis the e2e tests start
    openssl                     # the TLS test makes its self-signed certificates
    chromium                    # the browser test (driven by playwright-core from npm)
    clang clang-format clang-tidy libclang-rt-14-dev  # lint and sanitizers
    nginx                       # tests/e2e/nginx.test.mjs: deploy/nginx/zena-realtime.conf in front of two nodes
    prometheus                  # promtool: deploy/prometheus/alerts.yml is checked (CTest deploy.promtool)
    dpkg-dev curl               # tests/package/deb_test.sh: cpack's dpkg-shlibdeps, and /healthz of the unpacked binary
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (>= 20, with npm) runs the e2e tests. Machines that already have one (the CI image ships
# Node 20 with its own npm) keep it; Debian's `npm` package would conflict with that build.
if [[ ${1:-} == --test ]] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ${1:-} == --test ]]; then
  for dir in tests/e2e clients/js clients/node examples bench/peers; do
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  done
fi
