#!/usr/bin/env bash
# `make test-valkey` runs the integration and topology tests against valkey-server (and valkey-cli
# for the cluster fixture). Debian 12 has Valkey only in bookworm-backports: this adds that suite
# of the same Debian archive in a sources file of its own, installs just these two packages from
# it (the backports suite is never preferred for anything else), and leaves other sources alone.
set -euo pipefail
if command -v valkey-server >/dev/null 2>&1 && command -v valkey-cli >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "valkey-server not found and cannot be installed here: make test-valkey needs it" >&2
  exit 1
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "valkey-server not found: this script knows Debian 12 (bookworm) only, not ${PRETTY_NAME:-?}" >&2
  exit 1
fi
echo "valkey-server not found: installing it from bookworm-backports with apt-get" >&2
cat >/etc/apt/sources.list.d/redis-xcom-bookworm-backports.sources <<'SOURCES'
# Added by redis-xcom's scripts/ensure-valkey-server.sh for valkey-server (make test-valkey).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# The package's postinst would start a valkey-server service on 6379, where the machine's own Redis
# may listen; the suite starts its own servers on free ports. A policy-rc.d that refuses every start
# stops it, unless one is there already (containers usually have one).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ -n "$own_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
# pkg/suite takes these two from backports and their dependencies from bookworm as usual.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  valkey-server/bookworm-backports valkey-tools/bookworm-backports >/dev/null
# Should a service have started all the same (an init without policy-rc.d), stop it by its own PID.
for pidfile in /run/valkey/valkey-server.pid /var/run/valkey/valkey-server.pid; do
  if [ -s "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
  fi
done
# And never at boot either, where it would race the machine's Redis for 6379.
if command -v update-rc.d >/dev/null 2>&1; then
  update-rc.d valkey-server disable >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now valkey-server.service >/dev/null 2>&1 || true
fi
valkey-server --version >&2
