"""docs/commands.md cannot drift from the bot's command registry (services/commands/).

The command tables of the document are generated from the registry by
``scripts/gen_commands_doc.py``; this test regenerates them and compares. It also checks the
registry itself: every documented command has a description, its privilege mask is made of
known bits, and the text around the tables names every command module.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("gen_commands_doc", ROOT / "scripts" / "gen_commands_doc.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_generated_tables_match_the_registry():
    script = _script()
    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    _, block, _ = script.split(text)
    assert block == script.generated(), "docs/commands.md is out of date: run scripts/gen_commands_doc.py"


def test_every_command_is_in_the_document():
    from services import commands

    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for cmd in commands.REGISTRY:
        if cmd.hidden:
            continue
        assert f"| `{cmd.name}` |" in text, cmd.trigger
        assert cmd.description, f"{cmd.trigger} has no description"
        for sub in cmd.subcommands:
            assert f"`{cmd.trigger} {sub.name}" in text, f"{cmd.trigger} {sub.name}"


def test_registry_is_sound():
    from constants import privileges as privs
    from services import commands

    bits = 0
    for name, value in vars(privs).items():
        if re.fullmatch(r"(USER|ADMIN)_[A-Z_]+", name):
            bits |= value
    triggers = [c.trigger for c in commands.REGISTRY]
    assert len(triggers) == len(set(triggers))
    for cmd in commands.REGISTRY:
        assert cmd.privileges & ~bits == 0, f"{cmd.trigger}: unknown privilege bits"
        assert cmd.where in (commands.ANYWHERE, commands.CHANNEL, commands.PRIVATE)
        # no command is shadowed by an earlier one (first match wins)
        earlier = triggers[: triggers.index(cmd.trigger)]
        assert not [t for t in earlier if cmd.trigger.startswith(t + " ")], f"{cmd.trigger} is shadowed"
    # the catch-all "!system" comes after every "!system <word>"
    system = triggers.index("!system")
    assert all(triggers.index(t) < system for t in triggers if t.startswith("!system "))
