"""The match rules in-process (docs/multiplayer.md): match packets through the real dispatcher
(``handlers.main.process_frames``, bodies built by chio) and the referee procedures of
``services.multiplayer``, on a real :class:`State` with in-memory fakes. Every check reads what
the sessions receive, decoded by chio (match structs included).

These are the tests ``scripts/mutation.sh`` runs against the mutants of
``services/multiplayer.py`` and ``objects/match.py`` (docs/testing.md).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from helpers import codec
from objects import match as m
from objects.channel import Channel
from services import chat, commands, multiplayer as mp
from tests import client as C
from tests.fakes import NoOpHooks, World, received, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")

TOURNEY_STAFF = 2097152


def last_struct(packets, packet_id=C.MATCH_UPDATE):
    got = C.values(packets, packet_id)
    assert got, f"no {C.packet_name(packet_id)} in {[p.name for p in packets]}"
    return got[-1]


def statuses(struct) -> list[int]:
    return [int(s.status) for s in struct.slots]


def teams(struct) -> list[int]:
    return [int(s.team) for s in struct.slots]


class Room:
    """A world with a host who created a match by packet, plus helpers."""

    def __init__(self, env=None, host_privileges=3, **match_kwargs) -> None:
        self.world = World(env)
        self.state = self.world.state
        self.host = self.world.user("Host", channels=(), privileges=host_privileges)
        kwargs = dict(name="room", host_id=self.host.user_id)
        kwargs.update(match_kwargs)
        self.world.send(self.host, C.match_create(C.make_match(**kwargs)))
        assert self.host.match_id is not None
        self.match = self.state.matches.get(self.host.match_id)
        self.created = received(self.host)

    def player(self, name: str, password: str = "", **kwargs):
        token = self.world.user(name, channels=(), **kwargs)
        self.world.send(token, C.match_join(self.match.id, password))
        return token

    def send(self, token, *frames):
        self.world.send(token, *frames)


# ================================================================================ create / join
def test_create_match_replies_and_struct():
    world = World()
    lobby = world.user("Watcher", channels=())
    world.send(lobby, C.frame(C.C_JOIN_LOBBY))
    received(lobby)
    host = world.user("Host", channels=())
    statuses_in = [4, 1, 2, 1] + [2] * 12
    world.send(host, C.match_create(C.make_match(name="  my room  ", password="pw", mode=2,
                                                 host_id=host.user_id, slot_statuses=statuses_in)))
    packets = received(host)
    ids = [p.id for p in packets]
    assert ids.index(C.CHANNEL_JOIN_SUCCESS) < ids.index(C.MATCH_JOIN_SUCCESS)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#multiplayer"]
    joined = last_struct(packets, C.MATCH_JOIN_SUCCESS)
    assert joined.name == "my room" and joined.password == "pw" and joined.mode == 2
    assert joined.host_id == host.user_id
    assert statuses(joined)[:4] == [m.NOT_READY, m.OPEN, m.LOCKED, m.OPEN]
    assert joined.slots[0].user_id == host.user_id and int(joined.slots[0].team) == m.NO_TEAM
    assert C.MATCH_TRANSFER_HOST in ids
    assert C.values(packets, C.MATCH_CHANGE_PASSWORD)[-1] == "pw"
    seen = C.of(received(lobby), C.MATCH_UPDATE)
    assert seen and C.match_wire_password(seen[-1]) == ""  # the lobby never sees the password
    match = world.state.matches.get(host.match_id)
    assert match.host is host and match.creator_id == host.user_id and not match.tourney
    assert world.state.channels.get(match.channel_name) is not None


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_create_refused_for_bad_names(name):
    world = World()
    host = world.user("Host", channels=())
    world.send(host, C.match_create(C.make_match(name=name, host_id=host.user_id)))
    assert [p.id for p in received(host)] == [C.MATCH_JOIN_FAIL]
    assert host.match_id is None and len(world.state.matches) == 0


def test_fifty_character_name_accepted():
    room = Room(name="y" * 50)
    assert room.match.name == "y" * 50


def test_restricted_or_silenced_cannot_create_or_join():
    room = Room()
    r = room.world.user("Rex", channels=(), restricted=True)
    s = room.world.user("Sil", channels=())
    s.silence_end = int(time.time()) + 100
    for token in (r, s):
        room.send(token, C.match_create(C.make_match(name="x", host_id=token.user_id)))
        room.send(token, C.match_join(room.match.id))
        packets = received(token)
        assert [p.id for p in packets] == [C.MATCH_JOIN_FAIL, C.NOTIFICATION] * 2
        assert token.match_id is None
    assert len(room.state.matches) == 1


def test_refusal_notices():
    room = Room()
    r = room.world.user("Rex", channels=(), restricted=True)
    s = room.world.user("Sil", channels=())
    s.silence_end = int(time.time()) + 100
    room.send(r, C.match_join(room.match.id))
    room.send(s, C.match_join(room.match.id))
    assert C.values(received(r), C.NOTIFICATION) == [mp.NOTICE_RESTRICTED]
    notice = C.values(received(s), C.NOTIFICATION)[0]
    assert notice.startswith("You can't create or join") and ("(100 s left)" in notice or "(99 s left)" in notice)


def test_join_takes_lowest_open_slot_and_tells_everyone():
    room = Room(slot_statuses=[4, 2, 1] + [1] * 13)
    a = room.player("A")
    packets = received(a)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#multiplayer"]
    joined = last_struct(packets, C.MATCH_JOIN_SUCCESS)
    assert joined.slots[2].user_id == a.user_id and statuses(joined)[:3] == [m.NOT_READY, m.LOCKED, m.NOT_READY]
    assert int(joined.slots[2].team) == m.NO_TEAM
    update = last_struct(received(room.host))
    assert update.slots[2].user_id == a.user_id
    assert a.match_id == room.match.id and room.match.empty_since is None


def test_join_in_team_mode_gets_a_team():
    """A player joining a match that is already in a team mode is put in a team (by slot parity)."""
    room = Room()
    room.send(room.host, C.match_change_settings(C.make_match(name="room", host_id=room.host.user_id, team_type=2)))
    assert room.match.team_type == m.TEAM_VS
    a, b = room.player("A"), room.player("B")
    assert int(last_struct(received(a), C.MATCH_JOIN_SUCCESS).slots[1].team) == m.BLUE
    struct = last_struct(received(b), C.MATCH_JOIN_SUCCESS)
    assert teams(struct)[:3] == [m.RED, m.BLUE, m.RED]
    # tag team vs is a team mode too; tag co-op is not
    mp.set_teams(room.state, room.match, team_type=m.TAG_TEAM_VS)
    c = room.player("C")
    assert int(last_struct(received(c), C.MATCH_JOIN_SUCCESS).slots[3].team) == m.BLUE
    mp.set_teams(room.state, room.match, team_type=m.TAG_COOP)
    d = room.player("D")
    assert int(last_struct(received(d), C.MATCH_JOIN_SUCCESS).slots[4].team) == m.NO_TEAM


def test_join_refusals():
    room = Room(password="secret", slot_statuses=[4, 1] + [2] * 14)
    wrong = room.player("Wrong", password="nope")
    assert [p.id for p in received(wrong)] == [C.MATCH_JOIN_FAIL] and wrong.match_id is None
    ok = room.player("Ok", password="secret")
    assert C.of(received(ok), C.MATCH_JOIN_SUCCESS)
    full = room.player("Full", password="secret")
    assert [p.id for p in received(full)] == [C.MATCH_JOIN_FAIL]
    room.send(ok, C.match_join(room.match.id, "secret"))  # already in it
    assert [p.id for p in received(ok)] == [C.MATCH_JOIN_FAIL]
    unknown = room.world.user("U", channels=())
    room.send(unknown, C.match_join(4242))
    assert [p.id for p in received(unknown)] == [C.MATCH_JOIN_FAIL]
    tourney = room.world.user("T", channels=(), tournament=True)
    with pytest.raises(mp.MatchError):
        mp.join(room.state, tourney, room.match, None)
    # the referee's join skips the password
    mp.unlock_slot(room.state, room.match, 2)
    ref_join = room.world.user("Ref", channels=())
    mp.join(room.state, ref_join, room.match, None)
    assert room.match.slot_of(ref_join) == 2


def test_join_other_match_leaves_the_first():
    room = Room()
    a = room.player("A")
    host2 = room.world.user("Host2", channels=())
    room.send(host2, C.match_create(C.make_match(name="second", host_id=host2.user_id)))
    second = room.state.matches.get(host2.match_id)
    received(a)
    room.send(a, C.match_join(second.id))
    assert room.match.slot_of(a) is None and second.slot_of(a) == 1 and a.match_id == second.id
    assert "#multiplayer" in C.values(received(a), C.CHANNEL_KICKED)


# ================================================================================ leave / host / dispose
def test_host_leaving_passes_host_to_lowest_occupied():
    room = Room()
    a, b = room.player("A"), room.player("B")
    received(a), received(b)
    room.send(room.host, C.match_part())
    assert room.match.host is a
    assert C.of(received(a), C.MATCH_TRANSFER_HOST)
    packets_b = received(b)
    assert not C.of(packets_b, C.MATCH_TRANSFER_HOST)
    assert last_struct(packets_b).host_id == a.user_id
    assert room.host.match_id is None
    assert "#multiplayer" in C.values(received(room.host), C.CHANNEL_KICKED)


def test_last_player_leaving_disposes():
    room = Room()
    watcher = room.world.user("W", channels=())
    room.send(watcher, C.frame(C.C_JOIN_LOBBY))
    received(watcher)
    room.send(room.host, C.match_part())
    assert room.match.disposed and room.match.id not in room.state.matches
    assert C.values(received(watcher), C.MATCH_DISPOSE) == [room.match.id]
    assert room.state.channels.get(room.match.channel_name) is None
    late = room.world.user("Late", channels=())
    room.send(late, C.match_join(room.match.id))
    assert [p.id for p in received(late)] == [C.MATCH_JOIN_FAIL]


def test_tourney_match_survives_being_empty_and_can_lose_its_host():
    world = World()
    referee = world.user("Ref", channels=())
    match = mp.create_match(world.state, None, "tourney", "", creator=referee)
    assert match.tourney and match.host is None and match.creator_id == referee.user_id
    a = world.user("A", channels=())
    mp.join(world.state, a, match, None)
    assert mp.set_host(world.state, match, a) and match.host is a
    assert C.of(received(a), C.MATCH_TRANSFER_HOST)
    assert mp.set_host(world.state, match, None) and match.host is None
    assert last_struct(received(a)).host_id == -1
    mp.leave(world.state, a)
    assert not match.disposed and match.empty_since is not None
    mp.dispose(world.state, match)
    assert match.disposed and match.id not in world.state.matches


def test_player_match_cannot_lose_its_host():
    room = Room()
    with pytest.raises(mp.MatchError):
        mp.set_host(room.state, room.match, None)
    outsider = room.world.user("O", channels=())
    assert not mp.set_host(room.state, room.match, outsider)
    assert mp.set_host(room.state, room.match, room.host)  # already host: nothing sent
    assert received(room.host) == []


def test_transfer_host_packet():
    room = Room()
    a = room.player("A")
    received(a)
    room.send(a, C.match_transfer_host(0))  # not host: ignored
    assert room.match.host is room.host
    for bad in (-1, 16, 5):  # out of range, or an empty slot
        room.send(room.host, C.match_transfer_host(bad))
        assert room.match.host is room.host
    room.send(room.host, C.match_transfer_host(1))
    assert room.match.host is a and C.of(received(a), C.MATCH_TRANSFER_HOST)


def test_dispose_tells_members_observers_and_lobby():
    room = Room()
    a = room.player("A")
    staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    room.send(staff, C.tournament_join_match_channel(room.match.id))
    assert staff.tourney_match_id == room.match.id
    lobby = room.world.user("L", channels=())
    room.send(lobby, C.frame(C.C_JOIN_LOBBY))
    for t in (room.host, a, staff, lobby):
        received(t)
    mp.dispose(room.state, room.match)
    for t in (room.host, a, staff):
        packets = received(t)
        assert C.values(packets, C.MATCH_DISPOSE) == [room.match.id]
        assert C.values(packets, C.CHANNEL_KICKED) == ["#multiplayer"]
    assert [p.id for p in received(lobby)] == [C.MATCH_DISPOSE]
    assert a.match_id is None and room.host.match_id is None and staff.tourney_match_id is None
    assert not any(name.startswith(m.CHANNEL_PREFIX) for name in a.channels | staff.channels)
    mp.dispose(room.state, room.match)  # twice is harmless
    assert received(a) == []


# ================================================================================ ready / map / team
def test_ready_and_not_ready_are_set_not_toggled():
    room = Room()
    a = room.player("A")
    received(a)
    room.send(a, C.match_ready(), C.match_ready())
    assert room.match.slots[1].status == m.READY
    assert len(C.of(received(a), C.MATCH_UPDATE)) == 1
    room.send(a, C.match_not_ready(), C.match_not_ready())
    assert room.match.slots[1].status == m.NOT_READY
    assert len(C.of(received(a), C.MATCH_UPDATE)) == 1
    room.send(a, C.match_no_beatmap())
    assert room.match.slots[1].status == m.NO_MAP
    room.send(a, C.match_ready())  # no map: cannot be ready
    assert room.match.slots[1].status == m.NO_MAP
    room.send(a, C.match_no_beatmap())
    assert len(C.of(received(a), C.MATCH_UPDATE)) == 1
    room.send(a, C.match_has_beatmap())
    assert room.match.slots[1].status == m.NOT_READY
    room.send(a, C.match_has_beatmap())
    assert len(C.of(received(a), C.MATCH_UPDATE)) == 1
    room.send(a, C.match_ready(), C.match_no_beatmap())  # READY -> NO_MAP is allowed
    assert room.match.slots[1].status == m.NO_MAP


def test_ready_refused_during_referee_countdown():
    """A referee's ``!mp start <seconds>`` countdown: "ready" is refused until it ends or is aborted."""
    room = Room(host_privileges=3 | TOURNEY_STAFF)
    commands.install(room.state)
    a = room.player("A")
    received(a)

    async def scenario():
        assert chat.send_message(room.state, room.host, "#multiplayer", "!mp start 30 force") is chat.Result.SENT
        await asyncio.sleep(0)
        assert room.match.starting
        room.send(a, C.match_ready())
        assert room.match.slots[1].status == m.NOT_READY
        assert not C.of(received(a), C.MATCH_UPDATE)
        room.send(a, C.match_change_slot(5))  # no slot change either
        assert room.match.slot_of(a) == 1
        chat.send_message(room.state, room.host, "#multiplayer", "!mp abort")
        await asyncio.sleep(0)
        assert not room.match.starting
        room.send(a, C.match_ready())
        assert room.match.slots[1].status == m.READY
        await room.state.drain_tasks(1)

    asyncio.run(scenario())


def test_ready_refused_while_starting_flag_set():
    room = Room()
    a = room.player("A")
    room.match.starting = True
    room.send(a, C.match_ready(), C.match_change_team())
    assert room.match.slots[1].status == m.NOT_READY
    room.match.starting = False
    room.send(a, C.match_ready())
    assert room.match.slots[1].status == m.READY


def test_change_team_only_in_team_modes_and_when_allowed():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_change_team())
    assert room.match.slots[1].team == m.NO_TEAM
    mp.set_teams(room.state, room.match, team_type=m.TEAM_VS)
    assert room.match.slots[1].team == m.BLUE and room.match.slots[0].team == m.RED
    received(a)
    room.send(a, C.match_change_team())
    assert room.match.slots[1].team == m.RED
    assert int(last_struct(received(a)).slots[1].team) == m.RED
    room.send(a, C.match_change_team())
    assert room.match.slots[1].team == m.BLUE
    mp.set_referee_lock(room.match, True)
    room.send(a, C.match_change_team())
    assert room.match.slots[1].team == m.BLUE
    mp.set_referee_lock(room.match, False)
    assert mp.set_team(room.state, room.match, a, m.RED) and room.match.slots[1].team == m.RED
    assert not mp.set_team(room.state, room.match, a, 3)
    outsider = room.world.user("O", channels=())
    assert not mp.set_team(room.state, room.match, outsider, m.BLUE)
    room.send(room.host, C.match_start())
    room.send(a, C.match_change_team())
    assert room.match.slots[1].team == m.RED
    assert not mp.set_team(room.state, room.match, a, m.BLUE)
    mp.abort(room.state, room.match)
    mp.set_teams(room.state, room.match, team_type=m.HEAD_TO_HEAD)
    assert not mp.set_team(room.state, room.match, a, m.BLUE)
    assert [s.team for s in room.match.slots] == [m.NO_TEAM] * 16


# ================================================================================ slots
def test_change_slot_rules():
    room = Room(slot_statuses=[4, 1, 2] + [1] * 13)
    a = room.player("A")
    room.send(a, C.match_ready())
    received(a)
    room.send(a, C.match_change_slot(2))  # locked
    room.send(a, C.match_change_slot(0))  # taken
    room.send(a, C.match_change_slot(16))  # out of range
    assert room.match.slot_of(a) == 1 and not C.of(received(a), C.MATCH_UPDATE)
    room.send(a, C.match_change_slot(7))
    assert room.match.slot_of(a) == 7
    slot = room.match.slots[7]
    assert slot.status == m.READY and room.match.slots[1].status == m.OPEN and room.match.slots[1].token is None
    assert last_struct(received(a)).slots[7].user_id == a.user_id
    mp.set_referee_lock(room.match, True)
    room.send(a, C.match_change_slot(8))
    assert room.match.slot_of(a) == 7
    assert mp.move(room.state, room.match, a, 8, referee=True) and room.match.slot_of(a) == 8
    assert not mp.move(room.state, room.match, a, 8, referee=True)  # same slot


def test_host_lock_kicks_and_unlocks():
    room = Room()
    a = room.player("A")
    received(a), received(room.host)
    room.send(a, C.match_lock(0))  # not host
    assert room.match.slots[0].status == m.NOT_READY
    room.send(room.host, C.match_lock(0))  # own slot
    assert room.match.slots[0].status == m.NOT_READY
    room.send(room.host, C.match_lock(1))
    assert room.match.slots[1].status == m.LOCKED and a.match_id is None
    packets = received(a)
    assert C.values(packets, C.CHANNEL_KICKED) == ["#multiplayer"]
    assert statuses(last_struct(packets))[1] == m.LOCKED  # the kicked player sees the slot without itself
    room.send(room.host, C.match_lock(1))
    assert room.match.slots[1].status == m.OPEN
    room.send(room.host, C.match_lock(5))
    assert room.match.slots[5].status == m.LOCKED
    assert not mp.lock_slot(room.state, room.match, 5) and not mp.lock_slot(room.state, room.match, 16)
    assert not mp.unlock_slot(room.state, room.match, 4) and not mp.unlock_slot(room.state, room.match, -1)
    assert mp.unlock_slot(room.state, room.match, 5) and room.match.slots[5].status == m.OPEN


def test_set_size_and_kick():
    room = Room()
    players = [room.player(f"P{i}") for i in range(4)]
    mp.set_size(room.state, room.match, 3)
    assert [s.status for s in room.match.slots[:5]] == [m.NOT_READY] * 3 + [m.LOCKED] * 2
    assert all(s.status == m.LOCKED for s in room.match.slots[3:])
    assert players[2].match_id is None and players[3].match_id is None and players[1].match_id == room.match.id
    mp.set_size(room.state, room.match, 16)
    assert all(s.status == m.OPEN for s in room.match.slots[3:])
    for bad in (0, 17):
        with pytest.raises(mp.MatchError):
            mp.set_size(room.state, room.match, bad)
    received(players[1])
    assert mp.kick(room.state, room.match, players[1])
    assert room.match.slots[2].status == m.OPEN and players[1].match_id is None
    assert statuses(last_struct(received(players[1])))[2] == m.OPEN
    assert not mp.kick(room.state, room.match, players[1])


# ================================================================================ settings
def test_settings_host_only_and_what_is_taken():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_ready())
    new = C.make_match(name="renamed", password="pw2", beatmap_id=7, beatmap_md5="bbb", beatmap_name="B",
                       mode=2, host_id=a.user_id, scoring_type=3, team_type=2, mods=8, seed=99)
    room.send(a, C.match_change_settings(new))
    assert room.match.name == "room" and room.match.beatmap_id == 100
    received(a)
    room.send(room.host, C.match_change_settings(new))
    match = room.match
    assert (match.name, match.password, match.beatmap_id, match.beatmap_md5, match.beatmap_name) == (
        "renamed", "pw2", 7, "bbb", "B")
    assert match.mode == 2 and match.scoring_type == 3 and match.team_type == m.TEAM_VS
    assert match.host is room.host and match.mods == 8 and match.seed == 0  # the seed is not taken
    assert match.slots[1].status == m.NOT_READY  # new map: un-readied
    assert [s.team for s in match.slots[:2]] == [m.RED, m.BLUE]
    struct = last_struct(received(a))
    assert struct.name == "renamed" and struct.password == "pw2" and struct.beatmap_id == 7
    # an empty name keeps the old one; out-of-range scoring/team types are ignored
    room.send(room.host, C.match_change_settings(C.make_match(name="  ", beatmap_md5="bbb", beatmap_id=7,
                                                              scoring_type=3, team_type=2, mods=8)))
    assert match.name == "renamed" and match.scoring_type == 3 and match.team_type == m.TEAM_VS
    assert match.password == ""


def test_settings_same_map_keeps_ready_and_map_minus_one_unreadies():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_ready())
    same = C.make_match(name="room", beatmap_id=100, beatmap_md5="aaa")
    room.send(room.host, C.match_change_settings(same))
    assert room.match.slots[1].status == m.READY
    room.send(room.host, C.match_change_settings(C.make_match(name="room", beatmap_id=-1, beatmap_md5="aaa")))
    assert room.match.slots[1].status == m.NOT_READY
    room.send(a, C.match_ready(), C.match_no_beatmap())
    room.send(room.host, C.match_change_settings(C.make_match(name="room", beatmap_md5="ccc")))
    assert room.match.slots[1].status == m.NO_MAP  # NO_MAP stays


def test_settings_during_a_round_only_name_and_password():
    room = Room()
    room.send(room.host, C.match_start())
    room.send(room.host, C.match_change_settings(C.make_match(name="live", password="x", beatmap_id=5,
                                                              beatmap_md5="zzz", team_type=2)))
    assert room.match.name == "live" and room.match.password == "x"
    assert room.match.beatmap_id == 100 and room.match.team_type == m.HEAD_TO_HEAD


def test_mods_normal_and_freemod():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_ready())
    room.send(a, C.match_change_mods(8))  # not host, normal mode: ignored
    assert room.match.mods == 0 and room.match.slots[1].status == m.READY
    room.send(room.host, C.match_change_mods(64 | 8))
    assert room.match.mods == 72 and room.match.slots[1].status == m.NOT_READY
    room.send(a, C.match_ready())
    room.send(room.host, C.match_change_mods(72))  # unchanged: stays ready
    assert room.match.slots[1].status == m.READY
    # free-mod on: non-speed mods move to the players, speed mods stay on the match
    room.send(room.host, C.match_change_settings(C.make_match(name="room", mods=72, freemod=True)))
    match = room.match
    assert match.freemod and match.mods == 64
    assert match.slots[0].mods == 8 and match.slots[1].mods == 8 and match.slots[2].mods == 0
    assert match.slots[1].status == m.NOT_READY
    room.send(a, C.match_change_mods(16 | 256))
    assert match.slots[1].mods == 16 and match.mods == 64
    room.send(room.host, C.match_change_mods(2 | 256))
    assert match.slots[0].mods == 2 and match.mods == 256
    struct = last_struct(received(a))
    assert struct.freemod and int(struct.slots[1].mods) == 16
    # free-mod off: the match gets speed mods + the host's mods
    room.send(room.host, C.match_change_settings(C.make_match(name="room", freemod=False)))
    assert not match.freemod and match.mods == 256 | 2 and [s.mods for s in match.slots[:2]] == [0, 0]
    # a tag mode forces free-mod off
    room.send(room.host, C.match_change_settings(C.make_match(name="room", freemod=True, mods=256 | 2)))
    assert match.freemod
    room.send(room.host, C.match_change_settings(C.make_match(name="room", freemod=True, team_type=1)))
    assert not match.freemod and match.team_type == m.TAG_COOP


def test_referee_map_mods_and_teams():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_ready())
    mp.set_map(room.state, room.match, 55, "md5", "Map", 6)
    assert (room.match.beatmap_id, room.match.beatmap_md5, room.match.beatmap_name, room.match.mode) == (
        55, "md5", "Map", 2)
    assert room.match.slots[1].status == m.NOT_READY
    mp.set_map(room.state, room.match, 56, "", "")
    assert room.match.mode == 2
    mp.set_mods(room.state, room.match, 64 | 8, freemod=True)
    assert room.match.freemod and room.match.mods == 64
    mp.set_mods(room.state, room.match, 8)
    assert room.match.freemod and room.match.mods == 0
    mp.set_mods(room.state, room.match, 8 | (1 << 33), freemod=False)
    assert not room.match.freemod and room.match.mods == 8
    mp.set_teams(room.state, room.match, team_type=m.TAG_TEAM_VS, scoring_type=m.SCORE_V2)
    assert room.match.team_type == m.TAG_TEAM_VS and room.match.scoring_type == m.SCORE_V2
    mp.set_mods(room.state, room.match, 8, freemod=True)  # tag mode: no free-mod
    assert not room.match.freemod
    for bad in ({"team_type": 4}, {"scoring_type": -1}):
        with pytest.raises(mp.MatchError):
            mp.set_teams(room.state, room.match, **bad)
    mp.start(room.state, room.match)
    for call in (lambda: mp.set_map(room.state, room.match, 1, "", ""),
                 lambda: mp.set_mods(room.state, room.match, 0),
                 lambda: mp.set_teams(room.state, room.match, scoring_type=0)):
        with pytest.raises(mp.MatchError):
            call()


def test_password_change_tells_members():
    room = Room()
    a = room.player("A")
    received(a)
    room.send(a, C.match_change_password(C.make_match(password="nope")))
    assert room.match.password == ""
    room.send(room.host, C.match_change_password(C.make_match(password="new pw")))
    assert room.match.password == "new pw"
    packets = received(a)
    assert C.values(packets, C.MATCH_CHANGE_PASSWORD)[-1] == "new pw"
    assert last_struct(packets).password == "new pw"
    assert mp.invite_text(room.match) == f"Come join my multiplayer match: [osump://{room.match.id}/new_pw room]"


# ================================================================================ rounds
def start_round(room, *players):
    room.send(room.host, C.match_start())
    for t in (room.host, *players):
        received(t)


def test_start_plays_everyone_with_the_map():
    room = Room()
    a, b, c = room.player("A"), room.player("B"), room.player("C")
    room.send(b, C.match_no_beatmap())
    room.send(a, C.match_start())  # not host
    assert not room.match.in_progress
    for t in (room.host, a, b, c):
        received(t)
    room.send(room.host, C.match_start())
    assert room.match.in_progress
    assert [room.match.slots[i].status for i in range(4)] == [m.PLAYING, m.PLAYING, m.NO_MAP, m.PLAYING]
    assert C.of(received(a), C.MATCH_START) and C.of(received(c), C.MATCH_START)
    assert not C.of(received(b), C.MATCH_START)
    room.send(room.host, C.match_start())  # already running
    assert not C.of(received(a), C.MATCH_START)
    assert not mp.start(room.state, room.match)


def test_start_needs_an_eligible_player_and_strict_start():
    world = World()
    match = mp.create_match(world.state, None, "empty", "")
    assert not mp.start(world.state, match)
    room = Room({"PEP_MULTIPLAYER_STRICT_START": "1"})
    assert not mp.start(room.state, room.match)  # one player
    a = room.player("A")
    mp.set_teams(room.state, room.match, team_type=m.TEAM_VS)
    mp.set_team(room.state, room.match, a, m.RED)
    assert not mp.start(room.state, room.match)  # one team
    mp.set_team(room.state, room.match, a, m.BLUE)
    assert mp.start(room.state, room.match)


def test_round_barriers_and_completion():
    room = Room()
    redis = room.state.redis
    a = room.player("A")
    start_round(room, a)
    room.send(a, C.match_load_complete())
    assert not C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)
    room.send(room.host, C.match_load_complete())
    assert len(C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)) == 1
    assert len(C.of(received(room.host), C.MATCH_ALL_PLAYERS_LOADED)) == 1
    room.send(room.host, C.match_load_complete())
    assert not C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)
    room.send(a, C.match_skip_request(), C.match_skip_request())
    assert C.values(received(room.host), C.MATCH_PLAYER_SKIPPED) == [1]
    room.send(room.host, C.match_skip_request())
    packets = received(a)
    assert C.values(packets, C.MATCH_PLAYER_SKIPPED) == [1, 0] and len(C.of(packets, C.MATCH_SKIP)) == 1
    room.send(a, C.match_failed(), C.match_failed())
    assert C.values(received(room.host), C.MATCH_PLAYER_FAILED) == [1]
    frame = C.score_frame(score=777, hp=254)
    room.send(a, C.match_score_update(frame))
    relayed = C.values(received(room.host), C.MATCH_SCORE_UPDATE)
    assert len(relayed) == 1 and relayed[0].id == 1 and relayed[0].total_score == 777
    assert room.match.slots[1].score == 777 and room.match.slots[1].failed
    room.send(a, C.match_complete(), C.match_complete())
    assert room.match.in_progress and room.match.first_complete is not None
    room.send(room.host, C.match_complete())
    assert not room.match.in_progress
    for t in (room.host, a):
        packets = received(t)
        assert len(C.of(packets, C.MATCH_COMPLETE)) == 1
        assert statuses(last_struct(packets))[:2] == [m.NOT_READY, m.NOT_READY]
    assert all(not s.playing and s.passed and s.score == 0 for s in room.match.slots)


def test_round_packets_from_non_players_ignored():
    room = Room()
    a = room.player("A")
    room.send(a, C.match_no_beatmap())
    start_round(room, a)
    room.send(a, C.match_load_complete(), C.match_skip_request(), C.match_failed(),
              C.match_score_update(C.score_frame()), C.match_complete())
    assert received(room.host) == [] and not room.match.slots[1].completed
    outsider = room.world.user("O", channels=())
    room.send(outsider, C.match_complete(), C.match_load_complete())
    assert room.match.in_progress


def test_short_score_frames_refused():
    room = Room()
    a = room.player("A")
    start_round(room, a)
    with pytest.raises(codec.PacketError):
        mp.score_update(room.state, a, b"\x00" * 27)
    with pytest.raises(codec.PacketError):
        mp.score_update(room.state, a, b"\x00" * 28 + b"\x01" + b"\x00" * 15)
    mp.score_update(room.state, a, b"\x00" * 28)
    mp.score_update(room.state, a, b"\x00" * 29)
    payload = bytearray(45)
    payload[28] = 1
    mp.score_update(room.state, a, bytes(payload))
    frames, problems = codec.read_frames(room.host.drain())
    assert problems == 0 and [(i, len(p)) for i, p in frames] == [(C.MATCH_SCORE_UPDATE, n) for n in (28, 29, 45)]
    assert all(p[4] == 1 for _, p in frames)  # the slot id of A


def test_leaving_player_does_not_hold_the_round():
    room = Room()
    a, b = room.player("A"), room.player("B")
    start_round(room, a, b)
    room.send(room.host, C.match_load_complete())
    room.send(a, C.match_load_complete())
    assert not C.of(received(room.host), C.MATCH_ALL_PLAYERS_LOADED)
    room.send(b, C.match_part())
    assert C.of(received(room.host), C.MATCH_ALL_PLAYERS_LOADED)
    room.send(room.host, C.match_complete(), )
    room.send(a, C.match_part())
    assert not room.match.in_progress
    assert C.of(received(room.host), C.MATCH_COMPLETE)


def test_abort_round():
    room = Room()
    a = room.player("A")
    staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    room.send(staff, C.tournament_join_match_channel(room.match.id))
    start_round(room, a)
    received(staff)
    assert mp.abort(room.state, room.match)
    for t in (room.host, a, staff):
        assert len(C.of(received(t), C.MATCH_ABORT)) == 1
    assert not room.match.in_progress and room.match.slots[1].status == m.NOT_READY
    assert not mp.abort(room.state, room.match)


@pytest.mark.parametrize("env,load,complete", [({}, 30, 30), (
    {"PEP_MULTIPLAYER_LOAD_TIMEOUT": "5", "PEP_MULTIPLAYER_COMPLETE_TIMEOUT": "7"}, 5, 7)])
def test_round_timeouts(env, load, complete):
    """ALL_PLAYERS_LOADED is forced ``load`` s after the start (once), the round finished
    ``complete`` s after the first completion ([multiplayer] load_timeout, complete_timeout)."""
    room = Room(env)
    a = room.player("A")
    start_round(room, a)
    started = room.match.round_started = 1000.0  # whole numbers: the boundary sums below are exact floats
    mp.check_timeouts(room.state, room.match, started + load - 0.1)
    assert not C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)
    mp.check_timeouts(room.state, room.match, started + load)
    assert len(C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)) == 1
    mp.check_timeouts(room.state, room.match, started + load + 1)
    assert not C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)
    room.send(a, C.match_complete())
    assert room.match.first_complete is not None
    first = room.match.first_complete = 2000.0
    mp.check_timeouts(room.state, room.match, first + complete - 0.1)
    assert room.match.in_progress
    mp.check_timeouts(room.state, room.match, first + complete)
    assert not room.match.in_progress and C.of(received(room.host), C.MATCH_COMPLETE)


# ================================================================================ lobby, invites, tourney
def test_lobby_join_and_part():
    room = Room(password="pw")
    w = room.world.user("W", channels=("#osu",))
    lobby_channel = room.state.channels.get("#osu")
    room.send(w, C.frame(C.C_JOIN_LOBBY))
    news = C.of(received(w), C.MATCH_NEW)
    assert len(news) == 1 and news[0].value.id == room.match.id and C.match_wire_password(news[0]) == ""
    assert w.in_lobby
    room.send(w, C.frame(C.C_PART_LOBBY))
    assert not w.in_lobby
    room.send(room.host, C.match_ready())
    assert not C.of(received(w), C.MATCH_UPDATE)
    assert lobby_channel.name in w.channels  # only #lobby is left on part


def test_invites():
    room = Room(password="a b")
    a = room.player("A", password="a b")
    received(a)
    target = room.world.user("T", channels=())
    room.send(a, C.match_invite(target.user_id))
    invites = C.values(received(target), C.MATCH_INVITE)
    assert len(invites) == 1 and invites[0].sender == "A" and invites[0].target == "T"
    assert invites[0].content == f"Come join my multiplayer match: [osump://{room.match.id}/a_b room]"
    room.send(a, C.match_invite(a.user_id), C.match_invite(99999))
    assert received(a) == []
    room.send(a, C.match_invite(room.world.bot.user_id))
    assert C.values(received(a), C.SEND_MESSAGE)[0].content == mp.BOT_BUSY
    target.block_nonfriend_dms = True
    room.send(a, C.match_invite(target.user_id))
    assert C.values(received(a), C.USER_DM_BLOCKED)[0].target == "T"
    assert received(target) == []
    target.add_friend(a.user_id)
    room.send(a, C.match_invite(target.user_id))
    assert len(C.values(received(target), C.MATCH_INVITE)) == 1
    r = room.world.user("R", channels=(), restricted=True)
    room.send(a, C.match_invite(r.user_id))
    assert received(r) == []
    assert mp.invite(room.state, room.match, room.world.bot, r)
    assert len(C.values(received(r), C.MATCH_INVITE)) == 1
    outsider = room.world.user("O", channels=())
    room.send(outsider, C.match_invite(target.user_id))
    assert received(target) == []


def test_blocked_invite_tells_the_inviter():
    room = Room()
    a = room.player("A")
    target = room.world.user("T", channels=())
    target.block_nonfriend_dms = True
    received(a)
    room.send(a, C.match_invite(target.user_id))
    assert C.values(received(a), C.USER_DM_BLOCKED)[0].target == "T"


def test_tourney_info_and_observers():
    room = Room(password="pw")
    plain = room.world.user("Plain", channels=(), tournament=True)
    staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    donor = room.world.user("Donor", channels=(), tournament=True, privileges=3 | 4)
    admin = room.world.user("Admin", channels=(), tournament=True, admin=True)
    game = room.world.user("Game", channels=(), privileges=3 | TOURNEY_STAFF)
    for t in (plain, staff, donor, admin, game):
        room.send(t, C.tournament_match_info(room.match.id), C.tournament_match_info(999))
    for t in (staff, donor, admin):
        infos = C.of(received(t), C.MATCH_UPDATE)
        assert len(infos) == 1 and C.match_wire_password(infos[0]) == ""
    assert received(plain) == [] and received(game) == []
    room.send(plain, C.tournament_join_match_channel(room.match.id))
    assert plain.tourney_match_id is None and received(plain) == []
    room.send(staff, C.tournament_join_match_channel(room.match.id))
    assert C.values(received(staff), C.CHANNEL_JOIN_SUCCESS) == ["#multiplayer"]
    room.send(room.host, C.match_ready())
    assert C.of(received(staff), C.MATCH_UPDATE)
    room.send(staff, C.tournament_leave_match_channel(room.match.id))
    assert C.values(received(staff), C.CHANNEL_KICKED) == ["#multiplayer"] and staff.tourney_match_id is None
    room.send(staff, C.tournament_leave_match_channel(room.match.id))
    assert received(staff) == []
    room.send(staff, C.tournament_join_match_channel(room.match.id))
    mp.leave_match(room.state, staff)
    assert staff.token not in room.match.observers and staff.tourney_match_id is None


def test_logout_leaves_the_match():
    room = Room()
    a = room.player("A")
    received(room.host)
    room.send(a, C.logout())
    assert room.match.slot_of(a) is None and room.match.slots[1].status == m.OPEN
    assert statuses(last_struct(received(room.host)))[1] == m.OPEN


def test_match_ids_increase_and_wrap():
    lst = m.MatchList()
    first = lst.allocate_id()
    assert first == 1
    lst.add(m.Match(first, "a"))
    assert lst.allocate_id() == 2
    with pytest.raises(ValueError):
        lst.add(m.Match(first, "dup"))
    lst.remove(first)
    assert lst.allocate_id() == 3  # not reused at once
    lst._next = m.MAX_ID
    assert lst.allocate_id() == m.MAX_ID
    assert lst.allocate_id() == 1
    assert lst.get(None) is None and first not in lst and len(lst) == 0


# ================================================================================ return values and refusal texts
# (the packet handlers ignore the results, the referee commands and the API do not)
def test_results_of_player_actions():
    room = Room(slot_statuses=[4, 1, 1, 2] + [1] * 12)
    a = room.player("A")
    st, match, host = room.state, room.match, room.host
    assert mp.set_ready(st, a, True) is True and mp.set_ready(st, a, True) is False
    assert mp.set_ready(st, a, False) is True and mp.set_ready(st, a, False) is False
    assert mp.set_has_map(st, a, False) is True and mp.set_has_map(st, a, False) is False
    assert mp.set_has_map(st, a, True) is True and mp.set_has_map(st, a, True) is False
    assert mp.change_team(st, a) is False
    mp.set_teams(st, match, team_type=m.TEAM_VS)
    assert mp.change_team(st, a) is True
    assert mp.toggle_lock(st, a, 2) is False  # not host
    assert mp.toggle_lock(st, host, 0) is False  # own slot
    assert mp.toggle_lock(st, host, 16) is False and mp.toggle_lock(st, host, -1) is False
    assert mp.toggle_lock(st, host, 15) is True and match.slots[15].status == m.LOCKED
    assert mp.toggle_lock(st, host, 15) is True and match.slots[15].status == m.OPEN
    assert mp.toggle_lock(st, host, 3) is True and match.slots[3].status == m.OPEN  # was locked
    assert mp.move(st, match, a, 0) is False  # taken
    assert mp.move(st, match, a, 15) is True and match.slot_of(a) == 15
    assert mp.move(st, match, a, 16) is False and mp.move(st, match, a, -1) is False
    assert mp.move(st, match, host, 1) is True and match.slot_of(host) == 1
    assert mp.move(st, match, host, 0) is True
    assert mp.transfer_host(st, a, 0) is False  # not host
    assert mp.transfer_host(st, host, 0) is False  # itself
    assert mp.transfer_host(st, host, 16) is False and mp.transfer_host(st, host, 2) is False
    assert mp.transfer_host(st, host, 15) is True and match.host is a
    assert mp.transfer_host(st, a, 0) is True and match.host is host
    assert mp.change_mods(st, a, 8) is False and mp.change_mods(st, host, 8) is True
    settings = C.make_match(name="x")
    assert mp.change_settings(st, a, codec.read_match(C.match_payload(settings))) is False
    assert mp.change_settings(st, host, codec.read_match(C.match_payload(settings))) is True
    assert mp.change_password(st, a, "p") is False and mp.change_password(st, host, "p") is True
    outsider = room.world.user("O", channels=())
    for call in (lambda t: mp.set_ready(st, t, True), lambda t: mp.set_has_map(st, t, True),
                 lambda t: mp.change_team(st, t), lambda t: mp.toggle_lock(st, t, 1),
                 lambda t: mp.transfer_host(st, t, 1), lambda t: mp.change_mods(st, t, 0),
                 lambda t: mp.change_password(st, t, "x"), lambda t: mp.invite_user(st, t, a.user_id),
                 lambda t: mp.leave(st, t)):
        assert call(outsider) is False
    assert mp.invite_user(st, a, outsider.user_id) is True and mp.invite_user(st, a, 4242) is False
    assert mp.join_from_packet(st, outsider, match.id, "p") is True
    assert mp.join_from_packet(st, outsider, match.id, "p") is False
    assert mp.observe(st, outsider, match.id) is False


def test_a_dangling_match_pointer_is_repaired():
    room = Room()
    a = room.player("A")
    a.match_id = 4242  # a match that does not exist
    assert mp.set_ready(room.state, a, True) is False and a.match_id is None
    b = room.world.user("B", channels=())
    b.match_id = room.match.id  # points at a match it does not sit in
    assert mp.change_mods(room.state, b, 8) is False and b.match_id is None


def test_refusal_texts():
    room = Room(password="pw", slot_statuses=[4, 1] + [2] * 14)
    st, match = room.state, room.match
    a = room.world.user("A", channels=())
    cases = [
        (lambda: mp.join(st, room.host, match, None), "You are already in this match."),
        (lambda: mp.join(st, a, match, "no"), "Wrong password."),
        (lambda: mp.join(st, room.world.user("T", channels=(), tournament=True), match, None),
         "Tournament clients cannot play in matches."),
        (lambda: mp.set_size(st, match, 0), "Size must be between 1 and 16."),
        (lambda: mp.set_teams(st, match, team_type=4), "Match team type must be between 0 and 3"),
        (lambda: mp.set_teams(st, match, scoring_type=4), "Match scoring type must be between 0 and 3"),
        (lambda: mp.set_host(st, match, None), "Only tournament matches (!mp make) can be without a host."),
        (lambda: mp.create_match(st, a, "  "), "Match name must not be empty!"),
        (lambda: mp.create_match(st, a, "n" * 51), "Match name must be at most 50 characters long!"),
        (lambda: mp.create_match(st, room.world.user("T2", channels=(), tournament=True), "x"),
         "Tournament clients cannot play in matches."),
    ]
    for call, text in cases:
        with pytest.raises(mp.MatchError) as info:
            call()
        assert str(info.value) == text
    mp.join(st, a, match, "pw")
    with pytest.raises(mp.MatchError, match=r"^The match is full\.$"):
        mp.join(st, room.world.user("C", channels=()), match, None)
    mp.start(st, match)
    for call in (lambda: mp.set_map(st, match, 1, "", ""), lambda: mp.set_mods(st, match, 0),
                 lambda: mp.set_teams(st, match, scoring_type=1)):
        with pytest.raises(mp.MatchError, match=r"^The match is in progress\.$"):
            call()
    mp.dispose(st, match)
    with pytest.raises(mp.MatchError, match=r"^That match does not exist anymore\.$"):
        mp.join(st, room.world.user("D", channels=()), match, None)


def test_boundaries_of_referee_values():
    room = Room()
    st, match = room.state, room.match
    mp.set_size(st, match, 1)
    assert match.slots[0].status == m.NOT_READY and all(s.status == m.LOCKED for s in match.slots[1:])
    mp.set_size(st, match, 16)
    assert all(s.status == m.OPEN for s in match.slots[1:])
    mp.set_teams(st, match, scoring_type=0)
    mp.set_teams(st, match, scoring_type=3)
    assert match.scoring_type == 3
    mp.set_teams(st, match, team_type=3)
    mp.set_teams(st, match, team_type=0)
    assert match.team_type == 0
    assert not mp.lock_slot(st, match, -1) and mp.lock_slot(st, match, 15)
    assert mp.unlock_slot(st, match, 15) and not mp.unlock_slot(st, match, 16)


def test_per_user_match_limit():
    world = World({"PEP_LIMITS_MAX_MATCHES_PER_USER": "1"})
    referee = world.user("Ref", channels=())
    mp.create_match(world.state, None, "one", "", creator=referee)
    with pytest.raises(mp.MatchError, match=r"^You already have 1 open matches; close one first\.$"):
        mp.create_match(world.state, None, "two", "", creator=referee)
    host = world.user("Host", channels=())
    first = mp.create_match(world.state, host, "mine", "")
    second = mp.create_match(world.state, host, "again", "")  # its own match is left first
    assert first.disposed and not second.disposed


def test_round_results_published_on_completion():
    world = World(redis=True)
    host = world.user("Host", channels=())

    async def scenario():
        world.send(host, C.match_create(C.make_match(name="res", host_id=host.user_id, beatmap_id=77, mode=1)))
        match = world.state.matches.get(host.match_id)
        mp.set_teams(world.state, match, team_type=m.TEAM_VS)
        world.send(host, C.match_change_mods(8))
        world.send(host, C.match_start(), C.match_score_update(C.score_frame(score=4321)), C.match_failed(),
                   C.match_complete())
        await world.state.drain_tasks()
        return match

    match = asyncio.run(scenario())
    published = [args for name, args in world.redis.calls if name == "publish"]
    assert len(published) == 1 and published[0][0] == mp.COMPLETE_CHANNEL
    body = __import__("json").loads(published[0][1])
    assert body == {"id": match.id, "name": "res", "beatmap_id": 77, "mods": 8, "game_mode": 1,
                    "scores": {str(host.user_id): {"score": 4321, "mods": 0, "failed": False, "pass": False,
                                                   "team": m.RED}}}


def test_no_results_when_nobody_finished():
    world = World(redis=True)
    room_host = world.user("Host", channels=())
    world.send(room_host, C.match_create(C.make_match(name="r", host_id=room_host.user_id)))
    match = world.state.matches.get(room_host.match_id)
    world.send(room_host, C.match_start())
    world.send(room_host, C.match_part())
    assert match.disposed
    assert [n for n, _ in world.redis.calls if n == "publish"] == []


def test_second_round_sends_barriers_again_and_start_struct():
    room = Room(password="pw")
    a = room.player("A", password="pw")
    for _ in range(2):
        room.match.starting = True
        room.send(room.host, C.match_start())
        assert not room.match.starting
        started = C.of(received(a), C.MATCH_START)
        assert len(started) == 1 and started[0].value.password == "pw"
        for t in (room.host, a):
            room.send(t, C.match_load_complete(), C.match_skip_request())
        packets = received(a)
        assert len(C.of(packets, C.MATCH_ALL_PLAYERS_LOADED)) == 1 and len(C.of(packets, C.MATCH_SKIP)) == 1
        for t in (room.host, a):
            room.send(t, C.match_complete())
        assert not room.match.in_progress and not room.match.loaded_sent and not room.match.skip_sent
        assert room.match.first_complete is None


def test_dispose_details():
    room = Room(slot_statuses=[4, 1, 2] + [1] * 13)
    a = room.player("A")
    staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    mp.observe(room.state, staff, room.match.id)
    room.match.observers[a.token] = a  # a member who also observes is told once
    room.send(room.host, C.match_start())
    for t in (a, staff):
        received(t)
    mp.dispose(room.state, room.match)
    assert len(C.of(received(a), C.MATCH_DISPOSE)) == 1
    assert [s.status for s in room.match.slots[:3]] == [m.OPEN, m.OPEN, m.LOCKED]
    assert room.match.host is None and not room.match.in_progress and room.match.observers == {}


def test_part_lobby_closes_the_lobby_channel():
    room = Room()
    lobby = Channel("#lobby", "lobby")
    room.state.channels.add(lobby)
    w = room.world.user("W", channels=("#lobby",))
    room.send(w, C.frame(C.C_JOIN_LOBBY))
    received(w)
    room.send(w, C.frame(C.C_PART_LOBBY))
    assert C.values(received(w), C.CHANNEL_KICKED) == ["#lobby"] and "#lobby" not in w.channels
    room.send(w, C.frame(C.C_JOIN_LOBBY))
    mp.leave_match(room.state, w)
    assert not w.in_lobby and w.token not in room.state.lobby.members


def test_leaving_a_match_whose_channel_is_gone_still_closes_the_tab():
    room = Room()
    a = room.player("A")
    room.state.channels.remove(room.match.channel_name)
    received(a)
    mp.leave(room.state, a)
    assert C.values(received(a), C.CHANNEL_KICKED) == ["#multiplayer"]


def test_join_stops_spectating():
    room = Room()
    target = room.world.user("Streamer", channels=())
    a = room.world.user("A", channels=())
    room.send(a, C.start_spectating(target.user_id))
    assert a.spectating is target
    room.send(a, C.match_join(room.match.id))
    assert a.spectating is None and room.match.slot_of(a) == 1


def test_settings_out_of_range_types_ignored():
    room = Room()
    data = codec.read_match(C.match_payload(C.make_match(name="room", scoring_type=2, team_type=2)))
    data.scoring_type, data.team_type = 4, 4
    assert mp.change_settings(room.state, room.host, data)
    assert room.match.scoring_type == 0 and room.match.team_type == 0
    data.scoring_type, data.team_type = -1, 3
    mp.change_settings(room.state, room.host, data)
    assert room.match.scoring_type == 0 and room.match.team_type == 3
    data.team_type = 0
    mp.change_settings(room.state, room.host, data)
    assert room.match.team_type == 0


def test_freemod_off_takes_the_hosts_mods():
    room = Room()
    a = room.player("A")
    mp.set_mods(room.state, room.match, 64, freemod=True)
    room.send(room.host, C.match_change_mods(8 | 64))
    room.send(a, C.match_change_mods(16))
    mp.set_teams(room.state, room.match, team_type=m.TAG_COOP)  # a tag mode turns free-mod off
    assert not room.match.freemod and room.match.mods == 64 | 8
    mp.set_teams(room.state, room.match, team_type=m.HEAD_TO_HEAD)
    room.send(room.host, C.match_change_settings(C.make_match(name="room", freemod=True, mods=64 | 8)))
    room.match.host = None
    data = codec.read_match(C.match_payload(C.make_match(name="room", freemod=False)))
    mp.set_host(room.state, room.match, room.host)
    room.match.slots[0].mods = 0
    mp.change_settings(room.state, room.host, data)
    assert room.match.mods == 64  # host without mods: only the speed mods stay


# ================================================================================ the match object
def test_a_fresh_match_and_its_struct():
    before = time.monotonic()
    match = m.Match(7, "fresh")
    assert (match.password, match.beatmap_name, match.beatmap_id, match.beatmap_md5, match.mode, match.seed) == (
        "", "", 0, "", 0, 0)
    assert (match.mods, match.scoring_type, match.team_type) == (0, m.SCORE, m.HEAD_TO_HEAD)
    assert match.freemod is False and match.in_progress is False and match.tourney is False
    assert match.host is None and match.host_id == -1 and match.creator_id is None
    assert match.referee_locked is False and match.starting is False and match.disposed is False
    assert match.loaded_sent is False and match.skip_sent is False
    assert match.round_started == 0.0 and match.first_complete is None
    assert before <= match.created <= time.monotonic() and match.empty_since == match.created
    assert match.observers == {} and len(list(match)) == 16 and all(isinstance(s, m.Slot) for s in match)
    assert all((s.status, s.team, s.mods, s.token) == (m.OPEN, m.NO_TEAM, 0, None) for s in match.slots)
    assert match.channel_name == "#multi_7" and repr(match) == "<Match 7 'fresh' host=-1 0/16>"
    struct = C.decode_packets(match.packet(C.MATCH_UPDATE, censored=False))[0].value
    assert (struct.id, struct.in_progress, int(struct.type), struct.name, struct.password) == (7, False, 0, "fresh", "")
    assert (struct.beatmap_text, struct.beatmap_id, struct.beatmap_checksum, struct.host_id) == ("", 0, "", -1)
    assert (int(struct.mode), int(struct.scoring_type), int(struct.team_type), struct.freemod, struct.seed) == (
        0, 0, 0, False, 0)
    assert match._lobby_update is None and match._lobby_new is None


def test_struct_follows_the_match():
    world = World()
    a, b = world.user("A", channels=()), world.user("B", channels=())
    match = m.Match(9, "room", "pw", beatmap_name="Song", beatmap_id=12, beatmap_md5="abc", mode=2, seed=77,
                    tourney=True)
    match.slots[3].seat(a, m.BLUE)
    match.slots[5].seat(b, m.RED)
    match.slots[5].status = m.PLAYING
    match.slots[5].playing = True
    match.host = b
    match.in_progress = True
    match.mods = 64
    match.freemod = True
    match.slots[3].mods = 8
    packet = C.of(C.decode_packets(match.packet(C.MATCH_START, censored=False)), C.MATCH_START)[0]
    s = packet.value
    assert s.in_progress and s.password == "pw" and s.beatmap_text == "Song" and s.beatmap_id == 12
    assert s.beatmap_checksum == "abc" and int(s.mode) == 2 and s.seed == 77 and s.host_id == b.user_id
    assert [sl.user_id for sl in s.slots if sl.has_player] == [a.user_id, b.user_id]
    assert int(s.slots[3].mods) == 8 and int(s.slots[5].team) == m.RED and s.freemod and int(s.mods) == 64
    lobby = C.of(C.decode_packets(match.lobby_update()), C.MATCH_UPDATE)[0]
    assert C.match_wire_password(lobby) == ""
    assert match.lobby_update() is match.lobby_update() and match.lobby_new() is match.lobby_new()
    assert C.of(C.decode_packets(match.lobby_new()), C.MATCH_NEW)[0].value.id == 9
    cached = match.lobby_update()
    match.invalidate()
    assert match._lobby_update is None and match._lobby_new is None and match.lobby_update() is not cached
    match.password = ""
    match.invalidate()
    assert C.match_wire_password(C.of(C.decode_packets(match.lobby_update()), C.MATCH_UPDATE)[0]) is None
    assert match.members() == [a, b] and match.occupied_count() == 2
    assert match.playing_slots() == [(5, match.slots[5])] and match.playing_tokens() == [b]
    assert match.slot_of(b) == 5 and match.slot_of(world.user("C", channels=())) is None
    assert match.lowest_open() == 0
    for slot in match.slots:
        if slot.status == m.OPEN:
            slot.status = m.LOCKED
    assert match.lowest_open() is None
    assert repr(match) == f"<Match 9 'room' host={b.user_id} 2/16>"


def test_slot_life_cycle():
    world = World()
    a = world.user("A", channels=())
    slot = m.Slot()
    assert not slot.occupied and repr(slot) == "<Slot 1 team=0 mods=0 ->"
    slot.seat(a, m.RED)
    assert slot.occupied and (slot.status, slot.team, slot.mods, slot.token) == (m.NOT_READY, m.RED, 0, a)
    slot.playing, slot.loaded, slot.skipped, slot.completed = True, True, True, True
    slot.failed, slot.passed, slot.score, slot.mods = True, False, 99, 8
    assert repr(slot) == "<Slot 4 team=2 mods=8 A playing>"
    slot.reset_round()
    assert (slot.playing, slot.loaded, slot.skipped, slot.completed, slot.failed, slot.passed, slot.score) == (
        False, False, False, False, False, True, 0)
    slot.clear(m.LOCKED)
    assert (slot.status, slot.team, slot.mods, slot.token) == (m.LOCKED, m.NO_TEAM, 0, None)
    for status in (m.NOT_READY, m.READY, m.NO_MAP, m.PLAYING, m.COMPLETE):
        slot.status = status
        assert slot.occupied
    for status in (m.OPEN, m.LOCKED, m.QUIT):
        slot.status = status
        assert not slot.occupied
    assert [m.parity_team(i) for i in range(4)] == [m.RED, m.BLUE, m.RED, m.BLUE]


def test_match_list_ids():
    import types

    lst = m.MatchList()
    assert lst.get(None) is None and lst.get(1) is None and lst.remove(1) is None
    for expected in (1, 2, 3):
        assert lst.allocate_id() == expected
        lst.add(types.SimpleNamespace(id=expected))
    assert lst.allocate_id() == 4 and len(lst) == 3 and 2 in lst and 4 not in lst
    assert [x.id for x in lst] == [1, 2, 3]
    assert lst.remove(2).id == 2 and lst.get(2) is None
    lst._next = 1  # ids in use are skipped, the next free one after them is taken
    assert lst.allocate_id() == 2
    lst._next = 3
    assert lst.allocate_id() == 4
    full = m.MatchList()
    for i in range(1, m.MAX_ID):
        full.add(types.SimpleNamespace(id=i))
    full._next = 5
    assert full.allocate_id() == m.MAX_ID  # the one free id, found by counting up and wrapping
    full.add(types.SimpleNamespace(id=m.MAX_ID))
    assert full.allocate_id() is None and len(full) == m.MAX_ID


# ================================================================================ smaller rules
def test_logged_events(caplog):
    room = Room()
    a = room.player("A")
    with caplog.at_level(logging.INFO, logger="pep.multiplayer"):
        start_round(room, a)
        mp.check_timeouts(room.state, room.match, room.match.round_started + 30)
        room.send(a, C.match_complete())
        mp.check_timeouts(room.state, room.match, room.match.first_complete + 30)
        start_round(room, a)
        mp.abort(room.state, room.match)
        mp.dispose(room.state, room.match)
    got = [r.getMessage() for r in caplog.records]
    mid = room.match.id
    for text in (f"match {mid}: round started with 2 player(s)",
                 f"match {mid}: load timeout, players started without the missing ones",
                 f"match {mid}: completion timeout, finishing the round",
                 f"match {mid}: round complete (2 player(s))",
                 f"match {mid}: round aborted",
                 f"match {mid} 'room' disposed"):
        assert text in got, text


def test_check_timeouts_uses_the_clock():
    room = Room()
    a = room.player("A")
    start_round(room, a)
    room.match.round_started -= 31
    mp.check_timeouts(room.state, room.match)
    assert C.of(received(a), C.MATCH_ALL_PLAYERS_LOADED)


def test_defaults_of_password_and_map():
    room = Room(password="pw")
    mp.set_password(room.state, room.match, None)
    assert room.match.password == ""
    mp.set_map(room.state, room.match, 5, None, None)
    assert room.match.beatmap_md5 == "" and room.match.beatmap_name == ""


def test_host_can_lock_slot_zero_from_another_slot():
    room = Room()
    mp.move(room.state, room.match, room.host, 3)
    assert mp.toggle_lock(room.state, room.host, 0) and room.match.slots[0].status == m.LOCKED
    a = room.player("A")
    assert mp.move(room.state, room.match, a, 0) is False
    assert mp.transfer_host(room.state, room.host, 1) and room.match.host is a


def test_freemod_off_without_a_host_keeps_only_speed_mods():
    world = World()
    match = mp.create_match(world.state, None, "tourney", "")
    a = world.user("A", channels=())
    mp.join(world.state, a, match, None)
    mp.set_mods(world.state, match, 64, freemod=True)
    match.slots[match.slot_of(a)].mods = 8
    mp.set_teams(world.state, match, team_type=m.TAG_COOP)
    assert match.freemod is False and match.mods == 64


def test_size_kicks_see_themselves_gone():
    room = Room()
    a, b = room.player("A"), room.player("B")
    received(b)
    mp.set_size(room.state, room.match, 2)
    struct = last_struct(received(b))
    assert statuses(struct)[2] == m.LOCKED and all(s.user_id != b.user_id for s in struct.slots if s.has_player)


def test_observer_results_and_stale_channels():
    room = Room()
    staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    assert mp.observe(room.state, staff, room.match.id) is True
    assert mp.observe(room.state, staff, 999) is False
    assert mp.stop_observing(room.state, staff, room.match.id) is True
    assert mp.stop_observing(room.state, staff, room.match.id) is False
    assert mp.stop_observing(room.state, staff, 999) is False
    assert mp.observe(room.state, room.host, room.match.id) is False  # a seated player
    mp.observe(room.state, staff, room.match.id)
    staff.channels.update({"#multi_999", "#multi_x"})  # names of channels without a match
    room.send(staff, C.frame(C.C_JOIN_LOBBY))
    received(staff)
    mp.dispose(room.state, room.match)
    assert len(C.of(received(staff), C.MATCH_DISPOSE)) == 1  # an observer in the lobby is told once
    assert room.match.in_progress is False
    mp.leave_match(room.state, staff)
    assert staff.in_lobby is False and staff.tourney_match_id is None


# ================================================================================ logs, defaults, limits
def mp_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "pep.multiplayer"]


def test_life_cycle_is_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger="pep.multiplayer"):
        room = Room(password="pw")
        a = room.player("A", password="pw")
        room.player("B", password="nope")
        room.send(a, C.match_part())
        room.send(room.host, C.match_create(C.make_match(name="  ", host_id=room.host.user_id)))
        ref = mp.create_match(room.state, None, "refereed")
    mid = room.match.id
    assert mp_lines(caplog) == [
        f"match {mid} 'room' created by Host",
        f"match {mid}: A joined slot 1",
        f"join of match {mid} refused for B: Wrong password.",
        f"match {mid}: A left slot 1",
        "create refused for Host: Match name must not be empty!",
        f"match {ref.id} 'refereed' created by a referee (tourney)",
    ]


def test_a_referees_match_and_its_defaults():
    world = World()
    match = mp.create_match(world.state, None, "refereed")
    assert (match.password, match.beatmap_name, match.beatmap_id, match.beatmap_md5, match.mode, match.seed) == (
        "", "", 0, "", 0, 0)
    assert match.tourney and match.host is None and match.creator_id is None
    channel = world.state.channels.get(match.channel_name)
    assert channel.description == f"Multiplayer match #{match.id}" and channel.hidden is True
    assert world.bot in channel.members and match.channel_name in world.bot.channels
    assert match.channel_name not in [c.name for c in world.state.channels.listed()]
    player = mp.create_match(world.state, world.user("P", channels=()), "played", tourney=False)
    assert not player.tourney and player.empty_since is None


def test_create_packet_fields_are_taken():
    room = Room(beatmap_name="Some - Song [Hard]", seed=1234, team_type=2)
    struct = last_struct(room.created, C.MATCH_JOIN_SUCCESS)
    assert room.match.beatmap_name == "Some - Song [Hard]" and struct.beatmap_text == "Some - Song [Hard]"
    assert room.match.seed == 1234
    # the packet's team type is not taken: a new match is head-to-head, the host in no team
    assert room.match.team_type == m.HEAD_TO_HEAD and teams(struct) == [m.NO_TEAM] * 16


def test_creating_a_match_stops_spectating():
    world = World()
    star, fan = world.user("Star", channels=()), world.user("Fan", channels=())
    from services import spectate
    spectate.start_spectating(world.state, fan, star.user_id)
    received(star)
    world.send(fan, C.match_create(C.make_match(name="room", host_id=fan.user_id)))
    assert fan.spectating is None and fan.match_id is not None
    assert C.values(received(star), C.SPECTATOR_LEFT) == [fan.user_id]


def test_rate_limits_of_creates_and_starts_notify_once(caplog):
    room = Room({"PEP_LIMITS_MATCH_CREATES": "1", "PEP_LIMITS_ROUND_STARTS": "1"})
    host = room.host
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            room.send(host, C.match_create(C.make_match(name="again", host_id=host.user_id)))
        got = received(host)
        assert len(C.of(got, C.MATCH_JOIN_FAIL)) == 3
        assert C.values(got, C.NOTIFICATION) == [mp.NOTICE_CREATE_RATE]
        a = room.player("A")
        for _ in range(3):
            room.send(host, C.match_start())
            mp.abort(room.state, room.match)
        assert C.values(received(host), C.NOTIFICATION) == [mp.NOTICE_START_RATE]
    lines = [r.getMessage() for r in caplog.records if r.name == "pep.ratelimit" or "refused, more than" in r.getMessage()]
    assert lines == [f"user={host.user_id} name=Host: match creation refused, more than 1 in 60 s (dropping until the window ends)",
                     f"user={host.user_id} name=Host: round start refused, more than 1 in 60 s (dropping until the window ends)"]
    assert a.match_id == room.match.id


def test_join_from_packet_results():
    room = Room(password="pw")
    r = room.world.user("Rex", channels=(), restricted=True)
    b = room.world.user("Bob", channels=())
    assert mp.join_from_packet(room.state, r, room.match.id, "pw") is False
    assert mp.join_from_packet(room.state, b, 65000, "pw") is False
    assert mp.join_from_packet(room.state, b, room.match.id, "bad") is False
    assert mp.join_from_packet(room.state, b, room.match.id, "pw") is True


def test_a_round_running_too_long_is_aborted(caplog):
    room = Room()
    a = room.player("A")
    start_round(room, a)
    started = room.match.round_started = 1000.0  # whole numbers: the sums below are exact floats
    limit = room.state.cfg.multiplayer.round_timeout
    with caplog.at_level(logging.INFO, logger="pep.multiplayer"):
        mp.check_timeouts(room.state, room.match, started + limit - 0.5)
        assert room.match.in_progress
        mp.check_timeouts(room.state, room.match, started + limit)
    assert not room.match.in_progress and len(C.of(received(a), C.MATCH_ABORT)) == 1
    assert f"match {room.match.id}: round running for {limit:.0f} s, aborting it" in mp_lines(caplog)


def test_slot_accuracy_per_mode():
    """The client's accuracy formulas of the last score frame (``!mp`` scrims rank by it)."""
    slot = m.Match(1, "acc").slots[0]
    assert [slot.accuracy(mode) for mode in range(4)] == [0.0] * 4  # no frame yet
    slot.hits = (90, 5, 3, 10, 4, 2)  # 300, 100, 50, geki, katu, miss
    assert slot.accuracy(0) == pytest.approx(100 * (27000 + 500 + 150) / 300 / 100)
    assert slot.accuracy(1) == pytest.approx(100 * 92.5 / 97)
    assert slot.accuracy(2) == pytest.approx(100 * 98 / 104)
    assert slot.accuracy(3) == pytest.approx(100 * (30000 + 800 + 500 + 150) / 300 / 114)
    assert slot.accuracy(7) == slot.accuracy(0)  # anything else: standard
    slot.hits = (0, 0, 0, 5, 0, 0)  # only gekis: mania counts them, the others have nothing
    assert (slot.accuracy(0), slot.accuracy(3)) == (0.0, 100.0)


# ================================================================================ snapshot records
def _restore(data, now=1000.0, tokens=None):
    from objects.snapshot import Record

    return m.match_from_snapshot(Record(data, "matches[0]"), now, tokens or {})


def test_snapshot_round_trip_keeps_every_setting():
    match = m.Match(7, "name", "pw", beatmap_name="Song", beatmap_id=-5, beatmap_md5="abc", mode=2, seed=-9,
                    tourney=True)
    match.mods, match.scoring_type, match.team_type, match.freemod, match.creator_id = 64, 3, 2, True, 77
    match.created, match.empty_since, match.round_started, match.first_complete = 900.0, 950.0, 0.0, None
    match.slots[3].status = m.LOCKED
    match.slots[5].team, match.slots[5].mods, match.slots[5].score = 2, 8, -(2**63)
    data = m.match_to_snapshot(match, 1000.0)
    back = _restore(data)
    assert (back.id, back.name, back.password, back.beatmap_name, back.beatmap_id, back.beatmap_md5, back.mode,
            back.seed, back.tourney) == (7, "name", "pw", "Song", -5, "abc", 2, -9, True)
    assert (back.mods, back.scoring_type, back.team_type, back.freemod, back.creator_id) == (64, 3, 2, True, 77)
    assert (back.created, back.empty_since, back.round_started, back.first_complete) == (900.0, 950.0, 0.0, None)
    assert back.announced is True
    assert back.slots[3].status == m.LOCKED and (back.slots[5].team, back.slots[5].mods, back.slots[5].score) == (
        2, 8, -(2**63))
    data["round_age"], data["first_complete_age"] = 30.0, 5.0
    back = _restore(data)
    assert (back.round_started, back.first_complete) == (970.0, 995.0)


@pytest.mark.parametrize("key, good, bad", [
    ("id", 65535, 65536), ("mode", 3, 4), ("scoring_type", 3, 4), ("team_type", 3, 4),
    ("beatmap_id", 2**31 - 1, 2**31), ("beatmap_id", -(2**31 - 1), -(2**31)), ("seed", -(2**31), -(2**31) - 1),
    ("seed", 2**31 - 1, 2**31), ("mods", 2**31 - 1, 2**31), ("creator_id", 0, -1), ("creator_id", 2**31 - 1, 2**31),
    ("name", "n" * 256, "n" * 257), ("password", "p" * 256, "p" * 257), ("beatmap_name", "b" * 1024, "b" * 1025),
    ("beatmap_md5", "m" * 64, "m" * 65),
])
def test_snapshot_fields_are_bounded(key, good, bad):
    from objects.snapshot import SnapshotError

    data = m.match_to_snapshot(m.Match(1, "x"), 1000.0)
    data[key] = good
    assert getattr(_restore(dict(data)), key) == good
    data[key] = bad
    with pytest.raises(SnapshotError, match=rf"^matches\[0\]\.{key}: "):
        _restore(data)


@pytest.mark.parametrize("key, good, bad", [
    ("status", m.QUIT, 255), ("team", 2, 3), ("mods", 2**31 - 1, 2**31), ("score", 2**63 - 1, 2**63),
    ("score", -(2**63), -(2**63) - 1),
])
def test_snapshot_slot_fields_are_bounded(key, good, bad):
    from objects.snapshot import SnapshotError

    data = m.match_to_snapshot(m.Match(1, "x"), 1000.0)
    data["slots"][2][key] = good
    assert getattr(_restore(data).slots[2], key) == good
    data["slots"][2][key] = bad
    with pytest.raises(SnapshotError, match=rf"^matches\[0\]\.slots\[2\]\.{key}: "):
        _restore(data)


def test_snapshot_slot_errors_say_where():
    from objects.snapshot import SnapshotError

    data = m.match_to_snapshot(m.Match(1, "x"), 1000.0)
    data["slots"] = data["slots"][:15]
    with pytest.raises(SnapshotError, match=r"^matches\[0\]\.slots: expected 16 slots$"):
        _restore(data)
    data = m.match_to_snapshot(m.Match(1, "x"), 1000.0)
    data["slots"][4]["status"] = m.NOT_READY  # occupied, but no token
    with pytest.raises(SnapshotError, match=r"^matches\[0\]\.slots\[4\]\.token: an occupied slot needs a token$"):
        _restore(data)
    data["slots"][4]["status"] = 3  # not a status
    with pytest.raises(SnapshotError, match=r"^matches\[0\]\.slots\[4\]\.status: not a slot status$"):
        _restore(data)


def test_an_eight_slot_build_joins_only_while_slots_9_to_16_are_empty():
    """Builds before b20140528 show 8 slots: a player in slot 9 (index 8) keeps them out, one
    in slot 8 (index 7) does not."""
    room = Room(open_slots=15)
    new = room.player("New")
    room.send(new, C.match_change_slot(8))
    assert room.match.slot_of(new) == 8
    old = room.player("Old", version=20130816)
    assert C.of(received(old), C.MATCH_JOIN_FAIL) and room.match.slot_of(old) is None
    room.send(new, C.match_change_slot(7))
    assert room.match.slot_of(new) == 7
    old2 = room.player("Old2", version=20130816)
    assert room.match.slot_of(old2) is not None and room.match.slot_of(old2) < 8


def test_match_views_per_layout_and_censoring():
    """``Match.view``: an 8-slot build gets the match in its own layout (cached until the next
    change), the modern one the shared lobby packets when censored; only the censored views hide
    the password."""
    from helpers.layout import MODERN, layout_for_build

    old_build = 20130816
    old = layout_for_build(old_build)
    old_io = C.client_io(old_build, old.protocol)
    room = Room(password="pw")
    match = room.match

    def decoded(data, io=C.IO):
        [packet] = C.decode_packets(data, io)
        return packet.id, packet.value

    for packet_id in (codec.MATCH_UPDATE, codec.NEW_MATCH, codec.MATCH_JOIN_SUCCESS):
        for censored in (False, True):
            data = match.view(packet_id, censored, old)
            pid, struct = decoded(data, old_io)
            assert pid == packet_id and len(struct.slots) == 8
            # read in the 8-slot layout, the fields after the slots are the match's own
            assert struct.slots[0].user_id == room.host.user_id and struct.host_id == room.host.user_id
            assert int(struct.mode) == match.mode and data == match.packet(packet_id, censored, old)
            hidden = struct.password != "pw"
            assert hidden is censored, (packet_id, censored)
            for layout in (None, MODERN):
                pid, struct = decoded(match.view(packet_id, censored, layout))
                assert pid == packet_id and len(struct.slots) == 16
                assert (struct.password != "pw") is censored, (packet_id, censored, layout)
    assert match.view(codec.MATCH_UPDATE, True, MODERN) is match.lobby_update()
    assert match.view(codec.NEW_MATCH, True, None) is match.lobby_new()
    first = match.view(codec.MATCH_UPDATE, False, old)
    assert match.view(codec.MATCH_UPDATE, False, old) is first  # cached per variant
    match.name = "renamed"
    match.invalidate()
    again = match.view(codec.MATCH_UPDATE, False, old)
    assert again is not first and decoded(again, old_io)[1].name == "renamed"


def test_match_ids_of_a_cluster_node_and_duplicates():
    """A node allocates only ids with ``id % stride == offset`` (services/cluster.py sets both;
    the offset is 0 unless set); one node takes 1, 2, 3 ...; an id cannot be added twice."""
    single = m.MatchList()
    assert [single.allocate_id() for _ in range(3)] == [1, 2, 3]
    node = m.MatchList()
    node.stride, node.offset = 3, 2
    assert [node.allocate_id() for _ in range(3)] == [2, 5, 8]
    even = m.MatchList()
    even.stride = 2
    assert [even.allocate_id() for _ in range(2)] == [2, 4]
    room = Room()
    ids = m.MatchList()
    ids.add(room.match)
    with pytest.raises(ValueError, match=f"^match id {room.match.id} is in use$"):
        ids.add(room.match)


def test_slot_round_reset_clears_the_last_score_frame():
    slot = Room().match.slots[0]
    slot.playing = slot.loaded = slot.skipped = slot.completed = slot.failed = True
    slot.passed, slot.score, slot.max_combo, slot.hits = False, 123, 45, (1, 2, 3, 4, 5, 6)
    slot.reset_round()
    assert (slot.playing, slot.loaded, slot.skipped, slot.completed, slot.failed, slot.passed) == (
        False, False, False, False, False, True)
    assert (slot.score, slot.max_combo, slot.hits) == (0, 0, m.NO_HITS)


class _RecordingCluster(NoOpHooks):
    """A cluster double that records the forwarding calls of the tournament packets."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def tourney_info(self, token, match_id) -> None:
        self.calls.append(("info", token, match_id))

    def observe(self, token, match_id, join) -> str:
        self.calls.append(("observe", token, match_id, join))
        return "forwarded"


def test_tournament_packets_for_a_match_of_another_node_go_to_the_cluster():
    """93 / 108 / 109 naming a match this node does not have are forwarded to the cluster
    (docs/cluster.md); a local match never is, and non-staff never get that far."""
    room = Room()
    cluster = room.state.cluster = _RecordingCluster()
    try:
        staff = room.world.user("Staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
        plain = room.world.user("Plain", channels=(), tournament=True)
        mp.tourney_match_info(room.state, staff, 999)
        assert mp.observe(room.state, staff, 999) == "forwarded"
        assert mp.stop_observing(room.state, staff, 998) == "forwarded"
        assert cluster.calls == [("info", staff, 999), ("observe", staff, 999, True),
                                 ("observe", staff, 998, False)]
        cluster.calls.clear()
        mp.tourney_match_info(room.state, plain, 999)
        assert mp.observe(room.state, plain, 999) is False
        mp.tourney_match_info(room.state, staff, room.match.id)
        assert mp.observe(room.state, staff, room.match.id) is True
        assert mp.stop_observing(room.state, staff, room.match.id) is True
        assert cluster.calls == []
    finally:
        room.state.cluster = None


def test_tourney_match_info_in_the_receivers_layout():
    room = Room()
    old = room.world.user("OldStaff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF,
                          version=20130816)
    old.drain()
    mp.tourney_match_info(room.state, old, room.match.id)
    assert old.drain() == room.match.view(codec.MATCH_UPDATE, True, old.layout) != \
        room.match.view(codec.MATCH_UPDATE, True, None)


def test_invite_user_results_and_the_bots_reply():
    room = Room()
    outsider = room.world.user("Outsider", channels=())
    target = room.world.user("Target", channels=())
    assert mp.invite_user(room.state, outsider, target.user_id) is False, "not in a match"
    assert received(target) == []
    old = room.player("Old", version=20121203)
    old.drain()
    assert mp.invite_user(room.state, old, room.world.bot.user_id) is False
    bot = room.world.bot
    assert old.drain() == codec.message(bot.username, mp.BOT_BUSY, "Old", bot.user_id, old.layout)
    assert mp.invite_user(room.state, old, target.user_id) is True
    assert C.of(received(target), C.MATCH_INVITE)
