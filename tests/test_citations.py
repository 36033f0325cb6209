"""Every citation of a documentation section in the repository resolves, and nothing points outside it.

A citation is ``docs/<page>.md §<section>``, optionally followed by more sections of the same
page (``docs/protocol.md §4.6, §7.6``, ``§8.3/§8.6``, ``§2.3 and §2.4``) and by ranges
(``§7.2–7.6``). ``<section>`` is a heading number (``1``, ``1.2``, ``10.4``) or the letter of an
appendix (``§A``). A citation resolves when ``docs/<page>.md`` exists and has a Markdown heading
that starts with that number (``## 1.`` / ``### 1.2 ...``) or ``Appendix A``. Also checked:

* ``helpers/codec.py`` cites docs/protocol.md as ``section 2.1`` / ``sections 4.6, 9.2``;
* the page names protocol, gamelogic, schema, integration and design (with the ``.md`` suffix)
  never appear without the ``docs/`` folder: pages of that name outside ``docs/`` are not in the
  repository;
* no tracked file names a path outside the repository (a sibling folder of the checkout) or an
  absolute path of the machine the project was written on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = r"(?:\d+(?:\.\d+)*|A)"
SECTION = rf"§\s?(?P<first>{NUM})(?:\s?[–-]\s?§?(?P<last>{NUM}))?"
# a page, then (across a line break and a comment marker, if need be) its first section
CITATION = re.compile(r"docs/(?P<page>[\w-]+)\.md")
TAIL = re.compile(r"(?:[ \t]|\n[ \t]*(?:#[ \t]*)?)?§[^\n]*(?:\n[^\n]*)?")
# a further section of the same page, possibly after a parenthetical remark on the previous one:
# "docs/integration.md §1 ("ban"), §2 (the loop-back)"
MORE = re.compile(rf"^(?:\s*\([^()\n]*\))?(?:\s*(?:,|/|and|or|;)?\s*"
                  rf"{SECTION.replace('?P<first>', '?P<f>').replace('?P<last>', '?P<l>')})")
FOREIGN_PAGE = re.compile(r"(?<![\w/.-])(?:protocol|gamelogic|schema|integration|design)\.md\b")
CODEC_SECTION = re.compile(rf"\bsections? ((?:\d+(?:\.\d+)+|\d+)(?:(?:,| and) \d+(?:\.\d+)*)*)")
TEXT_SUFFIXES = (".py", ".pyx", ".pxd", ".md", ".sh", ".ini", ".txt", ".toml", ".cfg", ".service",
                 ".conf", ".json", ".yml", ".yaml", "")


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        names = [n for n in out.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        names = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "__pycache__")]
            names += [os.path.relpath(os.path.join(root, f), REPO) for f in files]
    return [n for n in names if os.path.splitext(n)[1] in TEXT_SUFFIXES
            and os.path.isfile(os.path.join(REPO, n))]


def read(name: str) -> str:
    with open(os.path.join(REPO, name), encoding="utf-8", errors="replace") as fh:
        return fh.read()


@lru_cache(maxsize=None)
def sections(page: str) -> frozenset[str] | None:
    """Section numbers (and appendix letters) of docs/<page>.md, None when there is no such page."""
    path = os.path.join(REPO, "docs", page + ".md")
    if not os.path.exists(path):
        return None
    found = set()
    in_code = False
    for line in read(os.path.join("docs", page + ".md")).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(?:Appendix\s+([A-Z])\b|(\d+(?:\.\d+)*)\.?(?:\s|$))", line)
        if m:
            found.add(m.group(1) or m.group(2))
    return frozenset(found)


def citations(text: str):
    """(page, [section, ...]) for every ``docs/<page>.md`` in ``text``."""
    for m in CITATION.finditer(text):
        page = m.group("page")
        tail_match = TAIL.match(text, m.end())
        cited: list[str] = []
        if tail_match:
            tail = re.sub(r"\n[ \t]*(?:#[ \t]*)?", " ", tail_match.group(0)).lstrip()
            first = re.match(SECTION, tail)
            if first:
                cited += [s for s in (first.group("first"), first.group("last")) if s]
                rest = tail[first.end():]
                while True:
                    more = MORE.match(rest)
                    if not more:
                        break
                    cited += [s for s in (more.group("f"), more.group("l")) if s]
                    rest = rest[more.end():]
        yield page, cited


def line_of(text: str, needle: str) -> int:
    return text[:text.find(needle)].count("\n") + 1 if needle in text else 0


def test_every_citation_resolves():
    problems = []
    count = 0
    for name in tracked_files():
        text = read(name)
        for page, cited in citations(text):
            known = sections(page)
            if known is None:
                problems.append(f"{name}: docs/{page}.md does not exist")
                continue
            for section in cited:
                count += 1
                if section not in known:
                    problems.append(f"{name}: docs/{page}.md has no section §{section}")
    assert not problems, "\n".join(problems)
    assert count > 200  # the code cites the pages a lot; a broken parser would find none


def test_codec_sections_resolve():
    known = sections("protocol")
    text = read(os.path.join("helpers", "codec.py"))
    problems = []
    for m in CODEC_SECTION.finditer(text):
        for number in re.findall(r"\d+(?:\.\d+)*", m.group(1)):
            if number not in known:
                problems.append(f"helpers/codec.py line {line_of(text, m.group(0))}: section {number}")
    assert not problems, "\n".join(problems)


def test_no_page_of_another_project_is_cited():
    problems = []
    for name in tracked_files():
        for lineno, line in enumerate(read(name).splitlines(), 1):
            for m in FOREIGN_PAGE.finditer(line):
                problems.append(f"{name}:{lineno}: {line.strip()[:100]}")
    assert not problems, "pages that are not in this repository:\n" + "\n".join(problems)


# built from pieces so that this file does not match itself
OUTSIDE = re.compile("|".join([
    re.escape("..") + "/" + "shared",
    "(?<![\\w.~-])/" + "work/",
    "(?<![\\w.~-])/" + "home/[a-z]",
    "(?<![\\w.~-])/" + "root/",
    "(?<![\\w.~-])/" + "Users/[A-Z]",
]))


def test_no_path_outside_the_repository():
    problems = []
    for name in tracked_files():
        for lineno, line in enumerate(read(name).splitlines(), 1):
            if OUTSIDE.search(line):
                problems.append(f"{name}:{lineno}: {line.strip()[:100]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text, expected", [
    ("see docs/protocol.md §4.6, §7.6 and", [("protocol", ["4.6", "7.6"])]),
    ("(docs/rules.md §7.2–7.6; docs/schema.md §2)", [("rules", ["7.2", "7.6"]), ("schema", ["2"])]),
    ("docs/rules.md §8.3/§8.6 give", [("rules", ["8.3", "8.6"])]),
    ("docs/protocol.md\n    # §2.1 framing", [("protocol", ["2.1"])]),
    ("docs/protocol.md §A", [("protocol", ["A"])]),
    ('docs/integration.md §1 ("ban", "x"), §2 (loop-back), §3.', [("integration", ["1", "2", "3"])]),
    ("[docs/operations.md](docs/operations.md)", [("operations", []), ("operations", [])]),
])
def test_parser(text, expected):
    assert list(citations(text)) == expected


def test_a_missing_section_is_reported(tmp_path, monkeypatch):
    page = tmp_path / "docs" / "x.md"
    page.parent.mkdir()
    page.write_text("# X\n\n## 1. One\n\n### 1.2 Two\n\n```\n## 9 not a heading\n```\n")
    sections.cache_clear()
    try:
        monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
        assert sections("x") == {"1", "1.2"}
        assert sections("missing") is None
    finally:
        sections.cache_clear()
