#!/usr/bin/env python3
"""Regenerate the command tables of docs/commands.md from the bot's registry.

    .venv/bin/python scripts/gen_commands_doc.py           # rewrite the generated block
    .venv/bin/python scripts/gen_commands_doc.py --check   # exit 1 if the file is out of date

Only the text between the BEGIN/END markers is replaced (``services.commands.render_markdown``);
the rest of the file is written by hand. ``tests/test_commands_doc.py`` runs the same check.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "commands.md")
BEGIN = "<!-- BEGIN GENERATED COMMAND TABLE (scripts/gen_commands_doc.py) -->"
END = "<!-- END GENERATED COMMAND TABLE -->"


def generated() -> str:
    """The generated block (markers included) for the current registry."""
    sys.path.insert(0, ROOT)
    from services import commands

    return f"{BEGIN}\n\n{commands.render_markdown()}\n{END}"


def split(text: str) -> tuple[str, str, str]:
    """(before, block, after) of the document; ValueError when the markers are missing."""
    start = text.index(BEGIN)
    end = text.index(END, start) + len(END)
    return text[:start], text[start:end], text[end:]


def main(argv: list[str]) -> int:
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    before, block, after = split(text)
    fresh = generated()
    if "--check" in argv:
        if block != fresh:
            print(f"{DOC} is out of date: run scripts/gen_commands_doc.py", file=sys.stderr)
            return 1
        return 0
    if block != fresh:
        with open(DOC, "w", encoding="utf-8") as fh:
            fh.write(before + fresh + after)
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
