#!/usr/bin/env bash
# Make the virtualenv VENV with PYTHON and put uv inside it: nothing is installed outside a venv, so a
# stock Debian/Ubuntu /usr/bin/python3 (PEP 668, "externally-managed-environment") works as well as
# a pyenv or python.org one. Debian ships the venv module apart (python3.X-venv): as root it is
# installed with apt-get when missing.
#
# Usage: scripts/make-venv.sh PYTHON VENV
set -euo pipefail
PYTHON=$1
VENV=$2

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "$PYTHON not found: set PYTHON to a Python >= 3.10 (make PYTHON=/usr/bin/python3 ...)" >&2
  exit 1
fi

has_venv() { "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! has_venv; then
    package="python$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "$PYTHON has no venv module: installing Debian's $package with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    else
      echo "$PYTHON has no venv module: install it (sudo apt-get install $package) and run make again" >&2
      exit 1
    fi
  fi
  "$PYTHON" -m venv "$VENV"
fi
# uv installs the project and its locked dependencies; inside the venv, PEP 668 does not apply.
if ! "$VENV/bin/python" -m uv --version >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
fi
