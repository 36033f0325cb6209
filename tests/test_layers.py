"""The layers of docs/architecture.md, enforced.

* ``lint-imports`` checks the contracts of ``.importlinter`` (packages in layers, the declared
  order of ``services``, packet modules independent of each other); a new import against the
  order, or a new cycle, fails here and so in CI.
* No module of ours imports one of our packages inside a function: such an import would hide an
  upward dependency (a cycle) from the contracts.
* The checker itself catches a cycle (a throw-away package with one).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("constants", "helpers", "common", "objects", "services", "events", "handlers")


def _lint_imports() -> str:
    exe = Path(sys.executable).with_name("lint-imports")
    if exe.exists():
        return str(exe)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed (requirements-test.txt: import-linter)")
    return found


def _run(cwd: Path, config: str | None = None) -> subprocess.CompletedProcess:
    args = [_lint_imports(), "--no-cache"]
    if config:
        args += ["--config", config]
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run(args, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    res = _run(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_the_contracts_catch_a_cycle(tmp_path):
    pkg = tmp_path / "layered"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from layered import high\n")
    (pkg / "high.py").write_text("from layered import low\n")
    (tmp_path / "contracts.ini").write_text(
        "[importlinter]\nroot_package = layered\n\n"
        "[importlinter:contract:order]\nname = order\ntype = layers\nlayers =\n"
        "    layered.high\n    layered.low\n")
    res = _run(tmp_path, "contracts.ini")
    assert res.returncode != 0, res.stdout
    assert "BROKEN" in res.stdout


def _function_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found = []

    def ours(name: str | None) -> bool:
        return bool(name) and name.split(".")[0] in PACKAGES

    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import) and any(ours(a.name) for a in inner.names):
                found.append(f"{path.relative_to(REPO)}:{inner.lineno}")
            elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and ours(inner.module):
                found.append(f"{path.relative_to(REPO)}:{inner.lineno}")
    return found


def test_no_function_level_imports_of_our_packages():
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found += _function_level_imports(path)
    assert found == [], "imports inside functions (move them to the top of the module): " + ", ".join(found)
