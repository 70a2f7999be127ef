#!/usr/bin/env bash
# Makes sure the tools pingora's build needs are present: a C compiler and
# cmake (pingora-core builds zlib-ng with cmake). Installs cmake with apt-get
# when possible, otherwise with pip (into the user's site, on PATH below).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have cc && ! have gcc; then
  if have apt-get; then
    ${SUDO:-} apt-get update -qq && ${SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential
  else
    echo "a C compiler (gcc) is required" >&2; exit 1
  fi
fi

if ! have cmake; then
  echo "cmake not found: installing it" >&2
  if have apt-get && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
  elif have pip3 || have pip; then
    "$(command -v pip3 || command -v pip)" install --user --quiet cmake
  else
    echo "install cmake (apt-get install cmake, or pip install cmake)" >&2; exit 1
  fi
fi
