"""No module-level mutable registries (docs/architecture.md "Background work",
docs/decisions.md "Module-level state"): everything long-lived that changes at run time
belongs to an object reachable from the ``State``.

* The packet table of :mod:`events` is one read-only mapping built in one place, with one
  handler for every packet module.
* No function of ours writes to a module-level container (``NAME[k] = v``, ``NAME.append(...)``,
  ``global NAME``, ``module.NAME[k] = v`` ...): a table filled by decorators or by calls at
  run time would be such a write. Lookup tables built once at import stay plain literals.
* The poll-path metric counts belong to the state (``state.poll_counters``).
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import events
from constants.packets import ClientPacket

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("constants", "helpers", "common", "objects", "services", "events", "handlers")
MUTATORS = {"append", "extend", "insert", "add", "update", "pop", "popitem", "clear", "setdefault",
            "remove", "discard", "__setitem__", "__delitem__", "appendleft", "extendleft", "sort", "reverse"}
#: module -> names whose writes are known and handled elsewhere, with the reason
ALLOWED: dict[str, set[str]] = {}


def test_the_packet_table_is_read_only_and_complete():
    assert isinstance(events.HANDLERS, types.MappingProxyType)
    with pytest.raises(TypeError):
        events.HANDLERS[ClientPacket.PING] = lambda *a: None  # type: ignore[index]
    assert isinstance(events.RESTRICTED_ALLOWED, frozenset)
    assert all(isinstance(packet_id, ClientPacket) for packet_id in events.HANDLERS)
    assert events.RESTRICTED_ALLOWED <= set(events.HANDLERS)
    # every packet module has exactly one entry, and every entry is a packet module's handle
    modules = sorted(p.stem for p in (REPO / "events").glob("*.py") if p.stem != "__init__")
    owners = sorted(handler.__module__.split(".", 1)[1] for handler in events.HANDLERS.values())
    assert owners == modules
    assert all(handler.__name__ == "handle" for handler in events.HANDLERS.values())


def _module_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names bound at module level to a container or anything else; names of our modules)."""
    names: set[str] = set()
    ours: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            ours |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            ours |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in PACKAGES}
    return names, ours


def _base(node: ast.AST, names: set[str], ours: set[str], local: set[str]) -> str | None:
    """The module-level name a write target starts from (``X`` or ``mod.X``), else None."""
    if isinstance(node, ast.Name) and node.id in names and node.id not in local:
        return node.id
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ours
            and node.value.id not in local):
        return f"{node.value.id}.{node.attr}"
    return None


def _writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names, ours = _module_names(tree)
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        args = func.args
        local = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        for inner in ast.walk(func):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                local.add(inner.id)
        for inner in ast.walk(func):
            name = None
            if isinstance(inner, ast.Global):
                found += [f"global {n}" for n in inner.names]
                continue
            if isinstance(inner, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = inner.targets if isinstance(inner, (ast.Assign, ast.Delete)) else [inner.target]
                for target in targets:
                    if isinstance(target, ast.Subscript):
                        name = _base(target.value, names, ours, local)
                    elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id in ours and target.value.id not in local:
                        name = f"{target.value.id}.{target.attr}"  # mod.X = ... rebinds another module's global
                    if name:
                        found.append(name)
            elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr in MUTATORS:
                name = _base(inner.func.value, names, ours, local)
                if name:
                    found.append(name)
    return found


def test_no_function_writes_to_module_level_state():
    problems = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            allowed = ALLOWED.get(rel, set())
            for name in _writes(path):
                if name.removeprefix("global ") not in allowed:
                    problems.append(f"{rel}: {name}")
    assert problems == [], "module-level state written at run time (give it an owner on the State): " + ", ".join(problems)


def test_the_scanner_finds_a_registry(tmp_path):
    path = tmp_path / "registry.py"
    path.write_text("TABLE = {}\nSEEN = []\nCOUNT = 0\nfrom helpers import metrics\n\n"
                    "def register(key, value):\n    TABLE[key] = value\n\n"
                    "def see(x):\n    SEEN.append(x)\n\n"
                    "def bump():\n    global COUNT\n    COUNT += 1\n\n"
                    "def poke():\n    metrics.LOGIN_OUTCOMES[0] = 'x'\n\n"
                    "def fine(TABLE):\n    TABLE['k'] = 1\n    local = []\n    local.append(1)\n")
    assert sorted(_writes(path)) == ["SEEN", "TABLE", "global COUNT", "metrics.LOGIN_OUTCOMES"]


def test_poll_counters_belong_to_the_state():
    from helpers import metrics
    from helpers.config import load
    from objects.state import State
    from tests.fakes import FakeDatabase, FakeRedis

    cfg = load(None, environ={})
    one, two = State(cfg, FakeDatabase(), FakeRedis()), State(cfg, FakeDatabase(), FakeRedis())
    try:
        assert isinstance(one.poll_counters, metrics.PollCounters) and one.poll_counters is not two.poll_counters
        one.poll_counters.count_request("poll")
        assert two.poll_counters.requests == {} and one.poll_counters.requests == {"poll": 1}
        assert not any(isinstance(v, (dict, list)) for k, v in vars(metrics).items()
                       if k.startswith("_") and not k.startswith("__"))
    finally:
        for state in (one, two):
            state.cpu_pool.shutdown(wait=False)
            state.io_pool.shutdown(wait=False)
