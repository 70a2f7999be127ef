#!/usr/bin/env bash
# The patched pingora crates' own tests, against the patched sources: the
# offline unit tests of pingora-core (`protocols`, `apps`, the idle pool),
# pingora-http and pingora-proxy.
#
# The crates are not members of rampart's package, and cargo only tests
# workspace members, so the script copies vendor/<crate>/ into a workspace
# of its own under target/ (with `[patch.crates-io]` pointing at the
# copies, so each crate is tested with the other patched ones) and starts
# from rampart's Cargo.lock, so that shared dependencies resolve to the
# same versions and reuse rampart's build artifacts in target/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
ws=$target/vendor-tests
crates=$(grep -v '^\s*\(#\|$\)' vendor/patches/crates | awk '{print $1}')

rm -rf "$ws"
mkdir -p "$ws"
{
  echo '[workspace]'
  echo 'resolver = "2"'
  printf 'members = [%s]\n' "$(printf '"%s", ' $crates | sed 's/, $//')"
  echo '[patch.crates-io]'
  for c in $crates; do echo "$c = { path = \"$c\" }"; done
} >"$ws/Cargo.toml"
for c in $crates; do
  cp -a "vendor/$c" "$ws/$c"
  rm -f "$ws/$c/Cargo.lock"
done
cp Cargo.lock "$ws/Cargo.lock"

export CARGO_TARGET_DIR=$target
run() { echo "+ cargo test $*" >&2; cargo test --manifest-path "$ws/Cargo.toml" "$@"; }
run -p pingora-core --lib -- protocols:: apps:: connectors::idle_pool
run -p pingora-http --lib
run -p pingora-proxy --lib
echo "patched crates' tests passed"
