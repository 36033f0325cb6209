"""The argument parsers of the bot's commands, without a server (docs/rules.md §8.5, §8.6).

The commands themselves are tested through real clients in the other test_commands*.py files;
these cover the many input shapes of /np links, mod codes and silence arguments cheaply.
"""

from __future__ import annotations

import pytest

from services.commands import Command, WrongSyntax, find
from services.commands import np as npmod
from services.commands.staff import parse_silence


@pytest.mark.parametrize("rest, expected", [
    ("[https://osu.ppy.sh/b/123 Artist - Title [Diff]]\x01", (123, 0)),
    ("[http://osu.ppy.sh/b/123?m=0 Artist - Title]\x01", (123, 0)),
    ("[https://osu.ppy.sh/beatmapsets/77#osu/4321 A - B [C]] +Hidden +HardRock\x01", (4321, 8 | 16)),
    ("[https://osu.ppy.sh/beatmapsets/77#/4321 A - B [C]]\x01", (4321, 0)),
    ("[https://osu.ppy.sh/beatmaps/9876 A - B [C]] -Easy +Nightcore ~Relax~\x01", (9876, 2 | 512 | 64 | 128)),
    ("[https://osu.ppy.sh/b/5 A [B]] <Taiko> +Flashlight -SpunOut -NoFail\x01", (5, 1024 | 4096 | 1)),
    ("[https://osu.ppy.sh/s/555 A set]\x01", (None, 0)),
    ("[https://osu.ppy.sh/beatmapsets/555 A set]\x01", (None, 0)),
    ("[https://osu.ppy.sh/b/99999999999 too big]\x01", (None, 0)),
    ("", (None, 0)),
    ("\x01", (None, 0)),
])
def test_parse_np(rest, expected):
    assert npmod.parse_np(rest) == expected


@pytest.mark.parametrize("word, mods", [
    ("HD", 8), ("hdhr", 24), ("+HDDT", 72), ("NC", 576), ("NO", 0), ("HDNO", 0), ("NOHD", 8),
    ("RXAP", 128 | 8192), ("HDX", None), ("XY", None), ("", None), ("H", None),
])
def test_parse_with(word, mods):
    assert npmod.parse_with(word) == mods


def test_mods_text():
    assert npmod.mods_text(0) == ""
    assert npmod.mods_text(8 | 16) == "HDHR"
    assert npmod.mods_text(512 | 64 | 8) == "HDNC"
    assert npmod.mods_text(1 | 2 | 4096) == "NFEZSO"


@pytest.mark.parametrize("args, expected", [
    (["someone", "10", "m", "spam"], ("someone", 600, "spam")),
    (["some", "body", "1", "d", "very", "rude"], ("some body", 86400, "very rude")),
    (["123", "5", "s", "x"], ("123", 5, "x")),
    (["x", "30", "D", "y"], ("x", 30 * 86400, "y")),
])
def test_parse_silence(args, expected):
    assert parse_silence(args) == expected


@pytest.mark.parametrize("args, message", [
    (["x", "ten", "m", "r"], "The amount must be a number."),
    (["x", "10", "w", "r"], "Invalid time format (s/m/h/d)."),
    (["x", "10", "m"], "Please provide a valid reason."),
    (["x", "31", "d", "r"], "Invalid silence time. Max silence time is 1 month."),
    (["x", "0", "s", "r"], "Invalid silence time. Max silence time is 1 month."),
    (["x", "10"], ""),
])
def test_parse_silence_errors(args, message):
    with pytest.raises(WrongSyntax) as info:
        parse_silence(args)
    assert str(info.value) == message


@pytest.mark.parametrize("mode, acc, counts, mods, completed, grade", [
    (0, 100.0, (500, 0, 0, 0), 0, 3, "SS"),
    (0, 100.0, (500, 0, 0, 0), 8, 3, "SSH"),
    (0, 98.0, (480, 20, 0, 0), 0, 3, "S"),
    (0, 97.0, (480, 15, 3, 2), 0, 3, "A"),
    (0, 50.0, (250, 100, 100, 50), 0, 3, "D"),
    (0, 97.0, (480, 15, 3, 2), 0, 0, "F"),
    (3, 96.0, (0, 0, 0, 0), 0, 3, "S"),
    (2, 93.0, (0, 0, 0, 0), 0, 3, "B"),
])
def test_grade(mode, acc, counts, mods, completed, grade):
    n300, n100, n50, miss = counts
    assert npmod.grade(mode, acc, n300, n100, n50, miss, 0, 0, mods, completed) == grade


def test_matching_rules():
    assert find("!roll").trigger == "!roll"
    assert find("!roll 5").trigger == "!roll"
    assert find("!rolls") is None
    assert find("!ROLL") is None
    assert find(" !roll") is None
    assert find("!system restart now").trigger == "!system restart"
    assert find("!system reboot").trigger == "!system"
    assert find("!alertuser a b").trigger == "!alertuser"
    assert find("\x01ACTION is playing [https://osu.ppy.sh/b/1 x]\x01").display == "/np"
    assert find("hello") is None and find("") is None
    cmd = Command(trigger="!x", handler=lambda ctx: None, syntax="<a> [b] <c...>")
    assert cmd.required_args == 2 and cmd.usage == "!x <a> [b] <c...>"
