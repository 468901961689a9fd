#!/usr/bin/env bash
# Install, then run the whole system on this machine with simulated lab devices.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/netpulse up --lab "$@"
