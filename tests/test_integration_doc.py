"""docs/integration.md names every Redis channel, key and HTTP endpoint of the code, each with the
components of the stacks that use it (its "Published by" / "Subscribed by" / "Used by" /
"Called by" column).

The names are read from the source: every string literal that is a Redis name of the stacks
(``peppy:``, ``ripple:``, ``api:``, ``ussr:``, ``rosu:``, ``lets:``, and this server's own
``pep:``) in the server's packages, and
every route of ``handlers/api.py`` and ``handlers/metrics.py`` plus the Bancho endpoint ``/``. A
new channel, key or endpoint without its row (or with an empty users cell) fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/integration.md"
PACKAGES = ("services", "common", "handlers", "objects", "constants", "events", "helpers")
REDIS_NAME = re.compile(r"^(?:peppy|ripple|api|ussr|rosu|lets|pep):[A-Za-z_{}:*]+$")
USERS_COLUMNS = ("Published by", "Subscribed by", "Used by", "Called by")


def normalise(name: str) -> str:
    """``peppy:sessions:{user_id}`` -> ``peppy:sessions``: the fixed part of a name."""
    return name.split("{")[0].rstrip(":*") or name


def code_redis_names() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and REDIS_NAME.match(node.value):
                    names.add(normalise(node.value))
    return names


def code_routes() -> set[str]:
    routes = {"/"}
    for module in ("api.py", "metrics.py"):
        source = (ROOT / "handlers" / module).read_text(encoding="utf-8")
        routes |= {path.replace("(.*)", "<id>") for path in re.findall(r'\(r"(/[^"]*)"', source)}
    return routes


def documented() -> dict[str, str]:
    """Every backticked name in the first cell of a row of a table with a users column ->
    that row's users cell."""
    found: dict[str, str] = {}
    column = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None:
            column = next((i for i, c in enumerate(cells) if c in USERS_COLUMNS), -1)
            continue
        if column < 0 or set(cells[0]) <= set("-") or len(cells) <= column:
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            found[name] = cells[column]
    return found


def test_the_code_has_redis_names_and_routes():
    # the scan itself must find what we know is there
    assert {"peppy:ban", "ripple:online_users", "api:mp_complete_match"} <= code_redis_names()
    assert {"/api/v1/isOnline", "/api/status/<id>", "/metrics"} <= code_routes()


def test_every_channel_and_key_is_documented_with_its_users():
    doc = {normalise(name): users for name, users in documented().items() if REDIS_NAME.match(name)}
    missing = sorted(name for name in code_redis_names() if name not in doc)
    assert not missing, f"docs/integration.md has no row for {missing}"
    empty = sorted(name for name in code_redis_names() if not doc[name].strip("— "))
    assert not empty, f"docs/integration.md names no users for {empty}"


def test_every_endpoint_is_documented_with_its_callers():
    doc = documented()
    missing = sorted(route for route in code_routes() if route not in doc)
    assert not missing, f"docs/integration.md has no row for {missing}"
    empty = sorted(route for route in code_routes() if not doc[route].strip("— "))
    assert not empty, f"docs/integration.md names no callers for {empty}"
