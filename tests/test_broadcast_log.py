"""The broadcast log of the token list (objects/stream.py ``BroadcastLog``, objects/tokenlist.py
``TokenList.broadcast``): a broadcast to everyone is appended once and each session copies it
into its queue at its own position. What a client receives must be exactly what it received when
every broadcast was appended to every queue: same packets, same order, the same exclusions
(``but``, the bot, remote presences), per-build variants, and the same queue cap."""

from __future__ import annotations

import base64

import pytest

from constants import packets
from handlers.bancho import RECONNECT_REPLY, poll
from helpers import codec
from helpers.layout import QUIT, MODERN, layout_for_build
from objects import stream as stream_module
from objects.remote import SINK, RemotePresence
from objects.stream import BroadcastLog, LayoutEntry, fan_out
from objects.token import Token
from objects.tokenlist import TokenList
from services import session
from tests import client as C
from tests.fakes import World

OLD = 20121210  # a build before b20121224: UserQuit (12) is a stats struct there (chio)


def user(user_id: int, **kwargs) -> Token:
    return Token(user_id, f"user{user_id}", f"user{user_id}", 3, **kwargs)


def two_online() -> tuple[TokenList, Token, Token]:
    """A token list with users 1 and 2 online (both readers of its broadcast log)."""
    tokens = TokenList()
    a, b = user(1), user(2)
    tokens.add(a)
    tokens.add(b)
    return tokens, a, b


def test_order_of_own_packets_and_broadcasts_is_kept():
    tokens, a, b = two_online()
    a.enqueue(b"1")
    tokens.broadcast(b"M1")
    a.enqueue(b"2")  # the broadcast before it is copied first
    tokens.broadcast(b"M2")
    tokens.broadcast(b"M3")
    assert a.drain_parts() == [b"1", b"M1", b"2", b"M2", b"M3"]
    assert b.drain() == b"M1M2M3"
    assert a.drain() == b"" and b.drain() == b""
    assert a.queued == 0 and b.queued == 0
    tokens.broadcast(b"M4")
    assert a.queue == [b"M4"], "the queue property reads the unread entries too"
    assert a.queued == 2
    a.queue = []  # replacing the queue drops the unread entries with it
    tokens.broadcast(b"M5")
    assert a.drain() == b"M5"


def test_a_stream_fan_out_catches_up_first():
    """A channel message (objects.stream.fan_out) after a world broadcast comes after it."""
    world = World()
    a, b = world.user(), world.user()
    osu = world.state.channels.get("#osu")
    world.state.tokens.broadcast(b"W")
    osu.members.broadcast(b"C", but=a)
    world.state.tokens.broadcast(b"X")
    fan_out([a], b"D")
    assert a.drain_parts() == [b"W", b"X", b"D"]
    assert b.drain_parts() == [b"W", b"C", b"X"]
    assert world.bot.drain() == b"", "the bot is no reader and discards"


def test_but_gets_what_came_before_and_never_the_entry():
    tokens, a, b = two_online()
    tokens.broadcast(b"M1")
    tokens.broadcast(b"M2", but=a)
    tokens.broadcast(b"M3")
    assert a.drain_parts() == [b"M1", b"M3"]
    assert b.drain_parts() == [b"M1", b"M2", b"M3"]
    tokens.broadcast(b"", but=a)
    assert tokens.log.end == 3, "an empty broadcast is no entry"


def test_a_new_session_reads_only_what_comes_after_it():
    tokens = TokenList()
    a = user(1)
    tokens.add(a)
    tokens.broadcast(b"before")
    b = user(2)
    tokens.add(b)
    tokens.broadcast(b"after")
    assert b.drain_parts() == [b"after"]
    assert a.drain_parts() == [b"before", b"after"]


def test_a_removed_session_keeps_what_it_had_not_read_and_gets_nothing_more():
    world = World()
    state = world.state
    a, b = world.user(), world.user()
    state.tokens.broadcast(b"M1")
    session.kick(state, a, reason="")  # its final packets: M1, then the login reply -1
    state.tokens.broadcast(b"M2")
    packets_a = C.decode_packets(a.drain()[len(b"M1"):])
    assert a.feed is None and a.log_pos == 0
    assert [p.id for p in packets_a] == [packets.S_LOGIN_REPLY]
    parts = b.drain_parts()
    assert parts[0] == b"M1" and parts[-1] == b"M2"
    assert poll(state, a.token, b"") == b"", "the kicked token's queue was already delivered"


def test_log_is_trimmed_to_the_slowest_reader(monkeypatch):
    monkeypatch.setattr(stream_module, "TRIM_ENTRIES", 8)
    tokens = TokenList()
    log = tokens.log
    log.trim_entries = 8
    fast, slow = user(1), user(2)
    tokens.add(fast)
    tokens.add(slow)
    tokens.broadcast(b"s0")
    slow.drain()  # reads entry 0 only
    for i in range(1, 20):
        tokens.broadcast(b"m%d" % i)
        fast.drain()
    assert log.base == 1, "held by the slow reader"
    assert len(log) == 19 and log.end == 20
    assert slow.drain_parts() == [b"m%d" % i for i in range(1, 20)]
    for i in range(20, 30):
        tokens.broadcast(b"m%d" % i)
        fast.drain()
        slow.drain()
    assert len(log) < 8, "everything read is dropped at a trim"
    assert log.starts[0] == log.total - sum(len(e) for e in log.entries)
    tokens.trim_log()
    assert len(log) == 0 and log.base == log.end == 30
    tokens.broadcast(b"last")
    assert fast.drain() == b"last" and slow.drain() == b"last"


def test_trims_are_amortised(monkeypatch):
    """One walk of the readers per TRIM_ENTRIES broadcasts, not one per broadcast."""
    tokens = TokenList()
    readers = [user(i) for i in range(1, 6)]
    for token in readers:
        tokens.add(token)
    walks = []
    real = tokens.log.readers
    tokens.log.readers = lambda: walks.append(1) or real()
    for i in range(3 * stream_module.TRIM_ENTRIES):
        tokens.broadcast(b"x")
    assert len(walks) == 3
    assert len(tokens.log) == 3 * stream_module.TRIM_ENTRIES, "nobody read anything yet"
    for token in readers:
        assert len(token.drain()) == 3 * stream_module.TRIM_ENTRIES


def test_a_reader_past_its_cap_overflows_at_the_sweep_and_is_logged_out():
    world = World()
    state = world.state
    lagging = world.user(max_queue=100)
    polling = world.user()
    state.tokens.broadcast(b"x" * 60)
    state.tokens.broadcast(b"y" * 60)
    assert not lagging.overflowed, "found at the next trim, sweep or poll"
    polling.drain()
    assert session.sweep_timeouts(state) == 1
    assert lagging.overflowed and lagging.logged_out
    assert not polling.overflowed and not polling.logged_out
    assert [p.id for p in C.decode_packets(polling.drain())] == [C.USER_LOGOUT], "the quit of the logout"
    state.tokens.trim_log()
    assert state.tokens.log.base == state.tokens.log.end, "nothing held for the logged-out reader"


def test_a_reader_past_its_cap_overflows_at_its_poll():
    world = World()
    state = world.state
    lagging = world.user(max_queue=100)
    lagging.enqueue(b"own" * 10)
    state.tokens.broadcast(b"x" * 80)
    assert poll(state, lagging.token, b"") == RECONNECT_REPLY
    assert lagging.logged_out and state.tokens.get(lagging.token) is None


def test_a_reader_past_its_cap_overflows_at_a_trim(monkeypatch):
    tokens = TokenList()
    lagging, ok = user(1, max_queue=50), user(2)
    tokens.add(lagging)
    tokens.add(ok)
    for _ in range(10):
        tokens.broadcast(b"z" * 10)
    tokens.trim_log()
    assert lagging.overflowed and lagging.queue == [] and lagging.queued == 0
    assert not ok.overflowed and len(tokens.log) == 10, "held for the reader below its cap"
    assert ok.drain() == b"z" * 100


def test_read_of_a_trimmed_position_is_an_overflow():
    tokens = TokenList()
    a = user(1)
    tokens.add(a)
    tokens.broadcast(b"x")
    a.log_pos = -5  # corrupt: before the log's base
    a.catch_up()
    assert a.overflowed and a.drain() == b""
    with pytest.raises(LookupError):
        a.log_pos = -1
        tokens.log.read(a)


def test_layout_dependent_broadcast_gets_each_reader_its_variant():
    world = World()
    state = world.state
    modern = world.user()
    old = world.user(version=OLD)
    leaving = world.user()
    assert state.tokens.old_layouts == {old.layout: 1}
    session.logout(state, leaving)
    quit_modern = codec.user_logout(leaving.user_id)
    assert modern.drain() == quit_modern
    old_view = old.drain()
    assert old_view == leaving.quit_packet(old.layout) and old_view != quit_modern
    assert world.bot.drain() == b""
    # a build without the packet gets nothing, others get theirs
    state.tokens.broadcast_layouts(lambda lay: b"" if lay is not MODERN else b"new", QUIT)
    assert modern.drain() == b"new" and old.drain() == b""
    state.tokens.remove(old)
    assert state.tokens.old_layouts == {}
    calls = []
    state.tokens.broadcast_layouts(lambda lay: calls.append(lay) or b"q", QUIT)
    assert calls == [MODERN], "all modern: one encoding, a plain entry"
    assert type(state.tokens.log.entries[-1]) is bytes


def test_layout_entry_encodes_once_per_variant():
    layouts = [layout_for_build(OLD), layout_for_build(OLD), layout_for_build(20121203)]
    calls = []
    entry = LayoutEntry(lambda lay: calls.append(lay) or bytes([lay.v[QUIT]]) * (1 + lay.v[QUIT]), QUIT, layouts)
    assert len(calls) == len({lay.v[QUIT] for lay in layouts} | {0})
    assert entry.for_layout(MODERN) == b"\x00"
    assert entry.size == max(len(d) for d in entry.data.values())
    v = layouts[0].v[QUIT]
    assert v and entry.for_layout(layouts[0]) == bytes([v]) * (1 + v)


def test_restricted_sessions_read_and_the_bot_and_remote_presences_do_not():
    world = World()
    state = world.state
    restricted = world.user(restricted=True)
    remote = RemotePresence(77, "far", "far", 3)
    remote.token = "@far"
    remote.node = "n2"
    remote.queue = SINK
    remote.relay = None
    remote.on_match = None
    state.tokens.add(remote)
    assert restricted.feed is state.tokens.log
    assert world.bot.feed is None and remote.feed is None
    state.tokens.broadcast(b"hello")
    assert restricted.drain() == b"hello"
    assert remote.drain() == b"" and len(SINK) == 0


def test_snapshot_carries_the_unread_entries():
    world = World()
    a = world.user()
    a.enqueue(b"own")
    world.state.tokens.broadcast(b"world")
    record = a.to_snapshot(0.0)
    assert base64.b64decode(record["queue"]) == b"ownworld"


def test_the_login_broadcast_is_one_log_entry_whatever_the_number_online():
    """A login appends its presence once (the cost that was O(online): bench/README.md)."""
    world = World()
    state = world.state
    others = [world.user() for _ in range(50)]
    for token in others:
        token.drain()
    newcomer = world.user()
    before = state.tokens.log.end
    state.tokens.broadcast(newcomer.presence_packet(), but=newcomer)
    assert state.tokens.log.end == before + 1
    assert all(token.own == [] for token in others), "nothing appended to any queue"
    assert all(token.drain() == newcomer.presence_packet() for token in others)
    assert newcomer.drain() == b""
