#!/usr/bin/env bash
# The deployment tests start their own PostgreSQL server (initdb + postgres on a free loopback port).
set -euo pipefail
have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  # Debian keeps the server binaries off PATH, under a versioned directory.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}
if have_postgres; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server binaries not found: installing Debian's postgresql package with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # Debian's package may start a cluster on 5432; the suite never uses it.
else
  echo "PostgreSQL server binaries not found and cannot be installed here: the deployment tests will be skipped" >&2
fi
