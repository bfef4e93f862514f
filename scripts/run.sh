#!/usr/bin/env bash
# The newcomer's first command: install what is missing, build, and run the server with its
# embedded defaults (dev mode: it prints an API key, a token and the commands to try).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
exec build/zena-realtime "$@"
