"""Mutation testing driver behind ``scripts/mutation.sh`` (docs/testing.md).

For each source file named on the command line (default: the ``core`` list of
``tests/mutation_map.toml``) it

1. copies the checkout's tracked and untracked-but-not-ignored files into a scratch directory
   ``.mutation/<file>/`` (so no compiled codec is copied: the codec runs interpreted there),
2. writes a ``setup.cfg`` with a ``[mutmut]`` section that mutates only that file and selects
   only the test files the map names for it,
3. runs ``python -m mutmut run`` there (mutmut 3: trampolines, forked runs, and per mutant only
   the selected tests that reached the mutated function),
4. reads mutmut's per-file results (``mutants/<file>.meta``), matches survivors against the
   committed list of equivalent mutants ``tests/mutation_equivalents.toml``, and prints the
   score of the file and its survivors (file, line, change).

The last line printed is ``mutation score: K killed of N (P%)`` over all files, where N counts
every mutant except those listed as equivalent (timeouts count as killed; "no tests" counts as
survived). Survivors and the equivalents that matched are written to
``.mutation/results.txt`` (ignored by git).

Exit status: 0 when every file was measured and reached ``--min`` percent (default 0, i.e.
report only), 1 when one did not, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP_FILE = ROOT / "tests" / "mutation_map.toml"
EQUIVALENTS_FILE = ROOT / "tests" / "mutation_equivalents.toml"
WORK = ROOT / ".mutation"
RESULTS = WORK / "results.txt"

# mutmut 3's exit codes of a mutant run (mutmut/stats.py) folded into three outcomes
KILLED_CODES = {1, 3, 24, -24, 152, 255, 36, -9, -11}  # failed, errored, timed out, crashed
UNTESTED_CODES = {5, 33}  # no test reached the mutated function
SKIPPED_CODES = {34}


@dataclass
class Survivor:
    """One mutant that no selected test failed on."""

    name: str  # mutmut's key, e.g. services.chat.x_send_message__mutmut_12
    line: int  # 1-based line in the original file (0 when not found)
    before: str  # the original line, stripped
    after: str  # the mutated line, stripped
    untested: bool  # no selected test reached the function at all
    equivalent: str | None = None  # reason from the equivalents list


@dataclass
class FileScore:
    """The result of one source file."""

    path: str
    killed: int = 0
    total: int = 0
    survivors: list[Survivor] = field(default_factory=list)
    equivalents: list[Survivor] = field(default_factory=list)
    seconds: float = 0.0
    unchecked: int = 0  # mutants an interrupted run did not get to (--report only)

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def load_map() -> dict:
    """``tests/mutation_map.toml``: ``core`` (list of paths), ``files`` (path -> pytest
    arguments selecting its tests), optional ``prepare`` (path -> a key of PREPARE) and
    ``env`` (variables for the test runs, e.g. fewer property-test examples)."""
    with MAP_FILE.open("rb") as f:
        data = tomllib.load(f)
    if "files" not in data or "core" not in data:
        raise SystemExit(f"{MAP_FILE.relative_to(ROOT)}: needs [files] and core")
    return data


def load_equivalents() -> list[dict]:
    """``tests/mutation_equivalents.toml``: ``[[equivalent]]`` tables with file, before, after
    (or after_pattern, a regular expression) and reason; before/after are the stripped original
    and mutated lines."""
    if not EQUIVALENTS_FILE.exists():
        return []
    with EQUIVALENTS_FILE.open("rb") as f:
        entries = tomllib.load(f).get("equivalent", [])
    for entry in entries:
        missing = {"file", "before", "reason"} - entry.keys()
        if "after" not in entry and "after_pattern" not in entry:
            missing.add("after")
        if missing or not entry["reason"].strip():
            raise SystemExit(f"{EQUIVALENTS_FILE.relative_to(ROOT)}: entry {entry} lacks {missing or 'a reason'}")
    return entries


def copy_checkout(dest: Path) -> None:
    """Copy the files git knows or would know (tracked + untracked not ignored) into ``dest``."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = ROOT / rel
        if not src.is_file() or src.is_symlink():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


CYTHON_DECORATOR = re.compile(r"^\s*@cython\.(cfunc|ccall|cclass|final|inline|exceptval\(.*\)|locals\(.*\))\s*$")


def strip_cython_decorators(path: Path) -> None:
    """Remove Cython's compile-time decorators (no-ops when interpreted) from ``path``.

    mutmut does not mutate decorated functions; without these lines the interpreted codec
    behaves the same and its C-level helpers (writer, reader) are mutated too.
    """
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not CYTHON_DECORATOR.match(line)))


PREPARE = {"strip-cython-decorators": strip_cython_decorators}


def write_config(dest: Path, source: str, tests: list[str]) -> None:
    """The ``[mutmut]`` section for one source file (setup.cfg of the scratch copy)."""
    packages = sorted(p.name for p in dest.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    also = [p for p in packages if p != "tests"] + [p.name for p in dest.glob("*.py")] + ["docs", "scripts", "config.ini"]
    lines = [
        "[mutmut]",
        f"source_paths = {source}",
        "also_copy =\n    " + "\n    ".join(also),
        "pytest_add_cli_args_test_selection =\n    " + "\n    ".join(tests),
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\n    -x",
        "use_git_change_detection = false",
        "track_dependencies = false",
        "timeout_multiplier = 10.0",
    ]
    (dest / "setup.cfg").write_text("\n".join(lines) + "\n")


def function_lines(path: Path) -> dict[str, int]:
    """mutmut's mangled function names (``x_f``, ``xǁClassǁf``) -> line of the ``def``."""
    tree = ast.parse(path.read_text())
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"x\u01c1{node.name}\u01c1{item.name}"] = item.lineno
    return found


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = get_diff_for_mutant(name)
    except Exception as exc:  # a diff is only for the report
        out[name] = f"(no diff: {exc})"
print(json.dumps(out))
"""


def diffs(dest: Path, names: list[str]) -> dict[str, str]:
    """mutmut's diff of each mutant in ``names``, read in one process."""
    if not names:
        return {}
    proc = subprocess.run([sys.executable, "-c", _DIFFS, *names], cwd=dest, capture_output=True, text=True)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {}


def describe(diff: str, name: str, original: list[str], defs: dict[str, int]) -> tuple[int, str, str]:
    """(line, original line, mutated line) of mutant ``name`` from its diff."""
    removed = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    before = removed[0].strip() if removed else ""
    after = " / ".join(a.strip() for a in added) if added else "(line deleted)"
    func = name.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    start = defs.get(func, 1)
    line = 0
    if before:
        for i in range(max(start - 1, 0), len(original)):
            if original[i].strip() == before:
                line = i + 1
                break
    return line, before, after


def _rerun_survivors(dest: Path, meta_path: Path, env: dict[str, str] | None) -> None:
    """Run again only the mutants that survived the last run of this scratch copy, against the
    checkout's current tests (copied in; mutmut re-collects which test reaches what). Tests only
    ever get stronger between the runs, so the killed ones stay killed."""
    codes = json.loads(meta_path.read_text())["exit_code_by_key"]
    names = [n for n, c in codes.items() if c in (0, 5, 33)]
    if not names:
        return
    for target in (dest / "tests", dest / "mutants" / "tests"):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / "tests", target, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    with (dest / "mutmut.log").open("a") as out:
        subprocess.run([sys.executable, "-m", "mutmut", "run", *names], cwd=dest, stdout=out,
                       stderr=subprocess.STDOUT, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})


def run_file(source: str, tests: list[str], equivalents: list[dict], children: int,
             prepare: str | None = None, env: dict[str, str] | None = None, report_only: bool = False,
             survivors_only: bool = False) -> FileScore:
    """Mutate one file in its own scratch copy and collect its score (``report_only``: only
    read the results a previous, possibly interrupted, run left in the scratch copy;
    ``survivors_only``: run again only that run's survivors, against the current tests)."""
    started = time.monotonic()
    dest = WORK / source.replace("/", "_").removesuffix(".py")
    log = dest / "mutmut.log"
    meta_path = dest / "mutants" / (source + ".meta")
    if survivors_only:
        if not meta_path.exists():
            raise RuntimeError(f"no earlier results of {source} in {dest}")
        _rerun_survivors(dest, meta_path, env)
    elif not report_only:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        copy_checkout(dest)
        if prepare:
            PREPARE[prepare](dest / source)
        write_config(dest, source, tests)
        with log.open("w") as out:
            proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
                                  cwd=dest, stdout=out, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})
        if proc.returncode != 0 or not meta_path.exists():
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"mutmut failed on {source} (exit {proc.returncode}); see {log}:\n" + "\n".join(tail))
    elif not meta_path.exists():
        raise RuntimeError(f"no results of {source} in {dest}")
    codes: dict[str, int | None] = json.loads(meta_path.read_text())["exit_code_by_key"]
    original = (ROOT / source).read_text().splitlines()
    defs = function_lines(ROOT / source)
    score = FileScore(source)
    ordered = sorted(codes.items(), key=lambda kv: _natural(kv[0]))
    score.unchecked = sum(1 for _, c in ordered if c is None)
    ordered = [(n, c) for n, c in ordered if c is not None]  # an interrupted run (report_only)
    texts = diffs(dest, [n for n, c in ordered if c not in KILLED_CODES and c not in SKIPPED_CODES])
    for name, code in ordered:
        if code in SKIPPED_CODES:
            continue
        if code in KILLED_CODES:
            score.killed += 1
            score.total += 1
            continue
        line, before, after = describe(texts.get(name, ""), name, original, defs)
        survivor = Survivor(name, line, before, after, untested=code in UNTESTED_CODES)
        for entry in equivalents:
            if entry["file"] == source and entry["before"].strip() == before and _same_change(entry, after):
                survivor.equivalent = entry["reason"]
                break
        if survivor.equivalent:
            score.equivalents.append(survivor)
        else:
            score.total += 1
            score.survivors.append(survivor)
    score.seconds = time.monotonic() - started
    return score


def _same_change(entry: dict, after: str) -> bool:
    """Whether the mutated line ``after`` is the entry's ``after`` (exact) or matches its
    ``after_pattern`` (a regular expression over the whole line, for a family of mutants such
    as every other number in a buffer-size hint)."""
    if "after_pattern" in entry:
        return re.fullmatch(entry["after_pattern"], after) is not None
    return entry["after"].strip() == after


def _natural(key: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="source files (default: the core set of tests/mutation_map.toml)")
    parser.add_argument("--min", type=float, default=0.0, help="fail (exit 1) when a file scores below this percent")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants run in parallel")
    parser.add_argument("--survivors", action="store_true",
                        help="run again only the survivors of the last run, against the current tests")
    parser.add_argument("--report", action="store_true",
                        help="do not run: report the results a previous (possibly interrupted) run left in .mutation/")
    args = parser.parse_args(argv)
    mapping = load_map()
    equivalents = load_equivalents()
    paths = args.paths or list(mapping["core"])
    for path in paths:
        if path not in mapping["files"]:
            print(f"mutation: {path} has no entry in tests/mutation_map.toml [files]", file=sys.stderr)
            return 2
    WORK.mkdir(exist_ok=True)
    report: list[str] = []
    scores: list[FileScore] = []
    failed: list[str] = []
    for path in paths:
        print(f"== {path}: tests {' '.join(mapping['files'][path])}", flush=True)
        try:
            score = run_file(path, mapping["files"][path], equivalents, args.children,
                             mapping.get("prepare", {}).get(path), mapping.get("env", {}), args.report,
                             args.survivors)
        except RuntimeError as exc:  # report it and go on with the next file
            print(f"{path}: NOT MEASURED: {exc}", flush=True)
            report.append(f"{path}: NOT MEASURED: {exc}")
            failed.append(path)
            continue
        scores.append(score)
        unchecked = f", {score.unchecked} NOT CHECKED (interrupted run)" if score.unchecked else ""
        print(f"{path}: {score.killed} killed of {score.total} ({score.percent:.1f}%), "
              f"{len(score.equivalents)} equivalent{unchecked}, {score.seconds:.0f} s", flush=True)
        for s in score.survivors:
            what = "no test reached it" if s.untested else "survived"
            line = f"  {path}:{s.line}: {what}: {s.before!r} -> {s.after!r}  [{s.name}]"
            print(line)
            report.append(line)
        for s in score.equivalents:
            report.append(f"  {path}:{s.line}: equivalent ({s.equivalent}): {s.before!r} -> {s.after!r}  [{s.name}]")
    killed = sum(s.killed for s in scores)
    total = sum(s.total for s in scores)
    percent = 100.0 * killed / total if total else 100.0
    summary = [f"{s.path}: {s.killed}/{s.total} ({s.percent:.1f}%)" for s in scores]
    RESULTS.write_text("\n".join(summary + [""] + report) + "\n")
    print(f"survivors and equivalents: {RESULTS.relative_to(ROOT)}")
    print(f"mutation score: {killed} killed of {total} ({percent:.1f}%)")
    if failed:
        print(f"not measured: {' '.join(failed)}")
    return 1 if failed or any(s.percent < args.min for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
