#!/usr/bin/env bash
# Install what NetPulse needs on a fresh Debian machine: redis-server, redis-sentinel (Redis
# high availability; the tests run real sentinels), openssh-server, procps (pkill, used by the
# tests), sudo and iproute2 (the sudo and jump-host tests), chromium (the dashboard's browser
# tests, driven by Playwright) and Python with venv (Debian packages, only when missing),
# then a virtual environment with the project and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v pkill >/dev/null 2>&1 || need+=(procps)
command -v sudo >/dev/null 2>&1 || need+=(sudo)        # the paramiko driver's sudo tests
command -v ip >/dev/null 2>&1 || need+=(iproute2)      # network namespaces (jump-host tests)
[ -x /usr/bin/chromium ] || need+=(chromium)           # the dashboard's browser tests
if ! command -v "$PY" >/dev/null 2>&1; then
  need+=(python3 python3-venv)
elif [ ! -x .venv/bin/python ] && ! "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; then
  need+=(python3-venv)  # Debian's python3 makes venvs only with this package
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"
