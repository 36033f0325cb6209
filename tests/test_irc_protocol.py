"""Unit tests of the IRC wire format (handlers/irc/protocol.py) and the match-event lines
(services/match_events.py); the gateway itself is tested against a running server in
tests/integration/test_irc*.py."""

from __future__ import annotations

from handlers.irc import protocol as p
from handlers.irc.gateway import internal_channel, irc_channel


def test_parse():
    assert p.parse("PRIVMSG #osu :hello there") == ("PRIVMSG", ["#osu", "hello there"])
    assert p.parse("@time=x :nick!u@h privmsg a :b :c") == ("PRIVMSG", ["a", "b :c"])
    assert p.parse("JOIN #a,#b key") == ("JOIN", ["#a,#b", "key"])
    assert p.parse("") is None and p.parse("   ") is None and p.parse(":prefixonly") is None
    assert p.parse("@tagsonly") is None
    many = p.parse("X " + " ".join(str(i) for i in range(20)))
    assert many is not None and len(many[1]) == p.MAX_PARAMS and many[1][-1] == "14 15 16 17 18 19"
    assert p.parse("NICK :") == ("NICK", [""])


def test_decode_utf8_then_latin1():
    assert p.decode("café".encode()) == "café"
    assert p.decode(b"caf\xe9") == "café"
    assert p.decode(b"a\x00b") == "ab"


def test_line_never_breaks_lines():
    assert p.line("srv", "001", "nick", "Welcome here") == b":srv 001 nick :Welcome here\r\n"
    assert p.line(None, "PING", "srv") == b"PING srv\r\n"
    assert p.line("a", "PRIVMSG", "#x", "evil\r\nQUIT") == b":a PRIVMSG #x :evil  QUIT\r\n"
    assert p.line("a", "PRIVMSG", "#x", "") == b":a PRIVMSG #x :\r\n"
    assert p.line("a", "PRIVMSG", "#x", ":)") == b":a PRIVMSG #x ::)\r\n"
    assert p.time_tag(0).startswith(b"@time=1970-01-01T00:00:00.000Z")


def test_channel_names():
    assert irc_channel("#multi_12") == "#mp_12" and internal_channel("#mp_12") == "#multi_12"
    assert irc_channel("#spect_7") == "#spec_7" and internal_channel("#SPEC_7") == "#spect_7"
    assert irc_channel("#osu") == "#osu" and internal_channel("#osu") == "#osu"
    for hidden in ("#multi_1", "#spect_1", "#multiplayer", "#spectator"):
        assert internal_channel(hidden) is None


def test_nick_of():
    assert p.nick_of("Some Player") == "Some_Player"
