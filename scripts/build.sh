#!/usr/bin/env bash
# Configures and builds with CMake and Ninja.
#   scripts/build.sh                    release build in build/ (the binary: build/zena-realtime)
#   scripts/build.sh asan               ASan + UBSan build in build-asan/
#   scripts/build.sh tsan               TSan build of the unit tests in build-tsan/
#   scripts/build.sh fuzz               clang libFuzzer targets (ASan + UBSan) in build-fuzz/
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case $kind in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DZENA_SANITIZE=address,undefined) ;;
  tsan) dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=Debug -DZENA_SANITIZE=thread) ;;
  fuzz) dir=build-fuzz; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DZENA_FUZZ=ON
                               -DZENA_BUILD_TESTS=OFF -DZENA_SANITIZE=address,undefined) ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
if [[ $kind == tsan ]]; then
  ninja -C "$dir" zena_unit_tests
elif [[ $kind == fuzz ]]; then
  ninja -C "$dir" fuzz_targets
else
  ninja -C "$dir"
fi
