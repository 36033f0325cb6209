#!/usr/bin/env bash
# Mutation testing of the core (docs/testing.md):
#
#   bash scripts/mutation.sh                      # the core set of tests/mutation_map.toml
#   bash scripts/mutation.sh services/chat.py     # named files (each must be in the map)
#   bash scripts/mutation.sh --min 90             # exit 1 when a file scores below 90 %
#   bash scripts/mutation.sh --report FILE        # results of the last (maybe interrupted) run
#
# Each file is mutated by mutmut in its own scratch copy under .mutation/ (ignored by git), and
# each mutant runs against the tests the map names for that file. Per file it prints the score
# and the survivors (file, line, change); the last line is
# "mutation score: K killed of N (P%)". Survivors are also written to .mutation/results.txt.
# Mutants listed in tests/mutation_equivalents.toml (with the reason they cannot change
# behaviour) are reported as equivalent and left out of N.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY=.venv/bin/python
[ -x "$PY" ] || PY="$(command -v python3)"
if ! "$PY" -c "import mutmut, pytest, chio" 2>/dev/null; then
    echo "[mutation] installing requirements-mutation.txt"
    "$PY" -m pip install -q -r requirements-mutation.txt
fi
exec "$PY" scripts/mutation.py "$@"
