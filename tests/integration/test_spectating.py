"""Spectating end-to-end scenarios of docs/rules.md §5.7 (S53–S65) and the rules of §2 they do
not reach (self, bot, restricted and offline targets; a negative id; fellow lists).

A is the host being watched; B, C, D are other users. S54, S57 and S60 are not spelled out in
the rulebook; they are read as "S53 then C also spectates A", "C sends CANT_SPECTATE" and
"B switches from A to D" (the scenarios that refer to them only make sense that way).
"""

from __future__ import annotations

import time

from tests import client as C
from tests.waiting import past_logout_grace
from tests.integration.test_multiplayer_common import create, drain_all, has, mp, nothing, poll_all



def ids_of(packets, packet_id):
    return C.values(packets, packet_id)


def s53(server):
    """S53: B starts spectating A. Returns (a, b, c, d) and the packets of a, b, c."""
    a, b, c, d = (server.connect() for _ in range(4))
    pb = b.send(C.start_spectating(a.user_id))
    pa, pc = poll_all(a, c)
    return (a, b, c, d), (pa, pb, pc)


def s54(server):
    """S54: S53, then C also spectates A; every queue drained."""
    (a, b, c, d), _ = s53(server)
    c.send(C.start_spectating(a.user_id))
    drain_all(a, b, c, d)
    return a, b, c, d


def test_s53_first_spectator(server):
    (a, b, c, d), (pa, pb, pc) = s53(server)
    assert ids_of(pa, C.SPECTATOR_JOINED) == [b.user_id]
    assert has(pa, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    assert has(pb, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    assert not C.of(pa, C.FELLOW_SPECTATOR_JOINED) and not C.of(pb, C.FELLOW_SPECTATOR_JOINED), \
        "no fellow-joined about oneself or to the host (FIX)"
    assert not mp(pc)


def test_s54_second_spectator(server):
    (a, b, c, d), _ = s53(server)
    drain_all(a, b)
    pc = c.send(C.start_spectating(a.user_id))
    pa, pb = poll_all(a, b)
    assert ids_of(pa, C.SPECTATOR_JOINED) == [c.user_id]
    assert not has(pa, C.CHANNEL_JOIN_SUCCESS, "#spectator"), "the host joined #spectator already"
    assert ids_of(pb, C.FELLOW_SPECTATOR_JOINED) == [c.user_id]
    assert has(pc, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    assert ids_of(pc, C.FELLOW_SPECTATOR_JOINED) == [b.user_id]


def test_s55_frames_to_spectators_not_back_to_host(server):
    a, b, c, d = s54(server)
    bundle = C.replay_bundle(seed=7)
    payload = C.spectate_frames_payload(bundle)
    pa = a.send(C.spectate_frames(bundle))
    pb, pc = poll_all(b, c)
    for packets in (pb, pc):
        frames = C.of(packets, C.SPECTATE_FRAMES)
        assert len(frames) == 1 and frames[0].raw == payload
        assert frames[0].value.sequence == 7
    assert not mp(pa)
    nothing(a)
    nothing(d)


def test_s56_frames_without_spectators(server):
    a, d = server.connect(), server.connect()
    packets = d.send(C.spectate_frames(C.replay_bundle()))
    assert not mp(packets)
    nothing(a)
    # D's session stays healthy
    text = f"still here {time.monotonic()}"
    d.send(C.private_message(a.user.name, text))
    C.wait_for(a, lambda p: C.is_message(p, content=text))
    assert not C.of(d.poll(), C.RESTART)


def test_s57_cant_spectate(server):
    a, b, c, d = s54(server)
    pc = c.send(C.cant_spectate())
    pa, pb = poll_all(a, b)
    assert ids_of(pa, C.SPECTATOR_CANT_SPECTATE) == [c.user_id]
    assert ids_of(pb, C.SPECTATOR_CANT_SPECTATE) == [c.user_id]
    assert ids_of(pc, C.SPECTATOR_CANT_SPECTATE) == [c.user_id]
    nothing(d)


def test_s58_respectate_same_host(server):
    a, b, c, d = s54(server)
    c.send(C.cant_spectate())
    drain_all(a, b, c)
    pc = c.send(C.start_spectating(a.user_id))
    pa, pb = poll_all(a, b)
    assert ids_of(pa, C.SPECTATOR_JOINED) == [c.user_id]
    assert not C.of(pa, C.SPECTATOR_LEFT)
    assert ids_of(pb, C.FELLOW_SPECTATOR_JOINED) == [c.user_id]
    assert not has(pc, C.CHANNEL_KICKED, "#spectator") and not has(pc, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    # still one entry for C: the next frames reach C once
    a.send(C.spectate_frames(C.replay_bundle(seed=3)))
    pb, pc = poll_all(b, c)
    assert len(C.of(pb, C.SPECTATE_FRAMES)) == 1 and len(C.of(pc, C.SPECTATE_FRAMES)) == 1
    # C is still in #spectator: a message there reaches it
    a.send(C.public_message("#spectator", "still with us"))
    C.wait_for(c, lambda p: C.is_message(p, content="still with us", target="#spectator"))


def test_s59_stop_spectating_last_closes_channel(server):
    a, b, c, d = s54(server)
    pb = b.send(C.stop_spectating())
    pa, pc = poll_all(a, c)
    assert ids_of(pa, C.SPECTATOR_LEFT) == [b.user_id] and not has(pa, C.CHANNEL_KICKED, "#spectator")
    assert ids_of(pc, C.FELLOW_SPECTATOR_LEFT) == [b.user_id]
    assert has(pb, C.CHANNEL_KICKED, "#spectator")
    pc = c.send(C.stop_spectating())
    pa = a.poll()
    assert ids_of(pa, C.SPECTATOR_LEFT) == [c.user_id] and has(pa, C.CHANNEL_KICKED, "#spectator")
    assert has(pc, C.CHANNEL_KICKED, "#spectator")
    a.send(C.spectate_frames(C.replay_bundle()))
    for x in (a, b, c, d):
        nothing(x)


def test_s60_switching_host(server):
    (a, b, c, d), _ = s53(server)
    drain_all(a, b, c, d)
    pb = b.send(C.start_spectating(d.user_id))
    pa, pd = poll_all(a, d)
    assert ids_of(pa, C.SPECTATOR_LEFT) == [b.user_id] and has(pa, C.CHANNEL_KICKED, "#spectator")
    assert ids_of(pd, C.SPECTATOR_JOINED) == [b.user_id] and has(pd, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    kicks = [i for i, p in enumerate(pb) if p.id == C.CHANNEL_KICKED and p.value == "#spectator"]
    joins = [i for i, p in enumerate(pb) if p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#spectator"]
    assert kicks and joins and kicks[0] < joins[-1], "leave A's #spectator, then join D's"
    a.send(C.spectate_frames(C.replay_bundle()))
    nothing(b)
    d.send(C.spectate_frames(C.replay_bundle()))
    assert C.of(b.poll(), C.SPECTATE_FRAMES)


def test_s61_host_logs_out(server):
    a, b, c, d = s54(server)
    past_logout_grace(a)
    a.send(C.logout())
    pb, pc = poll_all(b, c)
    for packets in (pb, pc):
        assert a.user_id in [q.user_id for q in C.values(packets, C.USER_LOGOUT)]
        assert has(packets, C.CHANNEL_KICKED, "#spectator")
    pb = b.send(C.stop_spectating())
    assert [p for p in mp(pb) if not (p.id == C.CHANNEL_KICKED and p.value == "#spectator")] == []
    nothing(c)
    nothing(d)
    # B can spectate D at once
    pb = b.send(C.start_spectating(d.user_id))
    assert has(pb, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    assert ids_of(d.poll(), C.SPECTATOR_JOINED) == [b.user_id]


def test_s62_spectator_logs_out(server):
    (a, b, c, d), _ = s53(server)
    drain_all(a, b)
    past_logout_grace(b)
    b.send(C.logout())
    pa = a.poll()
    assert ids_of(pa, C.SPECTATOR_LEFT) == [b.user_id]
    assert has(pa, C.CHANNEL_KICKED, "#spectator")
    assert b.user_id in [q.user_id for q in C.values(pa, C.USER_LOGOUT)]
    # the left notice comes before the logout broadcast (§2.8)
    order = [p.id for p in pa if p.id in (C.SPECTATOR_LEFT, C.USER_LOGOUT)]
    assert order.index(C.SPECTATOR_LEFT) < order.index(C.USER_LOGOUT)


def test_s64_spectator_chat_and_host_status(server):
    a, b, c, d = s54(server)
    b.send(C.public_message("#spectator", "nice"))
    for x in (a, c):
        C.wait_for(x, lambda p: C.is_message(p, sender=b.user.name, content="nice", target="#spectator"))
    a.send(C.public_message("#spectator", "ty"))
    for x in (b, c):
        C.wait_for(x, lambda p: C.is_message(p, sender=a.user.name, content="ty", target="#spectator"))
    a.send(C.change_action(2, "Song", mods=0, mode=0, beatmap_id=100))
    for x in (b, c):
        stats = C.wait_for(x, lambda p: p.id == C.USER_STATS and p.value.user_id == a.user_id).value
        assert stats.action == 2 and stats.text == "[VN] Song" and stats.beatmap_id == 100
        assert any(p.id == C.USER_PRESENCE and p.value.user_id == a.user_id for p in x.received)
    msgs = [m for m in C.values(d.poll(), C.SEND_MESSAGE) if m.target == "#spectator"]
    assert not msgs
    assert not [p for p in d.received if p.id == C.USER_STATS and p.value.user_id == a.user_id
                and p.value.text == "[VN] Song"]


def test_s65_joining_a_match_stops_spectating(server):
    (a, b, c, d), _ = s53(server)
    match_id, _ = create(d)
    drain_all(a, b, d)
    pb = b.send(C.match_join(match_id, ""))
    pa = a.poll()
    assert ids_of(pa, C.SPECTATOR_LEFT) == [b.user_id] and has(pa, C.CHANNEL_KICKED, "#spectator")
    assert has(pb, C.CHANNEL_KICKED, "#spectator")
    assert C.of(pb, C.MATCH_JOIN_SUCCESS) and has(pb, C.CHANNEL_JOIN_SUCCESS, "#multiplayer")


# ---------------------------------------------------------------------------------------------
# rules the scenarios do not reach
# ---------------------------------------------------------------------------------------------
def test_spectating_oneself_bot_restricted_offline_refused(server):
    (a, b, c, d), _ = s53(server)
    drain_all(a, b)
    r = server.connect(privileges=2, stem="r")
    offline = server.new_user()
    for target in (b.user_id, 999, r.user_id, offline.id):
        # each refusal also stops the current spectating (docs/rules.md §2.2); re-attach first
        b.send(C.start_spectating(a.user_id))
        drain_all(a, b)
        pb = b.send(C.start_spectating(target))
        pa = a.poll()
        assert ids_of(pa, C.SPECTATOR_LEFT) == [b.user_id], f"target {target}: B stops spectating A"
        assert not C.of(pb, C.SPECTATOR_JOINED) and not has(pb, C.CHANNEL_JOIN_SUCCESS, "#spectator")
        nothing(r)


def test_negative_target_stops(server):
    (a, b, c, d), _ = s53(server)
    drain_all(a, b)
    pb = b.send(C.start_spectating(-1))
    assert has(pb, C.CHANNEL_KICKED, "#spectator")
    assert ids_of(a.poll(), C.SPECTATOR_LEFT) == [b.user_id]


def test_stop_and_cant_spectate_without_host_are_harmless(server):
    a, b = server.connect(), server.connect()
    b.send(C.stop_spectating(), C.cant_spectate(), C.stop_spectating())
    nothing(b)
    nothing(a)
    pb = b.send(C.start_spectating(a.user_id))
    assert has(pb, C.CHANNEL_JOIN_SUCCESS, "#spectator")


def test_spectator_channel_not_joinable_by_name(server):
    (a, b, c, d), _ = s53(server)
    pd = d.send(C.channel_join("#spectator"), C.channel_join(f"#spect_{a.user_id}"))
    assert not has(pd, C.CHANNEL_JOIN_SUCCESS, "#spectator")
    b.send(C.public_message("#spectator", "private"))
    C.wait_for(a, lambda p: C.is_message(p, content="private"))
    assert "private" not in [m.content for m in C.values(d.poll(), C.SEND_MESSAGE)]
