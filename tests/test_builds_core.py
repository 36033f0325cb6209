"""Issue 15 in-process: builds of different layouts in one world (docs/multiplayer.md "Old and
new builds in one match", docs/protocol.md §9.3), through the real dispatcher on a real
:class:`State` with the in-memory fakes. Every session's packets are decoded with chio's codec
of its own build (``tests/client.py`` ``client_io``)."""

from __future__ import annotations

import pytest

from helpers.layout import layout_for_build
from objects import match as m
from objects.remote import new_remote, record
from objects.snapshot import Record
from objects.token import Token
from services.cluster import _match_view
from services import multiplayer as mp
from tests import client as C
from tests.fakes import World, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")

OLD = 20130816  # an HTTP build with 8-slot matches


def got(token) -> list[C.Packet]:
    """Drain ``token``'s queue, decoded by chio as its build reads it."""
    io = C.client_io(token.version, layout_for_build(token.version).protocol)
    return C.decode_packets(token.drain(), io)


def room(world: World):
    host = world.user("Host", channels=(), version=20250306)
    world.send(host, C.match_create(C.make_match(name="room", host_id=host.user_id, open_slots=15)))
    match = world.state.matches.get(host.match_id)
    got(host)
    return host, match


def test_an_eight_slot_join_locks_slots_9_to_16_and_they_stay_locked():
    world = World()
    host, match = room(world)
    old = world.user("Old", channels=(), version=OLD)
    world.send(old, C.match_join(match.id))
    joined = C.values(got(old), C.MATCH_JOIN_SUCCESS)
    assert joined and len(joined[0].slots) == 8
    assert [s.status for s in match.slots[8:]] == [m.LOCKED] * 8
    update = C.values(got(host), C.MATCH_UPDATE)[-1]
    assert len(update.slots) == 16 and C.slot_statuses(update)[8:] == [2] * 8
    world.send(host, C.match_lock(10))  # unlock refused while the 8-slot build is seated
    assert match.slots[10].status == m.LOCKED
    mp.set_size(world.state, match, 16)  # !mp size 16 keeps them locked too
    assert [s.status for s in match.slots[8:]] == [m.LOCKED] * 8
    assert [s.status for s in match.slots[1:8]].count(m.OPEN) == 6
    world.send(old, C.match_part())
    assert match.slots[10].status == m.LOCKED, "still locked after the 8-slot build left"
    world.send(host, C.match_lock(10))
    assert match.slots[10].status == m.OPEN, "the host may unlock them then"


def test_an_eight_slot_build_is_refused_while_players_sit_beyond_slot_8():
    world = World()
    host, match = room(world)
    new = world.user("New", channels=(), version=20250306)
    world.send(new, C.match_join(match.id))
    world.send(new, C.match_change_slot(12))
    assert match.slot_of(new) == 12
    old = world.user("Old", channels=(), version=OLD)
    world.send(old, C.match_join(match.id))
    assert C.of(got(old), C.MATCH_JOIN_FAIL)
    assert match.slot_of(old) is None
    world.send(new, C.match_change_slot(2))
    world.send(old, C.match_join(match.id))
    assert match.slot_of(old) is not None and match.slot_of(old) < 8


def test_an_eight_slot_build_fills_only_slots_1_to_8():
    world = World()
    host, match = room(world)
    for i in range(7):
        world.send(world.user(f"P{i}", channels=(), version=20250306), C.match_join(match.id))
    assert match.lowest_open() == 8
    old = world.user("Old", channels=(), version=OLD)
    world.send(old, C.match_join(match.id))
    assert C.of(got(old), C.MATCH_JOIN_FAIL), "slots 1-8 are full for an 8-slot build"


def test_an_eight_slot_creator_gets_slots_9_to_16_locked_and_reads_8():
    world = World()
    old = world.user("Old", channels=(), version=OLD)
    io = C.client_io(OLD, layout_for_build(OLD).protocol)
    world.send(old, C.match_create(C.make_match(name="old room", host_id=old.user_id, open_slots=7), io=io))
    match = world.state.matches.get(old.match_id)
    assert match is not None and [s.status for s in match.slots[8:]] == [m.LOCKED] * 8
    assert match.name == "old room"
    joined = C.values(got(old), C.MATCH_JOIN_SUCCESS)
    assert joined and len(joined[0].slots) == 8 and C.slot_of(joined[0], old.user_id) == 0


def test_lobby_views_are_encoded_once_per_variant():
    world = World()
    watchers = [world.user(f"W{i}", channels=(), version=v)
                for i, v in enumerate([20250306, 20160404, OLD, OLD])]
    for w in watchers:
        world.send(w, C.lobby_join())
        got(w)
    host, match = room(world)
    world.send(host, C.match_change_slot(3))  # an update for the lobby
    mp.flush_lobby(world.state)
    queued = [w.queue[-1] for w in watchers]
    assert queued[0] is queued[1], "modern and b20160404 share the 16-slot bytes"
    assert queued[2] is queued[3] and queued[2] != queued[0], "the 8-slot builds share theirs"
    views = [C.values(got(w), C.MATCH_UPDATE)[-1] for w in watchers]
    assert [len(v.slots) for v in views] == [16, 16, 8, 8]
    assert all(C.slot_of(v, host.user_id) == 3 for v in views)


def test_remote_presences_and_other_nodes_matches_in_the_builds_layout():
    local = Token(5, "Old", "old", 3, version=OLD)
    remote = new_remote(Record(record(local), "up"), "node2")
    assert remote.layout is local.layout and remote.layout.slots == 8
    world = World()
    host, match = room(world)
    modern = match.lobby_update()  # what another node publishes
    old_view = _match_view(modern, remote.layout)
    assert _match_view(modern, host.layout) is modern
    struct = C.decode_packets(old_view, C.client_io(OLD, layout_for_build(OLD).protocol))[0].value
    assert len(struct.slots) == 8 and C.slot_of(struct, host.user_id) == 0 and struct.id == match.id
    assert _match_view(b"\x1a\x00\x00\x03\x00\x00\x00abc", remote.layout) == b"", "unreadable: nothing sent"
