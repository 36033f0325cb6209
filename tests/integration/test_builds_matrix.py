"""Issue 15: every client build from the HTTP era on, each in its own protocol layout.

One server for the module (the session's), one test client per build, driven by chio's readers
and writers of *that* build (``tests/client.py`` ``client_io``): chio is the reference for what
each build sends and expects, the server's codec is never used here. Every cell pairs a client
of the build under test ("old") with a client of the newest build ("new") and checks, both ways:
login (packet 75, own presence and stats), stats with pp above 32767, a status change, chat,
a match round with score frames, and spectating.

Builds: each chio breakpoint from b20140528 on, plus the first and last build of every range of
issue 15 (b20130816 is the first HTTP build), plus three TCP-era layouts polled over HTTP
(docs/decisions.md "Old client builds": the server does not tie a layout to a transport).
"""

from __future__ import annotations

import chio
import pytest

from tests import client as C
from tests.integration.test_multiplayer_common import drain_all
from tests.waiting import wait_until

MODERN = C.MODERN_BUILD
BUILDS = [
    # every chio breakpoint of the TCP era (their layouts, polled over HTTP here; the TCP
    # transport itself is tests/integration/test_tcp.py)
    20121203, 20121207, 20121211, 20121212, 20121221, 20121224, 20121225, 20130118, 20130131,
    20130209, 20130303, 20130418, 20130509, 20130604, 20130801, 20130815,
    20130816, 20140527,  # HTTP, 8 slots, no score v2
    20140528, 20140716, 20140731, 20141104, 20150826, 20150914, 20150915,  # 16 slots
    20151105, 20151106, 20151107,  # score v2 from b20151106
    20160403, 20160404, 20161101,  # bundle sequence from b20160404
    20250305, 20250306,  # u16 pp from b20250306
]
BIG_PP = 40_000  # above 32767: an i16 would read it as negative


def expected_protocol(build: int) -> int:
    """What the server must send in 75: chio's protocol number of the build, but 19 from
    b20140528 on (chio b20140528: 16-slot matches when the server negotiates 19)."""
    return 19 if build >= 20140528 else type(chio.select_client(build)).protocol_version


def expected_pp(build: int, pp: int) -> int:
    """pp as the build must read it: u16 from b20250306, before that an i16 clamped by the
    server to 32767 (chio's ``write_s16``)."""
    return pp if build >= 20250306 else min(pp, 0x7FFF)


def slots_of(build: int) -> int:
    return 16 if build >= 20140528 else 8


def login(server, build: int, pp: int | None = None) -> C.BanchoClient:
    user = server.new_user()
    if pp is not None:
        server.db.execute("UPDATE users_stats SET pp_std=%s WHERE id=%s", (pp, user.id))
    return server.login(user, drain=False, build=build)


def wait_packet(client: C.BanchoClient, predicate, what: str) -> C.Packet:
    return C.wait_for(client, predicate, timeout=10.0, description=what)


# ----------------------------------------------------------------------------------- login, stats
@pytest.mark.parametrize("build", BUILDS)
def test_login_presence_and_big_pp(server, build):
    old = login(server, build, pp=BIG_PP)
    res = old.login_result
    assert res.values(C.PROTOCOL_VERSION)[:1] == [expected_protocol(build)], res.packets
    own_stats = [s for s in res.values(C.USER_STATS) if s.user_id == old.user_id]
    assert own_stats and own_stats[0].pp == expected_pp(build, BIG_PP), own_stats
    own_presence = [p for p in res.values(C.USER_PRESENCE) if p.user_id == old.user_id]
    assert own_presence and own_presence[0].username == old.username

    new = login(server, MODERN, pp=BIG_PP)
    assert any(p.user_id == old.user_id for p in new.login_result.values(C.USER_PRESENCE)), \
        "the modern client sees the old one in its login presences"
    # the old client learns about the new one and asks for its stats
    wait_packet(old, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == new.user_id, "new's presence")
    old.send(C.stats_request([new.user_id]))
    stats = wait_packet(old, lambda p: p.id == C.USER_STATS and p.value.user_id == new.user_id, "new's stats")
    assert stats.value.pp == expected_pp(build, BIG_PP)
    new.send(C.stats_request([old.user_id]))
    stats = wait_packet(new, lambda p: p.id == C.USER_STATS and p.value.user_id == old.user_id, "old's stats")
    assert stats.value.pp == BIG_PP, "the modern build reads the full u16"


# ----------------------------------------------------------------------------------- status, chat
@pytest.mark.parametrize("build", BUILDS)
def test_status_and_chat_between_builds(server, build):
    old = login(server, build)
    new = login(server, MODERN)
    drain_all(old, new)
    old.send(C.change_action(action=2, text=f"map of {build}", md5="ab" * 16, mods=72, mode=0,
                             beatmap_id=4242, io=old.io))
    new.send(C.stats_request([old.user_id]))
    stats = wait_packet(new, lambda p: p.id == C.USER_STATS and p.value.user_id == old.user_id, "old's stats")
    assert (stats.value.action, stats.value.mods, stats.value.beatmap_id) == (2, 72, 4242)
    assert stats.value.text.endswith(f"map of {build}"), stats.value  # the server may tag the mode

    old.send(C.public_message("#osu", f"hello from {build}", io=old.io))
    msg = wait_packet(new, lambda p: C.is_message(p, content=f"hello from {build}"), "old's line")
    assert (msg.value.sender, msg.value.target, msg.value.sender_id) == (old.username, "#osu", old.user_id)
    new.send(C.public_message("#osu", f"hello to {build}"))
    msg = wait_packet(old, lambda p: C.is_message(p, content=f"hello to {build}"), "new's line")
    assert (msg.value.sender, msg.value.target) == (new.username, "#osu")
    assert msg.value.sender_id == (new.user_id if build >= 20121225 else None)

    old.send(C.private_message(new.username, "psst", io=old.io))
    msg = wait_packet(new, lambda p: C.is_message(p, content="psst"), "old's PM")
    assert (msg.value.sender, msg.value.target) == (old.username, new.username)
    new.send(C.private_message(old.username, "hi back"))
    msg = wait_packet(old, lambda p: C.is_message(p, content="hi back"), "new's PM")
    assert (msg.value.sender, msg.value.target) == (new.username, old.username)


# ----------------------------------------------------------------------------------- multiplayer
def _round(host: C.BanchoClient, guest: C.BanchoClient) -> None:
    """``host`` creates a match with its build's struct, ``guest`` joins, one round with score
    frames from both; every packet is read with the receiver's own build."""
    drain_all(host, guest)
    host.send(C.match_create(C.make_match(name=f"b{host.build} vs b{guest.build}", host_id=host.user_id,
                                          beatmap_id=77, beatmap_md5="cd" * 16), io=host.io))
    joined = wait_packet(host, lambda p: p.id == C.MATCH_JOIN_SUCCESS, "host's join success")
    match_id = joined.value.id
    assert len(joined.value.slots) == slots_of(host.build)
    assert C.slot_of(joined.value, host.user_id) == 0
    guest.send(C.lobby_join())
    guest.send(C.match_join(match_id))
    got = wait_packet(guest, lambda p: p.id == C.MATCH_JOIN_SUCCESS, "guest's join success").value
    assert got.id == match_id and len(got.slots) == slots_of(guest.build)
    guest_slot = C.slot_of(got, guest.user_id)
    assert guest_slot is not None and C.slot_of(got, host.user_id) == 0
    if min(host.build, guest.build) < 20140528:
        # an 8-slot build is seated: slots 9-16 locked for the 16-slot client (docs/multiplayer.md)
        for client in (host, guest):
            if client.build >= 20140528:
                update = wait_packet(client, lambda p: p.id == C.MATCH_UPDATE and p.value.id == match_id
                                     and C.slot_of(p.value, guest.user_id) is not None, "update")
                assert C.slot_statuses(update.value)[8:] == [2] * 8
    drain_all(host, guest)

    host.send(C.match_start())
    for client in (host, guest):
        start = wait_packet(client, lambda p: p.id == C.MATCH_START, "match start").value
        assert len(start.slots) == slots_of(client.build)
        assert C.slot_of(start, host.user_id) == 0 and C.slot_of(start, guest.user_id) == guest_slot
    host.send(C.match_load_complete())
    guest.send(C.match_load_complete())
    for client in (host, guest):
        wait_packet(client, lambda p: p.id == C.MATCH_ALL_PLAYERS_LOADED, "all loaded")

    host.send(C.match_score_update(C.score_frame(score=111_111, slot_id=0, scorev2=host.build >= 20151106),
                                   io=host.io))
    guest.send(C.match_score_update(C.score_frame(score=222_222, slot_id=guest_slot,
                                                  scorev2=guest.build >= 20151106), io=guest.io))
    for client in (host, guest):
        frames = {}
        for _ in range(2):
            p = wait_packet(client, lambda p: p.id == C.MATCH_SCORE_UPDATE and p.value.id not in frames,
                            "score frame")
            frames[p.value.id] = p.value
        assert frames[0].total_score == 111_111 and frames[guest_slot].total_score == 222_222
        assert frames[0].total_300 == 10 and frames[guest_slot].max_combo == 12
        assert frames[0].hp == 200
    host.send(C.match_complete())
    guest.send(C.match_complete())
    for client in (host, guest):
        wait_packet(client, lambda p: p.id == C.MATCH_COMPLETE, "match complete")
    host.send(C.match_part())
    guest.send(C.match_part())


@pytest.mark.parametrize("build", BUILDS)
def test_match_round_between_builds(server, build):
    old = login(server, build)
    new = login(server, MODERN)
    _round(old, new)
    _round(new, old)


@pytest.mark.parametrize("build", [b for b in BUILDS if b < 20140528])
def test_eight_slot_build_cannot_join_a_match_with_players_beyond_slot_8(server, build):
    host = login(server, MODERN)
    others = [login(server, MODERN) for _ in range(1)]
    old = login(server, build)
    drain_all(host, old, *others)
    host.send(C.match_create(C.make_match(name="wide", host_id=host.user_id, open_slots=15)))
    match_id = wait_packet(host, lambda p: p.id == C.MATCH_JOIN_SUCCESS, "join success").value.id
    other = others[0]
    other.send(C.match_join(match_id))
    wait_packet(other, lambda p: p.id == C.MATCH_JOIN_SUCCESS, "other joins")
    other.send(C.match_change_slot(12))
    wait_until(lambda: any(p.id == C.MATCH_UPDATE and C.slot_of(p.value, other.user_id) == 12
                           for p in host.poll()), timeout=10, what="other in slot 13")
    old.send(C.match_join(match_id))
    wait_packet(old, lambda p: p.id == C.MATCH_JOIN_FAIL, "join refused")
    other.send(C.match_change_slot(3))
    wait_until(lambda: any(p.id == C.MATCH_UPDATE and C.slot_of(p.value, other.user_id) == 3
                           for p in host.poll()), timeout=10, what="other back in slot 4")
    old.send(C.match_join(match_id))
    got = wait_packet(old, lambda p: p.id == C.MATCH_JOIN_SUCCESS, "join accepted").value
    assert len(got.slots) == 8
    host.send(C.match_lock(9))  # unlocking slot 10 is refused while the 8-slot build is seated
    update = wait_packet(host, lambda p: p.id == C.MATCH_UPDATE and C.slot_of(p.value, old.user_id) is not None,
                         "update with the old client")
    assert C.slot_statuses(update.value)[8:] == [2] * 8
    for c in (host, other, old):
        c.send(C.match_part())


# ----------------------------------------------------------------------------------- spectating
def _watch(host: C.BanchoClient, viewer: C.BanchoClient, seed: int) -> None:
    drain_all(host, viewer)
    viewer.send(C.start_spectating(host.user_id))
    wait_packet(host, lambda p: p.id == C.SPECTATOR_JOINED and p.value == viewer.user_id, "spectator joined")
    bundle = C.replay_bundle(seed=seed, frames=3)
    bundle.frame.using_scorev2 = host.build >= 20151106
    host.send(C.spectate_frames(bundle, io=host.io))
    got = wait_packet(viewer, lambda p: p.id == C.SPECTATE_FRAMES, "frames").value
    assert [(f.mouse_x, f.mouse_y, f.time, int(f.button_state)) for f in got.frames] == \
        [(f.mouse_x, f.mouse_y, f.time, int(f.button_state)) for f in bundle.frames]
    assert got.action == bundle.action
    assert got.frame is not None and got.frame.total_score == bundle.frame.total_score
    assert got.frame.max_combo == bundle.frame.max_combo and got.frame.hp == bundle.frame.hp
    if host.build >= 20130418 and viewer.build >= 20130418:
        assert got.extra == seed
    viewer.send(C.stop_spectating())
    wait_packet(host, lambda p: p.id == C.SPECTATOR_LEFT, "spectator left")


@pytest.mark.parametrize("build", BUILDS)
def test_spectating_both_ways(server, build):
    old = login(server, build)
    new = login(server, MODERN)
    _watch(old, new, seed=3)
    _watch(new, old, seed=5)
