#!/usr/bin/env bash
# clang-format (the whole tree must be formatted) and clang-tidy (.clang-tidy's checks, warnings
# are errors) over every source file. Needs a configured build/ for compile_commands.json. (The
# layers' check, scripts/check_layers.py, is the CTest test `layers`.)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/unit/*.cpp' 'tests/unit/*.hpp' 'tests/contract/*.cpp' 'tests/contract/*.hpp')

clang-format --dry-run --Werror "${sources[@]}"
echo "clang-format: ${#sources[@]} files clean"

# gcc's precompiled headers are not readable by clang: give clang-tidy the commands without them.
mkdir -p build/tidy
/usr/bin/python3 - <<'PY'
import json, re
commands = json.load(open("build/compile_commands.json"))
for c in commands:
    c["command"] = re.sub(r"-include \S+cmake_pch\.hxx|-Winvalid-pch", "", c["command"])
json.dump(commands, open("build/tidy/compile_commands.json", "w"))
PY
mapfile -t tidy < <(git ls-files 'src/*.cpp' | grep -v 'src/ws/asio_impl.cpp')
# xargs exits non-zero when any clang-tidy run found a problem.
if ! printf '%s\n' "${tidy[@]}" | xargs -P "$(nproc)" -n 1 clang-tidy -p build/tidy --quiet >build/tidy/report.txt 2>&1; then
  grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' build/tidy/report.txt
  echo "clang-tidy: problems found" >&2
  exit 1
fi
echo "clang-tidy: ${#tidy[@]} files clean"
