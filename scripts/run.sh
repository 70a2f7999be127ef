#!/usr/bin/env bash
# Builds rampart (release) and runs it on conf/rampart.toml (or the file given).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-build-deps.sh
export PATH="$HOME/.local/bin:$PATH"
exec cargo run --release -- run -c "${1:-conf/rampart.toml}"
