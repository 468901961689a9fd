#!/usr/bin/env bash
# Install, lint (ruff, import contracts, mypy), then run the whole test suite against real
# Redis, SSH servers and receivers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache        # the layering contracts in pyproject.toml
.venv/bin/python -m mypy                 # the types, as configured in pyproject.toml
exec .venv/bin/python -m pytest "$@"
