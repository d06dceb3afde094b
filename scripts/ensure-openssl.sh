#!/usr/bin/env bash
# The TLS tests make a throwaway CA and certificates with the openssl command.
set -euo pipefail
if command -v openssl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "openssl not found: installing it with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
else
  echo "openssl not found and cannot be installed here: the TLS tests will be skipped" >&2
fi
