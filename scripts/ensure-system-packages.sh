#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, when they are missing: PostgreSQL (storage tests start
# a throwaway server), Chromium (the dashboard is checked in a headless browser) and docker-compose (the
# compose file is checked with `docker-compose config -q`; no Docker engine is needed for that).
# Needs root (as on CI); elsewhere it says what to install and lets the tests report the gap.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: please install the Debian packages: ${missing[*]} (the tests that need them will fail)" >&2
fi
