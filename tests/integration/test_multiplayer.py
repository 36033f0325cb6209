"""Multiplayer end-to-end scenarios of docs/rules.md §5.1–5.6 (S1–S50) against the real server.

Clients encode and decode with chio only (tests/client.py). "upd" is MATCH_UPDATE, "upd*" the
lobby copy. Match logic is synchronous, so a receiver's single poll after the sender's request
returned shows everything the request caused (see test_multiplayer_common).
"""

from __future__ import annotations

import time

import pytest

from tests import client as C
from tests.waiting import past_logout_grace, subscribed
from tests.integration.test_multiplayer_common import (
    LOCKED, NO_MAP, NOT_READY, OPEN, PLAYING, READY, SETUP_STATUSES, create, current, drain_all, has,
    last_update, nothing, poll_all, setup_match, update_packets, updates,
)

TOURNAMENT_STAFF = 2097152


def statuses(match) -> list[int]:
    return C.slot_statuses(match)


# =============================================================================================
# 5.1 creating, joining, leaving
# =============================================================================================
def test_s1_create_public_match(server):
    a = server.connect()
    lobby = server.connect()
    lobby.send(C.lobby_join())
    lobby.drain(rounds=1)
    packets = a.send(C.match_create(C.make_match(host_id=a.user_id)))
    assert has(packets, C.CHANNEL_JOIN_SUCCESS, "#multiplayer")
    joined = C.values(packets, C.MATCH_JOIN_SUCCESS)
    assert len(joined) == 1
    m = joined[0]
    assert 1 <= m.id <= 65535
    assert m.name == "m" and m.host_id == a.user_id and not m.in_progress
    assert statuses(m) == SETUP_STATUSES
    assert m.slots[0].user_id == a.user_id
    assert int(m.mods) == 0 and int(m.team_type) == 0 and not m.freemod
    assert m.beatmap_id == 100 and m.beatmap_checksum == "aaa"
    for u in updates(packets, m.id):  # any extra update shows the same state
        assert u.host_id == a.user_id and statuses(u) == SETUP_STATUSES
    seen = [p for p in lobby.poll() if p.id in (C.MATCH_UPDATE, C.MATCH_NEW) and p.value.id == m.id]
    assert seen, "the lobby must learn about the new match"
    for p in seen:
        assert C.match_wire_password(p) is None, "no password: the field is absent"
        assert p.value.host_id == a.user_id


def test_s2_password_hidden_from_lobby(server):
    a = server.connect()
    lobby = server.connect()
    lobby.send(C.lobby_join())
    lobby.drain(rounds=1)
    match_id, packets = create(a, "s3cret")
    joined = C.of(packets, C.MATCH_JOIN_SUCCESS)[0]
    assert joined.value.password == "s3cret" and C.match_wire_password(joined) == "s3cret"
    assert C.values(packets, C.MATCH_CHANGE_PASSWORD) == ["s3cret"]
    got = lobby.poll()
    copies = [p for p in got if p.id in (C.MATCH_UPDATE, C.MATCH_NEW) and p.value.id == match_id]
    assert copies
    for p in copies:
        pw = C.match_wire_password(p)
        assert pw is not None, "a password-protected match shows a present password field (padlock)"
        assert pw != "s3cret"
    assert not C.of(got, C.MATCH_CHANGE_PASSWORD)
    assert all(b"s3cret" not in p.raw for p in got)


def test_s4_join_with_correct_password(server):
    match_id, (a,), lobby = setup_match(server, 1, password="s3cret", lobby=True)
    b = server.connect()
    packets = b.send(C.match_join(match_id, "s3cret"))
    assert has(packets, C.CHANNEL_JOIN_SUCCESS, "#multiplayer")
    m = C.values(packets, C.MATCH_JOIN_SUCCESS)[0]
    assert m.slots[1].user_id == b.user_id and statuses(m)[1] == NOT_READY and int(m.slots[1].team) == 0
    assert m.host_id == a.user_id and m.password == "s3cret"
    ua = last_update(a.poll(), match_id)
    assert ua.slots[1].user_id == b.user_id and statuses(ua)[1] == NOT_READY
    lp = update_packets(lobby.poll(), match_id)
    assert lp and lp[-1].value.slots[1].user_id == b.user_id
    assert C.match_wire_password(lp[-1]) not in (None, "s3cret")


def test_s5_join_unknown_match(server):
    b = server.connect()
    packets = b.send(C.match_join(60000, ""))
    assert C.of(packets, C.MATCH_JOIN_FAIL)
    assert not C.of(packets, C.MATCH_JOIN_SUCCESS)


def test_s7_lobby_listing_censored(server):
    a = server.connect()
    d = server.connect()
    m1, _ = create(a, "")
    m2, _ = create(d, "pw")
    x = server.connect()
    packets = x.send(C.lobby_join())
    new = {p.value.id: p for p in packets if p.id == C.MATCH_NEW}
    assert m1 in new and m2 in new
    assert C.match_wire_password(new[m1]) is None
    pw2 = C.match_wire_password(new[m2])
    assert pw2 is not None and pw2 != "pw"
    assert all(b"pw" not in p.raw for p in packets if p.id in (C.MATCH_NEW, C.MATCH_UPDATE))


def test_s8_leaving_the_lobby(server):
    match_id, (a,), lobby = setup_match(server, 1, lobby=True)
    assert has(lobby.send(C.channel_join("#lobby")), C.CHANNEL_JOIN_SUCCESS, "#lobby")
    packets = lobby.send(C.lobby_part())
    assert has(packets, C.CHANNEL_KICKED, "#lobby")
    pa = a.send(C.match_change_settings(C.settings_from(current(a, match_id), name="renamed")))
    assert last_update(pa, match_id).name == "renamed"
    assert not updates(lobby.poll(), match_id), "no lobby copy after PART_LOBBY"


def test_s10_host_leaves_transfer_by_slot_order(server):
    match_id, (a, b, c), lobby = setup_match(server, 3, lobby=True)
    packets = a.send(C.match_part())
    assert has(packets, C.CHANNEL_KICKED, "#multiplayer")
    pb, pc, pl = poll_all(b, c, lobby)
    assert C.of(pb, C.MATCH_TRANSFER_HOST)
    ub = last_update(pb, match_id)
    assert ub.host_id == b.user_id and statuses(ub)[0] == OPEN
    assert last_update(pc, match_id).host_id == b.user_id
    assert not C.of(pc, C.MATCH_TRANSFER_HOST)
    assert last_update(pl, match_id).host_id == b.user_id


def test_s11_last_player_leaves_disband(server):
    match_id, (a,), lobby = setup_match(server, 1, lobby=True)
    packets = a.send(C.match_part())
    assert has(packets, C.CHANNEL_KICKED, "#multiplayer")
    assert match_id in C.values(lobby.poll(), C.MATCH_DISPOSE)
    other = server.connect()
    assert C.of(other.send(C.match_join(match_id, "")), C.MATCH_JOIN_FAIL)
    assert C.of(a.send(C.match_join(match_id, "")), C.MATCH_JOIN_FAIL)


# =============================================================================================
# 5.2 host, slots, lock, ready, map
# =============================================================================================
def test_s13_explicit_host_transfer(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    pa = a.send(C.match_transfer_host(1))
    assert not C.of(pa, C.MATCH_TRANSFER_HOST)
    assert last_update(pa, match_id).host_id == b.user_id
    pb, pl = poll_all(b, lobby)
    assert C.of(pb, C.MATCH_TRANSFER_HOST)
    assert last_update(pb, match_id).host_id == b.user_id
    assert last_update(pl, match_id).host_id == b.user_id


def test_s14_invalid_host_transfers_ignored(server):
    match_id, (a, b), _ = setup_match(server, 2)
    for sender, slot in ((b, 1), (a, 5), (a, 16), (a, -1)):
        sender.send(C.match_transfer_host(slot))
        nothing(a)
        nothing(b)
    b.send(C.match_ready())
    u = last_update(a.poll(), match_id)
    assert u.host_id == a.user_id
    assert statuses(u)[1] == READY


def test_s16_change_to_unavailable_slot(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_lock(5))
    assert statuses(last_update(b.poll(), match_id))[5] == LOCKED
    for slot in (0, 5, 99):
        b.send(C.match_change_slot(slot))
        nothing(a)
        nothing(b)
    b.send(C.match_ready())  # the next update shows B still in slot 1
    u = last_update(a.poll(), match_id)
    assert C.slot_of(u, b.user_id) == 1


def test_s17_lock_and_unlock_empty_slot(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    pa = a.send(C.match_lock(6))
    pb, pl = poll_all(b, lobby)
    for packets in (pa, pb, pl):
        assert statuses(last_update(packets, match_id))[6] == LOCKED
    pa = a.send(C.match_lock(6))
    pb, pl = poll_all(b, lobby)
    for packets in (pa, pb, pl):
        assert statuses(last_update(packets, match_id))[6] == OPEN


def test_s19_host_cannot_lock_own_slot_non_host_cannot_lock(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_lock(0))
    nothing(a)
    nothing(b)
    b.send(C.match_lock(3))
    nothing(a)
    nothing(b)
    b.send(C.match_ready())
    assert statuses(last_update(a.poll(), match_id))[:4] == [NOT_READY, READY, OPEN, OPEN]


def test_s20_ready_and_unready_are_explicit(server):
    match_id, (a, b), _ = setup_match(server, 2)
    expected = [READY, READY, NOT_READY, NOT_READY]
    for frame, want in zip((C.match_ready(), C.match_ready(), C.match_not_ready(), C.match_not_ready()), expected):
        b.send(frame)
        u = current(b, match_id)
        assert statuses(u)[1] == want


def test_s22_beatmap_change_resets_ready_only(server):
    match_id, (a, b, c), _ = setup_match(server, 3)
    b.send(C.match_ready())
    c.send(C.match_no_beatmap())
    u = last_update(a.poll(), match_id)
    assert statuses(u)[1:3] == [READY, NO_MAP]
    a.send(C.match_change_settings(C.settings_from(u, beatmap_id=-1, beatmap_checksum="", beatmap_text="")))
    u = last_update(b.poll(), match_id)
    assert statuses(u)[1:3] == [NOT_READY, NO_MAP]
    b.send(C.match_ready())
    u = last_update(a.poll(), match_id)
    assert statuses(u)[1] == READY
    a.send(C.match_change_settings(C.settings_from(u, beatmap_id=200, beatmap_checksum="bbb", beatmap_text="Song B")))
    u = last_update(c.poll(), match_id)
    assert (u.beatmap_id, u.beatmap_checksum, u.beatmap_text) == (200, "bbb", "Song B")
    assert statuses(u)[1:3] == [NOT_READY, NO_MAP]


def test_s23_non_host_cannot_change_settings(server):
    match_id, (a, b), _ = setup_match(server, 2)
    b.send(C.match_change_settings(C.settings_from(current(b, match_id), name="hax", beatmap_id=999)))
    nothing(a)
    nothing(b)
    b.send(C.match_ready())
    u = last_update(a.poll(), match_id)
    assert u.name == "m" and u.beatmap_id == 100


def test_s25_change_password_packet(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    pa = a.send(C.match_change_password(C.settings_from(current(a, match_id), password="x")))
    pb, pl = poll_all(b, lobby)
    for packets in (pa, pb):
        assert C.values(packets, C.MATCH_CHANGE_PASSWORD) == ["x"]
        assert last_update(packets, match_id).password == "x"
    assert not C.of(pl, C.MATCH_CHANGE_PASSWORD)
    lp = update_packets(pl, match_id)
    assert lp and C.match_wire_password(lp[-1]) not in (None, "x")
    pa = a.send(C.match_change_password(C.settings_from(current(a, match_id), password="")))
    pb, pl = poll_all(b, lobby)
    assert C.values(pa, C.MATCH_CHANGE_PASSWORD) == [""] and C.values(pb, C.MATCH_CHANGE_PASSWORD) == [""]
    assert C.match_wire_password(update_packets(pl, match_id)[-1]) is None
    # a non-host gets nothing
    b.send(C.match_change_password(C.settings_from(current(b, match_id), password="y")))
    nothing(a)
    nothing(b)


def test_s26_settings_cannot_forge_host_or_progress(server):
    match_id, (a, b), _ = setup_match(server, 2)
    c = server.connect()
    forged = C.settings_from(current(a, match_id), host_id=c.user_id, in_progress=True, name="forged")
    pa = a.send(C.match_change_settings(forged))
    u = last_update(pa, match_id)
    assert u.name == "forged"
    assert u.host_id == a.user_id and not u.in_progress
    pb = b.poll()
    assert not C.of(pb, C.MATCH_START)
    assert last_update(pb, match_id).host_id == a.user_id


# =============================================================================================
# 5.3 mods and free-mod
# =============================================================================================
def test_s28_non_host_cannot_change_normal_mods(server):
    match_id, (a, b), _ = setup_match(server, 2)
    b.send(C.match_change_mods(16))
    nothing(a)
    nothing(b)
    b.send(C.match_ready())
    assert int(last_update(a.poll(), match_id).mods) == 0


def _freemod_match_s29(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_mods(72))
    b.poll()
    b.send(C.match_ready())
    u = last_update(a.poll(), match_id)
    assert int(u.mods) == 72 and statuses(u)[1] == READY
    a.send(C.match_change_settings(C.settings_from(u, freemod=True, mods=72)))
    return match_id, a, b


def test_s29_enabling_freemod_moves_non_speed_mods_to_players(server):
    match_id, a, b = _freemod_match_s29(server)
    u = last_update(b.poll(), match_id)
    assert u.freemod
    assert int(u.mods) == 64
    assert int(u.slots[0].mods) == 8 and int(u.slots[1].mods) == 8
    assert statuses(u)[1] == NOT_READY


def test_s31_host_speed_mods_under_freemod(server):
    match_id, a, b = _freemod_match_s29(server)
    b.poll()
    a.send(C.match_change_mods(584))
    u = last_update(b.poll(), match_id)
    assert int(u.mods) == 576 and int(u.slots[0].mods) == 8
    a.send(C.match_change_mods(8))
    u = last_update(b.poll(), match_id)
    assert int(u.mods) == 0 and int(u.slots[0].mods) == 8


def test_s32_disabling_freemod_moves_host_mods_to_match(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_mods(64))
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), freemod=True)))
    a.send(C.match_change_mods(72))  # HD+DT: match keeps DT, A's slot HD
    b.send(C.match_change_mods(16))  # HR on B's slot
    b.send(C.match_ready())
    u = last_update(a.poll(), match_id)
    assert u.freemod and int(u.mods) == 64
    assert [int(u.slots[0].mods), int(u.slots[1].mods)] == [8, 16] and statuses(u)[1] == READY
    a.send(C.match_change_settings(C.settings_from(u, freemod=False)))
    up = update_packets(b.poll(), match_id)
    u = up[-1].value
    assert not u.freemod and int(u.mods) == 72 and statuses(u)[1] == NOT_READY
    # no slot-mods block on the wire: the struct ends 4 bytes (seed) after the freemod byte
    assert up[-1].raw[-5] == 0
    # B's slot mods were cleared: free-mod on again gives B the non-speed part of 72 (HD)
    a.send(C.match_change_settings(C.settings_from(u, freemod=True)))
    u = last_update(b.poll(), match_id)
    assert u.freemod and int(u.mods) == 64 and int(u.slots[1].mods) == 8


# =============================================================================================
# 5.4 teams
# =============================================================================================
def test_s33_s34_change_team_in_team_vs(server):
    match_id, (a, b), _ = setup_match(server, 2)
    a.send(C.match_change_settings(C.settings_from(current(a, match_id), team_type=2)))
    u = last_update(b.poll(), match_id)
    assert int(u.team_type) == 2
    assert [int(s.team) for s in u.slots[:4]] == [2, 1, 2, 1], "parity teams: even red, odd blue"
    b.send(C.match_change_team())
    assert int(last_update(a.poll(), match_id).slots[1].team) == 2
    b.send(C.match_change_team())
    assert int(last_update(a.poll(), match_id).slots[1].team) == 1


def test_s35_change_team_in_head_to_head_ignored(server):
    match_id, (a, b), _ = setup_match(server, 2)
    b.send(C.match_change_team())
    nothing(a)
    nothing(b)
    b.send(C.match_ready())
    assert int(last_update(a.poll(), match_id).slots[1].team) == 0


# =============================================================================================
# 5.5 playing a round
# =============================================================================================
def start_s37(server):
    """S37: M(A,B,C), L; A NOT_READY, B READY, C NO_MAP; A starts. Returns the packets."""
    match_id, (a, b, c), lobby = setup_match(server, 3, lobby=True)
    b.send(C.match_ready())
    c.send(C.match_no_beatmap())
    drain_all(a, b, c, lobby)
    pa = a.send(C.match_start())
    pb, pc, pl = poll_all(b, c, lobby)
    return match_id, (a, b, c, lobby), (pa, pb, pc, pl)


def test_s37_start_who_plays(server):
    match_id, (a, b, c, lobby), (pa, pb, pc, pl) = start_s37(server)
    for packets in (pa, pb):
        starts = C.values(packets, C.MATCH_START)
        assert len(starts) == 1
        s = starts[0]
        assert s.in_progress and statuses(s)[:3] == [PLAYING, PLAYING, NO_MAP]
    for packets in (pa, pb, pc):
        u = last_update(packets, match_id)
        assert u.in_progress and statuses(u)[:3] == [PLAYING, PLAYING, NO_MAP]
    assert not C.of(pc, C.MATCH_START)
    assert last_update(pl, match_id).in_progress
    assert not C.of(pl, C.MATCH_START)


def test_s38_start_by_non_host_or_while_running(server):
    match_id, (a, b), _ = setup_match(server, 2)
    b.send(C.match_start())
    nothing(a)
    nothing(b)
    assert C.of(a.send(C.match_start()), C.MATCH_START)
    b.poll()
    a.send(C.match_load_complete())
    assert not C.of(a.send(C.match_start()), C.MATCH_START), "no second MATCH_START"
    nothing(b)
    # the per-round flags were not reset: B's load completes the barrier
    pb = b.send(C.match_load_complete())
    assert C.of(pb, C.MATCH_ALL_PLAYERS_LOADED)


def test_s40_all_players_loaded_once(server):
    match_id, (a, b, c, lobby), _ = start_s37(server)
    a.send(C.match_load_complete())
    nothing(a)
    nothing(b)
    pb = b.send(C.match_load_complete())
    pa = a.poll()
    assert len(C.of(pa, C.MATCH_ALL_PLAYERS_LOADED)) == 1 and len(C.of(pb, C.MATCH_ALL_PLAYERS_LOADED)) == 1
    b.send(C.match_load_complete())
    nothing(a)
    nothing(b)
    nothing(c)
    nothing(lobby)


def loaded_s40(server):
    match_id, (a, b, c, lobby), _ = start_s37(server)
    a.send(C.match_load_complete())
    b.send(C.match_load_complete())
    drain_all(a, b, c, lobby)
    return match_id, (a, b, c, lobby)


def test_s41_skip_voting(server):
    match_id, (a, b, c, lobby) = loaded_s40(server)
    pa = a.send(C.match_skip_request())
    pb = b.poll()
    for packets in (pa, pb):
        assert C.values(packets, C.MATCH_PLAYER_SKIPPED) == [0] and not C.of(packets, C.MATCH_SKIP)
    pb = b.send(C.match_skip_request())
    pa = a.poll()
    for packets in (pa, pb):
        assert C.values(packets, C.MATCH_PLAYER_SKIPPED) == [1] and len(C.of(packets, C.MATCH_SKIP)) == 1
    nothing(c)
    nothing(lobby)


def test_s43_player_failed(server):
    match_id, (a, b, c, lobby) = loaded_s40(server)
    pb = b.send(C.match_failed())
    pa = a.poll()
    assert C.values(pa, C.MATCH_PLAYER_FAILED) == [1] and C.values(pb, C.MATCH_PLAYER_FAILED) == [1]
    nothing(c)
    nothing(lobby)


def test_score_frames_relayed_with_slot_id(server):
    match_id, (a, b, c, lobby) = loaded_s40(server)
    frame = C.score_frame(score=123456, slot_id=9, scorev2=True)
    pb = b.send(C.match_score_update(frame))
    pa = a.poll()
    for packets in (pa, pb):  # the sender gets its own frame back [K]
        got = C.of(packets, C.MATCH_SCORE_UPDATE)
        assert len(got) == 1
        sent = C.score_frame_payload(frame)
        assert got[0].raw[:4] == sent[:4] and got[0].raw[4] == 1 and got[0].raw[5:] == sent[5:]
        assert got[0].value.total_score == 123456
    nothing(c)
    nothing(lobby)


def test_s44_round_completes(server):
    match_id, (a, b, c, lobby) = loaded_s40(server)
    b.send(C.match_change_mods(0))  # ignored mid-round (not host), nothing changes
    a.send(C.match_complete())
    nothing(a)
    nothing(b)
    pb = b.send(C.match_complete())
    pa, pc, pl = poll_all(a, c, lobby)
    for packets in (pa, pb):
        assert len(C.of(packets, C.MATCH_COMPLETE)) == 1
        u = last_update(packets, match_id)
        assert not u.in_progress and statuses(u)[:3] == [NOT_READY, NOT_READY, NO_MAP] and int(u.mods) == 0
    assert not last_update(pc, match_id).in_progress
    assert not last_update(pl, match_id).in_progress
    assert not C.of(pl, C.MATCH_COMPLETE)
    # frames after the round are not relayed
    a.send(C.match_score_update(C.score_frame()))
    nothing(a)
    nothing(b)
    # a new start works again
    assert C.of(a.send(C.match_start()), C.MATCH_START)
    assert C.of(b.poll(), C.MATCH_START)


def test_round_complete_published_on_redis(server):
    """docs/integration.md §2: the finished round goes out on api:mp_complete_match."""
    with subscribed(server.redis.raw, server.redis.key("api:mp_complete_match")) as sub:
        match_id, (a, b, c, lobby) = loaded_s40(server)
        a.send(C.match_score_update(C.score_frame(score=5000)))
        b.send(C.match_score_update(C.score_frame(score=7000, hp=254)))
        b.send(C.match_failed())
        a.send(C.match_complete())
        b.send(C.match_complete())
        data = sub.wait_json(lambda d: d["id"] == match_id)
        assert data is not None, "no api:mp_complete_match message"
        assert data["name"] == "m" and data["beatmap_id"] == 100 and data["game_mode"] == 0
        scores = data["scores"]
        assert set(scores) == {str(a.user_id), str(b.user_id)}
        assert scores[str(a.user_id)]["score"] == 5000 and scores[str(a.user_id)]["pass"] is True
        assert scores[str(b.user_id)]["score"] == 7000 and scores[str(b.user_id)]["failed"] is True
        assert scores[str(b.user_id)]["pass"] is False


def _mp_command_available(server, member, others) -> bool:
    """Whether the bot answers ``!mp`` (the referee commands belong to the bot issue)."""
    bot = server.bot_name()
    member.send(C.public_message("#multiplayer", "!mp help"))
    try:
        C.wait_for(member, lambda p: p.id == C.SEND_MESSAGE and p.value.sender == bot, timeout=1.5)
        return True
    except AssertionError:
        return False
    finally:
        drain_all(member, *others)


def test_s46_referee_abort(server):
    match_id, (a, b, c, lobby), _ = start_s37(server)
    server.set_privileges(c.user_id, 3 | TOURNAMENT_STAFF)
    c2 = server.login(c.user, drain=False)  # re-login so the session carries the privilege
    c2.send(C.match_join(match_id, ""))
    c2.send(C.match_no_beatmap())
    drain_all(a, b, c2, lobby)
    if not _mp_command_available(server, c2, (a, b, lobby)):
        pytest.skip("the bot has no !mp command yet (bot issue); abort itself is tested in-process")
    b.send(C.public_message("#multiplayer", "!mp abort"))  # a non-staff player: nothing changes
    for x in (a, b, lobby):
        assert not C.of(x.poll(), C.MATCH_ABORT)
    pc = c2.send(C.public_message("#multiplayer", "!mp abort"))
    pa, pb, pl = poll_all(a, b, lobby)
    for packets in (pa, pb):
        assert C.of(packets, C.MATCH_ABORT)
        u = last_update(packets, match_id)
        assert not u.in_progress and statuses(u)[:2] == [NOT_READY, NOT_READY]
    assert not C.of(pc, C.MATCH_ABORT) and not last_update(pc, match_id).in_progress
    assert not last_update(pl, match_id).in_progress
    bot = server.bot_name()
    assert any(C.is_message(p, sender=bot, content="Match aborted!", target="#multiplayer") for p in pa)


def test_s47_disconnect_mid_round(server):
    match_id, (a, b, c, lobby) = loaded_s40(server)
    past_logout_grace(b)
    b.send(C.logout())
    pa = a.poll()
    u = last_update(pa, match_id)
    assert statuses(u)[1] == OPEN and u.in_progress
    assert b.user_id in [q.user_id for q in C.values(pa, C.USER_LOGOUT)]
    pa = a.send(C.match_complete())
    assert C.of(pa, C.MATCH_COMPLETE)
    assert not last_update(pa, match_id).in_progress


# =============================================================================================
# 5.6 chat, restrictions
# =============================================================================================
def test_s49_match_chat_stays_in_match(server):
    match_id, (a, b), lobby = setup_match(server, 2, lobby=True)
    a.send(C.public_message("#multiplayer", "hi"))
    C.wait_for(b, lambda p: C.is_message(p, sender=a.user.name, content="hi", target="#multiplayer"))
    b.send(C.public_message("#multiplayer", "yo"))
    C.wait_for(a, lambda p: C.is_message(p, sender=b.user.name, content="yo", target="#multiplayer"))
    a.send(C.public_message("#multiplayer", "again"))
    C.wait_for(b, lambda p: C.is_message(p, sender=a.user.name, content="again", target="#multiplayer"))
    a_msgs = [m.content for m in C.values(a.received, C.SEND_MESSAGE) if m.target == "#multiplayer"]
    assert "hi" not in a_msgs and "again" not in a_msgs, "no echo to the sender"
    assert not [m for m in C.values(lobby.poll(), C.SEND_MESSAGE) if m.target == "#multiplayer"]


def test_s50_restricted_user_cannot_use_multiplayer(server):
    match_id, (a,), lobby = setup_match(server, 1, lobby=True)
    r = server.connect(privileges=2, stem="r")
    for frame in (C.match_create(C.make_match(host_id=r.user_id)), C.match_join(match_id, "")):
        packets = r.send(frame)
        assert C.of(packets, C.MATCH_JOIN_FAIL)
        assert C.of(packets, C.NOTIFICATION)
        assert not C.of(packets, C.MATCH_JOIN_SUCCESS)
        nothing(a)
        nothing(lobby)
