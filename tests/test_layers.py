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
import re
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


# ---------------------------------------------------------------------------------------------
# docs/architecture.md against .importlinter and the import graph
# ---------------------------------------------------------------------------------------------
ARCHITECTURE = REPO / "docs" / "architecture.md"


def _contract_layers(name: str) -> list[str]:
    """The ``layers`` of contract ``name`` in .importlinter, one string per layer with its
    siblings joined by `` | `` in the file's order."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(REPO / ".importlinter", encoding="utf-8")
    raw = parser[f"importlinter:contract:{name}"]["layers"]
    return [" | ".join(part.strip() for part in line.split("|")) for line in raw.splitlines() if line.strip()]


def _layers_block() -> list[str]:
    """The lines of the code block of the "Layers" section of docs/architecture.md."""
    text = ARCHITECTURE.read_text("utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].splitlines()[1:]


def test_the_layers_block_of_the_architecture_doc_is_the_contracts():
    lines = [line for line in _layers_block() if line.strip()]
    packages = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert packages == _contract_layers("packages")
    # the services order: the indented lines under ``services``, first column
    services = [" | ".join(p.strip() for p in line.strip().split("  ")[0].split("|"))
                for line in lines if line.startswith("                ")]
    assert services == _contract_layers("services")
    handlers = next(line for line in lines if line.startswith("handlers "))
    inner = handlers[handlers.index("(") + 1:handlers.index(")")]
    assert [" | ".join(p.strip() for p in layer.split("|")) for layer in inner.split(">")] == _contract_layers("handlers")


def _graph():
    import grimp

    return grimp.build_graph(*PACKAGES, include_external_packages=False, exclude_type_checking_imports=True,
                             cache_dir=None)


def _row_modules(cell: str, modules: set[str]) -> set[str]:
    """The modules of ours a first cell names: `pkg/mod.py`, `pkg/` or `pkg/sub/` (with every
    module under it), `events/<packet>.py` (every packet module)."""
    found: set[str] = set()
    for path in cell.split("`")[1::2]:
        if path == "events/<packet>.py":
            found |= {m for m in modules if m.startswith("events.")}
        elif path.endswith("/"):
            dotted = path.rstrip("/").replace("/", ".")
            found |= {m for m in modules if m == dotted or m.startswith(dotted + ".")}
        elif path.endswith(".py"):
            dotted = path[:-3].replace("/", ".").removesuffix(".__init__")
            found |= {dotted} & modules
    return found


def _unit(imported: str, row_package: str) -> str:
    """How the doc names an imported module: its package, or, inside the row's own package, the
    module (or subpackage) right below the package."""
    parts = imported.split(".")
    return parts[1] if parts[0] == row_package and len(parts) > 1 else parts[0]


def test_the_ownership_table_of_the_architecture_doc_is_the_import_graph():
    """Each row of "Who owns what" names, in its last column, exactly what its modules import
    of ours: other packages by name, modules of the same package by their name (a package's
    own ``__init__`` as the package name; "every packet module" for the packet table). Every
    module of ours is in some row."""
    graph = _graph()
    modules = set(graph.modules)
    text = ARCHITECTURE.read_text("utf-8")
    table = text.split("## Who owns what", 1)[1].split("\n## ", 1)[0]
    covered: set[str] = set()
    problems = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) < 3:
            continue
        first, last = cells[0], cells[-1]
        rows = _row_modules(first, modules)
        if not rows:
            if "pep.py" not in first:
                problems.append(f"{first}: names no module of ours")
            continue
        covered |= rows
        package = next(iter(rows)).split(".")[0]
        actual = {_unit(m, package) for row in rows for m in graph.find_modules_directly_imported_by(row)
                  if m not in rows}
        vocabulary = set(PACKAGES) | {_unit(m, package) for m in modules if m.startswith(package + ".")}
        # ``pkg.mod`` names a module of the row's own package as ``mod``
        words = {w.split(".")[1] if w.startswith(package + ".") else w.split(".")[0]
                 for w in re.findall(r"[a-z_][a-z_0-9]*(?:\.[a-z_][a-z_0-9]*)?", last.replace("`", " "))}
        documented = words & vocabulary
        if "every packet module" in last:
            documented |= {_unit(m, package) for m in modules if m.startswith("events.")}
        if documented != actual:
            problems.append(f"{first}: the doc says {sorted(documented)}, the code imports {sorted(actual)}")
    missing = sorted(m for m in modules - covered
                     if m not in PACKAGES or graph.find_modules_directly_imported_by(m))
    assert not problems, "\n".join(problems)
    assert not missing, f"modules in no row of docs/architecture.md: {missing}"
