#!/usr/bin/env bash
# Every test, as CI runs it:
#   1. the release build: unit tests (GoogleTest), the SDKs' own tests (npm test), and end-to-end
#      tests (the real binary driven by Node's `ws`, Python's `websockets`, both SDKs, headless
#      Chromium, with a real redis-server) and the RFC 6455/7692 conformance suite, through CTest;
#   2. lint: clang-format and clang-tidy;
#   3. the same unit and end-to-end tests against an ASan + UBSan build;
#   4. each libFuzzer target (fuzz/) for a few seconds, built with clang under ASan + UBSan;
#   5. the unit tests under TSan (the hub set is where threads meet).
# Installs what is missing first (Debian packages, npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

ctest_prefix=()
total_passed=0
total_failed=0
run_ctest() {  # run_ctest LABEL BUILD_DIR [ctest args...]
  local label=$1 dir=$2 log
  shift 2
  log=$(mktemp)
  echo "== $label"
  local status=0
  "${ctest_prefix[@]}" ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "$@" 2>&1 | tee "$log" || status=$?
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  rm -f "$log"
  if [[ -z $line ]]; then
    echo "$label: ctest ran no test" >&2
    exit 1
  fi
  local failed=${line#*tests passed, }; failed=${failed%% tests failed*}
  local count=${line##*out of }
  total_passed=$((total_passed + count - failed))
  total_failed=$((total_failed + failed))
  if ((status != 0 || failed != 0)); then
    echo "$label: $failed failed" >&2
    echo "summary: $total_passed passed, $total_failed failed"
    exit 1
  fi
}

scripts/build.sh release
# The TypeScript SDKs (clients/js, clients/node): built here, once, because the e2e tests and
# the examples import their dist/; their own tests run as CTest tests (label sdk).
for sdk in clients/js clients/node; do
  (cd "$sdk" && npm run build --silent)
done
run_ctest "release: unit + sdk + e2e" build

echo "== lint"
scripts/lint.sh

scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest "asan+ubsan: unit + e2e" build-asan -LE sdk

# libFuzzer targets (clang, ASan + UBSan): a few seconds each over the corpus in fuzz/corpus/.
scripts/build.sh fuzz
run_ctest "fuzz: short runs" build-fuzz -L fuzz

scripts/build.sh tsan
# TSan's shadow memory needs the classic address layout: setarch -R turns off address
# randomization for this run only (kernels with high mmap entropy otherwise fail TSan at start).
ctest_prefix=(setarch "$(uname -m)" -R)
TSAN_OPTIONS=halt_on_error=1 run_ctest "tsan: unit" build-tsan -L '^unit$'

echo
echo "summary: $total_passed passed, $total_failed failed"
