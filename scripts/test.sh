#!/usr/bin/env bash
# Set up (with the test requirements) and run the whole test suite:
#
#   bash scripts/test.sh [extra pytest arguments, e.g. -k reconnect -x]
#
# The exit code is pytest's: 0 only when tests ran and all passed (5, "no tests collected",
# counts as a failure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --test

echo "[test] python -m pytest -q tests $*"
exec .venv/bin/python -m pytest -q tests "$@"
