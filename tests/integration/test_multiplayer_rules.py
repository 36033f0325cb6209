"""Multiplayer rules of docs/rules.md §1 that the §5 scenarios do not reach, against the real
server: create/join validation, kicks by lock, slot moves, map status, settings details,
mods, mid-round leaves, joining a running match, invites, lobby copies and malformed input."""

from __future__ import annotations

import time

from tests import client as C
from tests.integration.test_multiplayer_common import (
    LOCKED, NO_MAP, NOT_READY, OPEN, PLAYING, READY, create, current, drain_all, has, join, last_update,
    mp, nothing, poll_all, setup_match, update_packets,
)


# ---------------------------------------------------------------------------------------------
# create and join
# ---------------------------------------------------------------------------------------------
def test_create_refuses_bad_names(server):
    a = server.connect()
    for name in ("", "   ", "x" * 51):
        packets = a.send(C.match_create(C.make_match(name=name, host_id=a.user_id)))
        assert C.of(packets, C.MATCH_JOIN_FAIL) and not C.of(packets, C.MATCH_JOIN_SUCCESS), name
    packets = a.send(C.match_create(C.make_match(name="  " + "x" * 50 + " ", host_id=a.user_id)))
    assert C.values(packets, C.MATCH_JOIN_SUCCESS)[0].name == "x" * 50


def test_create_malformed_struct_answers_join_fail(server):
    a = server.connect()
    payload = C.match_payload(C.make_match(host_id=a.user_id))
    packets = a.send(C.frame(C.C_CREATE_MATCH, payload[:20]))
    assert C.of(packets, C.MATCH_JOIN_FAIL)
    packets = a.send(C.frame(C.C_JOIN_MATCH, b"\x01\x00"))
    assert C.of(packets, C.MATCH_JOIN_FAIL)
    assert C.of(a.send(C.match_create(C.make_match(host_id=a.user_id))), C.MATCH_JOIN_SUCCESS)


def test_silenced_user_cannot_create_or_join(server):
    match_id, (a,), _ = setup_match(server, 1)
    user = server.new_user()
    server.db.execute("UPDATE users SET silence_end=%s WHERE id=%s", (int(time.time()) + 600, user.id))
    s = server.login(user)
    for frame in (C.match_create(C.make_match(host_id=s.user_id)), C.match_join(match_id, "")):
        packets = s.send(frame)
        assert C.of(packets, C.MATCH_JOIN_FAIL) and C.of(packets, C.NOTIFICATION)
    nothing(a)


def test_create_accepts_only_open_and_locked_from_the_packet(server):
    a = server.connect()
    statuses = [4, 8, 16, 32, 64, 128, 2, 1, 3, 0, 4, 2, 2, 2, 2, 2]
    packets = a.send(C.match_create(C.make_match(host_id=a.user_id, slot_statuses=statuses)))
    m = C.values(packets, C.MATCH_JOIN_SUCCESS)[0]
    got = C.slot_statuses(m)
    assert got[0] == NOT_READY and m.slots[0].user_id == a.user_id
    assert got[1:] == [OPEN, OPEN, OPEN, OPEN, OPEN, LOCKED, OPEN, OPEN, OPEN, OPEN, LOCKED, LOCKED, LOCKED,
                       LOCKED, LOCKED]
    assert sum(1 for s in m.slots if s.has_player) == 1


def test_create_while_in_a_match_leaves_it_first(server):
    match_id, (a, b), _ = setup_match(server, 2)
    new_id, packets = create(a)
    assert new_id != match_id
    assert has(packets, C.CHANNEL_KICKED, "#multiplayer")
    pb = b.poll()
    assert C.of(pb, C.MATCH_TRANSFER_HOST) and last_update(pb, match_id).host_id == b.user_id


def test_join_failures(server):
    match_id, (a, b), _ = setup_match(server, 2, password="pw", open_slots=1)  # two seats in all
    c = server.connect()
    assert C.of(c.send(C.match_join(match_id, "nope")), C.MATCH_JOIN_FAIL)
    assert C.of(c.send(C.match_join(match_id, "pw")), C.MATCH_JOIN_FAIL), "full"
    assert C.of(b.send(C.match_join(match_id, "pw")), C.MATCH_JOIN_FAIL), "already in it"
    pb = b.poll()
    assert not has(pb, C.CHANNEL_KICKED, "#multiplayer")
    nothing(a)
    b.send(C.match_ready())
    assert C.slot_of(last_update(a.poll(), match_id), b.user_id) == 1


def test_join_another_match_leaves_the_first(server):
    m1, (a, b), _ = setup_match(server, 2)
    m2, (d,), _ = setup_match(server, 1)
    pb = b.send(C.match_join(m2, ""))
    assert has(pb, C.CHANNEL_KICKED, "#multiplayer") and C.of(pb, C.MATCH_JOIN_SUCCESS)
    assert C.slot_of(last_update(a.poll(), m1), b.user_id) is None
    assert C.slot_of(last_update(d.poll(), m2), b.user_id) == 1


def test_team_vs_joiners_get_parity_teams(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), team_type=3)))
    c = server.connect()
    m = C.values(join(c, match_id), C.MATCH_JOIN_SUCCESS)[0]
    assert [int(s.team) for s in m.slots[:3]] == [2, 1, 2]
    c.send(C.match_change_slot(5))
    u = last_update(a.poll(), match_id)
    assert C.slot_of(u, c.user_id) == 5 and int(u.slots[5].team) == 2, "the team travels with the player"


def test_part_when_not_in_a_match_is_harmless(server):
    a = server.connect()
    a.send(C.match_part(), C.match_ready(), C.match_start(), C.match_complete(), C.match_lock(1),
           C.match_change_mods(8), C.match_invite(999), C.match_score_update(C.score_frame()))
    nothing(a)


# ---------------------------------------------------------------------------------------------
# slots
# ---------------------------------------------------------------------------------------------
def test_lock_occupied_slot_kicks_and_detaches(server):
    match_id, (a, b, c), lobby = setup_match(server, 3, lobby=True)
    a.send(C.match_lock(1))
    pb, pc, pl = poll_all(b, c, lobby)
    assert has(pb, C.CHANNEL_KICKED, "#multiplayer")
    ub = last_update(pb, match_id)
    assert C.slot_of(ub, b.user_id) is None and C.slot_statuses(ub)[1] == LOCKED, \
        "the kicked player sees the match without itself and returns to the lobby"
    assert C.slot_statuses(last_update(pc, match_id))[1] == LOCKED
    assert C.slot_statuses(last_update(pl, match_id))[1] == LOCKED
    b.send(C.match_part())  # what its client does next: harmless
    nothing(a)
    c.send(C.match_ready())
    nothing(b)  # a kicked player gets no more updates
    a.send(C.public_message("#multiplayer", "after kick"))
    C.wait_for(c, lambda p: C.is_message(p, content="after kick"))
    assert "after kick" not in [m.content for m in C.values(b.poll(), C.SEND_MESSAGE)]
    # B can join again once the slot is unlocked (the lowest open slot is 1)
    a.send(C.match_lock(1))
    assert C.slot_of(C.values(join(b, match_id), C.MATCH_JOIN_SUCCESS)[0], b.user_id) == 1


def test_change_slot_moves_status_and_mods(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), freemod=True)))
    b.send(C.match_change_mods(8), C.match_ready())
    pb = b.send(C.match_change_slot(4))
    u = last_update(pb, match_id)
    assert C.slot_of(u, b.user_id) == 4
    assert C.slot_statuses(u)[1] == OPEN and C.slot_statuses(u)[4] == READY and int(u.slots[4].mods) == 8
    assert int(u.slots[1].mods) == 0


def test_no_slot_change_or_team_change_mid_round(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), team_type=2)))
    a.send(C.match_start())
    drain_all(a, b)
    b.send(C.match_change_slot(3), C.match_change_team(), C.match_no_beatmap(), C.match_ready(),
           C.match_change_mods(8))
    nothing(a)
    nothing(b)


def test_no_map_and_has_map(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    b.send(C.match_no_beatmap())
    assert C.slot_statuses(last_update(a.poll(), match_id))[1] == NO_MAP
    b.send(C.match_no_beatmap())  # no change, no update
    nothing(a)
    b.send(C.match_ready())  # cannot ready without the map
    nothing(a)
    b.send(C.match_has_beatmap())
    assert C.slot_statuses(last_update(a.poll(), match_id))[1] == NOT_READY
    assert C.slot_statuses(last_update(lobby.poll(), match_id))[1] == NOT_READY


# ---------------------------------------------------------------------------------------------
# settings and mods
# ---------------------------------------------------------------------------------------------
def test_settings_mode_name_scoring_and_tag_mode(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), freemod=True)))
    u = current(a, match_id)
    assert u.freemod
    raw = bytearray(C.match_payload(C.settings_from(u, name="n" * 60, scoring_type=3, team_type=1)))
    # mode 5 (taiko + relax in bancho.py's numbering) is written raw: chio's Mode enum cannot hold it
    mode_at = len(raw) - 4 - 64 - 1 - 1 - 1 - 1
    raw[mode_at] = 5
    a.send(C.frame(C.C_MATCH_CHANGE_SETTINGS, bytes(raw)))
    u = last_update(b.poll(), match_id)
    assert u.name == "n" * 50
    assert int(u.mode) == 1 and int(u.scoring_type) == 3 and int(u.team_type) == 1
    assert not u.freemod, "tag modes force free-mod off"


def test_host_mods_normal_mode_unready(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    b.send(C.match_ready())
    a.send(C.match_change_mods(16))
    u = last_update(b.poll(), match_id)
    assert int(u.mods) == 16 and C.slot_statuses(u)[1] == NOT_READY
    assert int(last_update(lobby.poll(), match_id).mods) == 16


def test_non_host_freemod_mods_keep_speed_mods_off_the_slot(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), freemod=True)))
    a.poll()
    b.send(C.match_change_mods(64 | 16))  # DT is match-wide: only HR lands on B's slot
    u = last_update(a.poll(), match_id)
    assert int(u.slots[1].mods) == 16 and int(u.mods) == 0


def test_settings_while_running_only_name_and_password(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_start())
    drain_all(a, b)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), name="renamed", beatmap_id=555,
                                                   beatmap_checksum="zzz", password="late")))
    u = last_update(b.poll(), match_id)
    assert u.name == "renamed" and u.password == "late"
    assert u.beatmap_id == 100 and u.beatmap_checksum == "aaa" and u.in_progress


# ---------------------------------------------------------------------------------------------
# rounds
# ---------------------------------------------------------------------------------------------
def test_leaver_releases_load_and_skip_barriers(server):
    match_id, (a, b, c), _ = setup_match(server, 3)
    a.send(C.match_start())
    a.send(C.match_load_complete(), C.match_skip_request())
    b.send(C.match_load_complete(), C.match_skip_request())
    drain_all(a, b, c)
    c.send(C.match_part())
    pa, pb = poll_all(a, b)
    for packets in (pa, pb):
        assert len(C.of(packets, C.MATCH_ALL_PLAYERS_LOADED)) == 1
        assert len(C.of(packets, C.MATCH_SKIP)) == 1
        assert last_update(packets, match_id).in_progress


def test_host_leaves_mid_round(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_start())
    drain_all(a, b)
    a.send(C.match_part())
    pb = b.poll()
    assert C.of(pb, C.MATCH_TRANSFER_HOST)
    u = last_update(pb, match_id)
    assert u.host_id == b.user_id and u.in_progress
    pb = b.send(C.match_complete())
    assert C.of(pb, C.MATCH_COMPLETE) and not last_update(pb, match_id).in_progress


def test_joining_a_running_match(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_start())
    drain_all(a, b)
    c = server.connect()
    m = C.values(join(c, match_id), C.MATCH_JOIN_SUCCESS)[0]
    assert m.in_progress and C.slot_statuses(m)[:3] == [PLAYING, PLAYING, NOT_READY]
    a.send(C.match_load_complete())
    b.send(C.match_load_complete())
    pc = c.poll()
    assert not C.of(pc, C.MATCH_ALL_PLAYERS_LOADED) and not C.of(pc, C.MATCH_START)
    drain_all(a, b)
    c.send(C.match_load_complete(), C.match_complete(), C.match_score_update(C.score_frame()))
    nothing(a)
    a.send(C.match_complete())
    pb = b.send(C.match_complete())
    assert C.of(pb, C.MATCH_COMPLETE)
    pc = c.poll()
    assert not C.of(pc, C.MATCH_COMPLETE) and not last_update(pc, match_id).in_progress


def test_start_needs_an_eligible_player(server):
    match_id, (a,), _ = setup_match(server, 1)
    a.send(C.match_no_beatmap())
    a.poll()
    a.send(C.match_start())
    nothing(a)
    a.send(C.match_has_beatmap())
    a.poll()
    pa = a.send(C.match_start())  # alone is enough (no Kawata two-player gate)
    assert C.of(pa, C.MATCH_START)


def test_short_score_frames_are_dropped(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_start())
    drain_all(a, b)
    full = C.score_frame_payload(C.score_frame())
    v2 = C.score_frame_payload(C.score_frame(scorev2=True))
    a.send(C.frame(C.C_MATCH_SCORE_UPDATE, full[:10]))
    a.send(C.frame(C.C_MATCH_SCORE_UPDATE, v2[:35]))  # score-v2 flag set, portions missing
    nothing(b)
    a.send(C.frame(C.C_MATCH_SCORE_UPDATE, full), C.frame(C.C_MATCH_SCORE_UPDATE, v2))
    got = C.of(b.poll(), C.MATCH_SCORE_UPDATE)
    assert [len(p.raw) for p in got] == [29, 45]


# ---------------------------------------------------------------------------------------------
# invites, lobby
# ---------------------------------------------------------------------------------------------
def test_invite(server):
    match_id, (a,), _ = setup_match(server, 1, password="two words")
    x = server.connect()
    a.send(C.match_invite(x.user_id))
    invites = C.values(x.poll(), C.MATCH_INVITE)
    assert len(invites) == 1
    inv = invites[0]
    assert inv.sender == a.user.name and inv.sender_id == a.user_id and inv.target == x.user.name
    assert f"osump://{match_id}/two_words m" in inv.content
    # the bot is busy
    pa = a.send(C.match_invite(999))
    assert any(p.id == C.SEND_MESSAGE and "busy" in p.value.content for p in pa)
    # restricted and offline targets, and a sender outside any match: nothing
    r = server.connect(privileges=2, stem="r")
    a.send(C.match_invite(r.user_id), C.match_invite(987654))
    assert not C.of(r.poll(), C.MATCH_INVITE)
    x.send(C.match_invite(a.user_id))
    assert not C.of(a.poll(), C.MATCH_INVITE)


def test_lobby_member_inside_the_match_gets_only_the_real_copy(server):
    a = server.connect()
    a.send(C.lobby_join())
    a.drain(rounds=1)
    match_id, packets = create(a, "secret1")
    b = server.connect()
    join(b, match_id, "secret1")
    pa = a.poll()
    copies = update_packets(pa, match_id)
    assert copies and all(C.match_wire_password(p) == "secret1" for p in copies)


def test_lobby_gets_updates_for_ready_and_dispose(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    b.send(C.match_ready())
    assert C.slot_statuses(last_update(lobby.poll(), match_id))[1] == READY
    b.send(C.match_part())
    a.send(C.match_part())
    pl = lobby.poll()
    assert C.values(pl, C.MATCH_DISPOSE) == [match_id]
    assert not mp([p for p in lobby.poll()])


def test_match_ids_are_not_reused_at_once(server):
    a = server.connect()
    first, _ = create(a)
    a.send(C.match_part())
    second, _ = create(a)
    assert second != first
