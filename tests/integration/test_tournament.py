"""Tournament clients (docs/rules.md §1.10, scenario S52): match info (93), match channel
join/leave (108/109), several sessions per user, never a real password, the staff check."""

from __future__ import annotations

from tests import client as C
from tests.integration.test_multiplayer_common import (
    create, current, drain_all, has, last_update, mp, nothing, poll_all, setup_match, update_packets,
)

TOURNAMENT_STAFF = 2097152
TOURNEY_VERSION = "b20250306.2tourney"
SECRET = "tourneysecret"


def tourney_user(server, privileges: int = 3 | TOURNAMENT_STAFF):
    return server.new_user(privileges=privileges, stem="t")


def tourney_login(server, user):
    return server.login(user, version=TOURNEY_VERSION)


def no_secret(packets) -> None:
    leaked = [p for p in packets if SECRET.encode() in p.raw]
    assert not leaked, f"the real password reached a tournament client: {leaked!r}"


def test_s52_tournament_client(server):
    match_id, (a, b), _ = setup_match(server, 2, password=SECRET)
    user = tourney_user(server)
    t = tourney_login(server, user)
    t2 = tourney_login(server, user)  # several tourney sessions of one user
    n = server.connect()
    # 1. match info, censored
    pt = t.send(C.tournament_match_info(match_id))
    info = update_packets(pt, match_id)
    assert len(info) == 1
    assert C.match_wire_password(info[0]) not in (None, SECRET)
    assert info[0].value.host_id == a.user_id and C.slot_of(info[0].value, b.user_id) == 1
    # 2. a normal client gets nothing
    n.send(C.tournament_match_info(match_id))
    nothing(n)
    # 3. join the match channel, without a slot
    pt = t.send(C.tournament_join_match_channel(match_id))
    assert has(pt, C.CHANNEL_JOIN_SUCCESS, "#multiplayer")
    b.send(C.match_ready())
    pa, pt = poll_all(a, t)
    u = last_update(pa, match_id)
    assert C.slot_of(u, t.user_id) is None and sum(1 for s in u.slots if s.has_player) == 2
    # 4. match chat reaches the tourney client
    a.send(C.public_message("#multiplayer", "go"))
    C.wait_for(t, lambda p: C.is_message(p, sender=a.user.name, content="go", target="#multiplayer"))
    # 5. leave the channel; mods from the tourney client do nothing
    pt = t.send(C.tournament_leave_match_channel(match_id))
    assert has(pt, C.CHANNEL_KICKED, "#multiplayer")
    t.send(C.match_change_mods(16))
    nothing(a)
    b.send(C.match_not_ready())
    assert int(last_update(a.poll(), match_id).mods) == 0
    # every tourney session of the user is still online
    assert not C.of(t2.poll(), C.RESTART) and not C.of(t.poll(), C.RESTART)
    no_secret(t.received + t2.received)


def test_observer_gets_censored_updates_and_dispose(server):
    match_id, (a, b), _ = setup_match(server, 2, password=SECRET)
    t = tourney_login(server, tourney_user(server))
    t.send(C.tournament_join_match_channel(match_id))
    t.inbox.clear()
    b.send(C.match_ready())
    pt = t.poll()
    got = update_packets(pt, match_id)
    assert got and C.match_wire_password(got[-1]) not in (None, SECRET)
    a.send(C.match_change_password(C.settings_from(current(a, match_id), password=SECRET + "2")))
    pt = t.poll()
    assert not C.of(pt, C.MATCH_CHANGE_PASSWORD), "91 goes to members only"
    # the match ends: the observer is told and leaves the channel
    b.send(C.match_part())
    a.send(C.match_part())
    pt = t.poll()
    assert match_id in C.values(pt, C.MATCH_DISPOSE)
    assert has(pt, C.CHANNEL_KICKED, "#multiplayer")
    no_secret(t.received)


def test_tourney_client_cannot_take_a_slot(server):
    match_id, (a,), _ = setup_match(server, 1)
    t = tourney_login(server, tourney_user(server))
    assert C.of(t.send(C.match_join(match_id, "")), C.MATCH_JOIN_FAIL)
    assert C.of(t.send(C.match_create(C.make_match(host_id=t.user_id))), C.MATCH_JOIN_FAIL)
    nothing(a)


def test_tourney_packets_need_staff_and_a_tourney_client(server):
    match_id, (a,), _ = setup_match(server, 1)
    # a tourney client without the privilege cannot even log in (docs/security.md, Hardening II)
    plain_user = tourney_user(server, privileges=3)
    assert C.BanchoClient(server.url).login(plain_user.name, plain_user.password, version=TOURNEY_VERSION).user_id == -1
    plain = server.login(tourney_user(server, privileges=3 | 4))  # a supporter's game client
    staff_game = server.login(tourney_user(server))  # privilege, but a normal game client
    for c in (plain, staff_game):
        packets = c.send(C.tournament_match_info(match_id), C.tournament_join_match_channel(match_id))
        assert not mp(packets), f"{c!r} must be ignored: {packets!r}"
    nothing(a)
    a.send(C.public_message("#multiplayer", "not for you"))
    for c in (plain, staff_game):
        assert "not for you" not in [m.content for m in C.values(c.poll(), C.SEND_MESSAGE)]


def test_leave_channel_never_joined_and_unknown_ids(server):
    match_id, (a,), _ = setup_match(server, 1)
    t = tourney_login(server, tourney_user(server))
    packets = t.send(C.tournament_leave_match_channel(match_id), C.tournament_leave_match_channel(65000),
                     C.tournament_match_info(65000), C.tournament_join_match_channel(65000))
    assert not mp(packets)
    assert not C.of(t.poll(), C.RESTART)
    # and it still works afterwards
    assert has(t.send(C.tournament_join_match_channel(match_id)), C.CHANNEL_JOIN_SUCCESS, "#multiplayer")


def test_tourney_match_info_tracks_changes(server):
    match_id, (a, b), _ = setup_match(server, 2)
    t = tourney_login(server, tourney_user(server))
    first = update_packets(t.send(C.tournament_match_info(match_id)), match_id)[-1].value
    assert not first.in_progress
    a.send(C.match_start())
    drain_all(a, b)
    second = update_packets(t.send(C.tournament_match_info(match_id)), match_id)[-1].value
    assert second.in_progress and C.slot_statuses(second)[:2] == [32, 32]
    # the tourney client watches players by spectating them
    t.send(C.start_spectating(b.user_id))
    assert C.values(b.poll(), C.SPECTATOR_JOINED) == [t.user_id]
    b.send(C.spectate_frames(C.replay_bundle(seed=5)))
    assert C.of(t.poll(), C.SPECTATE_FRAMES)
    other, _ = create(server.connect())
    assert other != match_id
