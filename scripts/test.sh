#!/usr/bin/env bash
# Install, lint, then run the whole test suite against real Redis, SSH servers and receivers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
