#!/usr/bin/env bash
# Makes sure the programs the test suite runs as real peers are present:
# chromium + chromedriver (the browser CORS test), nginx (side-by-side and
# benchmark-shaped tests), openssl (the example certificates), curl,
# redis-server (shared rate limits) and pebble (the ACME tests).
# Installs the missing ones with apt-get when run as root, without starting
# their services (nginx would take port 80: the tests start their own);
# otherwise says what to install.
set -euo pipefail

missing=""
for p in chromium:chromium chromedriver:chromium-driver nginx:nginx openssl:openssl curl:curl redis-server:redis-server pebble:pebble; do
  cmd=${p%%:*}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing="$missing ${p#*:}"
done
[ -z "$missing" ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing the test suite's peers:$missing" >&2
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
else
  # Chromium is only the browser test's, which RAMPART_SKIP_BROWSER=1 skips.
  needed=$missing
  if [ -n "${RAMPART_SKIP_BROWSER:-}" ]; then
    needed=$(echo "$missing" | tr ' ' '\n' | grep -v '^chromium' | tr '\n' ' ' || true)
  fi
  if [ -n "${needed// /}" ]; then
    echo "the test suite needs:$missing (Debian packages; run as root to have them installed," >&2
    echo "or set RAMPART_SKIP_BROWSER=1 to skip the browser test where Chromium is missing)" >&2
    exit 1
  fi
fi
