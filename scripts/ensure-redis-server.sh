#!/usr/bin/env bash
# The integration, reliability and end-to-end tests start their own redis-server processes.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # Debian's package may start a service on 6379; the suite never uses it.
else
  echo "redis-server not found and cannot be installed here: the integration tests will be skipped" >&2
fi
