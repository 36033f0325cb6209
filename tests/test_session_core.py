"""Session procedures in-process (services/session.py; docs/integration.md §5): channel join and
part, logout, kick, the timeout sweep, silence and stats reload, on a real :class:`State` with
in-memory fakes; what each session receives is decoded by chio.

These are the tests ``scripts/mutation.sh`` runs against the mutants of ``services/session.py``
(docs/testing.md).
"""

from __future__ import annotations

import logging
import time

import pytest

from common.db import DatabaseError
from objects.channel import Channel
from services import channels, session
from tests import client as C
from tests.fakes import NoOpHooks, World, received, run_async, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")


def test_join_and_part_channel():
    world = World()
    a = world.user("Alice", channels=())
    channel = world.state.channels.get("#osu")
    channels.join_channel(world.state, a, channel)
    assert C.values(received(a), C.CHANNEL_JOIN_SUCCESS) == ["#osu"]
    assert a in channel.members.members.values() and "#osu" in a.channels
    channels.part_channel(world.state, a, channel)
    assert received(a) == [] and "#osu" not in a.channels
    assert a not in channel.members.members.values()
    channels.join_channel(world.state, a, channel)
    received(a)
    channels.part_channel(world.state, a, channel, kick=True)
    assert C.values(received(a), C.CHANNEL_KICKED) == ["#osu"]
    assert world.state.channels.get("#osu") is channel  # a permanent channel stays


def test_temporary_channel_disposed_with_its_last_human():
    world = World()
    a, b = world.user("Alice", channels=()), world.user("Bob", channels=())
    temp = Channel("#temp", "t", temp=True)
    world.state.channels.add(temp)
    temp.members.add(world.bot)
    world.bot.channels.add("#temp")
    for t in (a, b):
        channels.join_channel(world.state, t, temp)
    channels.part_channel(world.state, a, temp)
    assert world.state.channels.get("#temp") is temp
    channels.part_channel(world.state, b, temp)
    assert world.state.channels.get("#temp") is None
    assert "#temp" not in world.bot.channels


def test_logout_leaves_everything_and_tells_everyone():
    world = World(redis=True)
    a = world.user("Alice", ip="1.2.3.4")
    b = world.user("Bob")
    r = world.user("Rex", restricted=True)
    world.send(b, C.start_spectating(a.user_id))
    world.send(a, C.frame(C.C_JOIN_LOBBY))
    for t in (a, b, r):
        received(t)

    async def scenario():
        session.logout(world.state, a)
        await world.state.drain_tasks()

    run_async(scenario())
    assert a.logged_out and world.state.tokens.get(a.token) is None
    assert a.channels == set() and a not in world.state.channels.get("#osu").members.members.values()
    assert a.token not in world.state.lobby.members
    assert b.spectating is None
    for t in (b, r):
        assert C.values(received(t), C.USER_LOGOUT)[0].user_id == a.user_id
    assert ("remove_session_ip", (a.user_id, "1.2.3.4")) in world.redis.calls
    assert ("republish_pending_rename", (a.user_id,)) in world.redis.calls
    session.logout(world.state, a)  # twice is harmless
    assert received(b) == []


def test_logout_without_broadcast_cases():
    world = World(redis=True)
    a1 = world.user("Alice", ip="1.2.3.4")
    a2 = world.user("Alice", ip="1.2.3.4")
    a2.user_id = a1.user_id
    world.state.tokens.remove(a2)
    world.state.tokens.add(a2)
    r = world.user("Rex", restricted=True)
    watcher = world.user("W")

    async def scenario():
        session.logout(world.state, a1)  # another session of Alice remains
        session.logout(world.state, r)  # restricted: nobody is told
        b = world.user("Bob")
        session.logout(world.state, b, broadcast=False)
        await world.state.drain_tasks()

    run_async(scenario())
    assert C.values(received(watcher), C.USER_LOGOUT) == []
    assert not any(name == "remove_session_ip" and args[0] == a1.user_id for name, args in world.redis.calls)
    assert world.state.tokens.get(a2.token) is a2


def test_logout_of_the_bot_checks_no_rename():
    world = World(redis=True)

    async def scenario():
        session.logout(world.state, world.bot)
        await world.state.drain_tasks()

    run_async(scenario())
    assert [name for name, _ in world.redis.calls if name == "republish_pending_rename"] == []


def test_kick_queues_final_packets():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    session.kick(world.state, a, "go away")
    assert a.kicked and a.logged_out and world.state.kicked[a.token][0] is a
    packets = received(a)
    assert C.values(packets, C.NOTIFICATION) == ["go away"] and C.values(packets, C.LOGIN_REPLY) == [-1]
    assert [p.id for p in packets][:2] == [C.NOTIFICATION, C.LOGIN_REPLY]
    assert C.values(received(b), C.USER_LOGOUT)[0].user_id == a.user_id
    c = world.user("Carol")
    session.kick(world.state, c, "")
    assert [p.id for p in received(c)] == [C.LOGIN_REPLY]
    d = world.user("Dan")
    session.kick(world.state, d)
    assert C.values(received(d), C.NOTIFICATION) == [session.KICK_NOTICE]


def test_sweep_timeouts():
    world = World({"PEP_SESSIONS_TIMEOUT": "100"})
    # a whole number of seconds: the boundaries below (exactly 100 s) are then exact in floats
    now = float(int(time.monotonic()))
    idle, fresh = world.user("Idle"), world.user("Fresh")
    tourney = world.user("T", tournament=True)
    over = world.user("Over")
    edge = world.user("Edge")
    for t in (idle, tourney, world.bot):
        t.last_seen = now - 101
    edge.last_seen = now - 100
    over.overflowed = True
    kicked = world.user("K")
    session.kick(world.state, kicked)
    world.state.kicked[kicked.token] = (kicked, now - 50)
    # tournament clients time out like game clients (docs/security.md, "Hardening II: in game")
    assert session.sweep_timeouts(world.state, now) == 3
    assert idle.logged_out and over.logged_out and tourney.logged_out
    assert not fresh.logged_out and not edge.logged_out and not world.bot.logged_out
    assert kicked.token in world.state.kicked
    assert session.sweep_timeouts(world.state, now + 51) == 1 and edge.logged_out  # 151 s idle
    assert kicked.token not in world.state.kicked
    world.state.kicked["x"] = (kicked, now)
    session.sweep_timeouts(world.state, now + 100)
    assert "x" in world.state.kicked


def test_sweep_ends_sessions_whose_unread_broadcasts_passed_the_cap():
    """A session that stopped polling while the world's broadcasts (objects/stream.py
    BroadcastLog) piled up past its queue cap is overflowed and logged out by the next sweep,
    as when every broadcast was appended to its queue; the others are not."""
    world = World({"PEP_SESSIONS_TIMEOUT": "100"})
    lagging, polling = world.user("Lagging", max_queue=100), world.user("Polling", max_queue=100)
    world.state.tokens.broadcast(b"x" * 60)
    polling.drain()
    world.state.tokens.broadcast(b"y" * 60)
    assert not lagging.overflowed
    assert session.sweep_timeouts(world.state) == 1
    assert lagging.overflowed and lagging.logged_out
    assert not polling.logged_out and polling.drain().startswith(b"y" * 60)


def test_silence_writes_first_then_tells():
    world = World(repo=True)
    a1, b = world.user("Alice"), world.user("Bob")
    a2 = world.user("Alice2")
    a2.user_id = a1.user_id
    world.state.tokens.remove(a2)
    world.state.tokens.add(a2)
    end = run_async(session.silence(world.state, a1.user_id, 300, "why"))
    assert world.repo.silences == [(a1.user_id, 300, "why")]
    assert abs(end - (int(time.time()) + 300)) <= 1
    for t in (a1, a2):
        packets = received(t)
        assert 298 <= C.values(packets, C.SILENCE_END)[0] <= 300 and t.silence_end == end
    assert C.values(received(b), C.USER_SILENCED) == [a1.user_id]
    assert b.silence_end == 0


def test_silence_write_failure_changes_nothing():
    world = World(repo=True)
    world.repo.fail = True
    a, b = world.user("Alice"), world.user("Bob")
    with pytest.raises(DatabaseError):
        run_async(session.silence(world.state, a.user_id, 300, "why"))
    assert a.silence_end == 0 and received(a) == [] and received(b) == []


def test_silence_removed_sends_zero():
    world = World(repo=True)
    a = world.user("Alice")
    a.silence_end = int(time.time()) + 100
    run_async(session.silence(world.state, a.user_id, 0, ""))
    assert C.values(received(a), C.SILENCE_END) == [0] and not a.is_silenced()


def test_reload_stats_and_own_status():
    world = World(repo=True)
    a = world.user("Alice")
    viewer = world.user("Viewer")
    world.send(viewer, C.start_spectating(a.user_id))
    received(a), received(viewer)
    a.mode, a.relax, a.autopilot = 2, True, False
    run_async(session.reload_stats(world.state, a))
    assert (a.ranked_score, a.playcount, a.total_score, a.rank, a.pp) == (a.user_id, 2, 10, 7, 123)
    assert a.accuracy == pytest.approx(0.5)
    session.send_own_status(a)
    for t in (a, viewer):
        packets = received(t)
        assert [p.id for p in packets] == [C.USER_PRESENCE, C.USER_STATS]
        stats = C.values(packets, C.USER_STATS)[0]
        assert stats.user_id == a.user_id and stats.pp == 123 and stats.rank == 7


def test_save_failed_notice():
    world = World()
    a = world.user("Alice")
    session.save_failed(a, "friend list")
    assert C.values(received(a), C.NOTIFICATION) == [session.SAVE_FAILED_NOTICE.format(what="friend list")]


def test_logged_events(caplog):
    world = World({"PEP_SESSIONS_TIMEOUT": "100"}, repo=True)
    a, b, c = world.user("Alice"), world.user("Bob"), world.user("Carol")
    c.last_seen -= 101
    with caplog.at_level(logging.INFO, logger="pep.session"):
        session.logout(world.state, a)
        session.kick(world.state, b, "why")
        assert session.sweep_timeouts(world.state) == 1  # the clock of now
        run_async(session.silence(world.state, a.user_id, 60, "spam"))
    got = [r.getMessage() for r in caplog.records]
    for text in (f"logout user={a.user_id} name=Alice", f"kick user={b.user_id} name=Bob reason='why'",
                 f"timeout user={c.user_id} name=Carol", f"silence user={a.user_id} seconds=60 reason='spam'"):
        assert text in got, text


def test_redis_failures_at_logout_are_logged(no_errors):
    world = World(redis=True)
    a = world.user("Alice", ip="1.2.3.4")
    world.redis.fail = True

    async def scenario():
        session.logout(world.state, a)
        await world.state.drain_tasks()

    run_async(scenario())
    got = sorted(r.getMessage() for r in no_errors)
    assert got == ["online users update failed: redis is down (fake)",
                   "pending rename check failed: redis is down (fake)",
                   "session ip removal failed: redis is down (fake)"]
    no_errors.clear()


def test_logout_while_spectating_and_from_a_temporary_channel():
    world = World()
    host, viewer = world.user("Host"), world.user("Viewer")
    world.send(viewer, C.start_spectating(host.user_id))
    temp = Channel("#temp", "t", temp=True)
    world.state.channels.add(temp)
    channels.join_channel(world.state, viewer, temp)
    received(host)
    session.logout(world.state, viewer)
    assert C.values(received(host), C.SPECTATOR_LEFT) == [viewer.user_id] and not host.spectators
    assert world.state.channels.get("#temp") is None


def test_reload_stats_passes_autopilot():
    world = World(repo=True)
    a = world.user("Alice")
    a.relax, a.autopilot = False, True
    run_async(session.reload_stats(world.state, a))
    assert a.total_score == 1


class RecordingCluster(NoOpHooks):
    """The cluster hooks apply_silence uses, recorded."""

    def __init__(self):
        self.calls = []

    def control(self, token, what, data):
        self.calls.append(("control", token.user_id, what, data))

    def broadcast(self, data):
        self.calls.append(("broadcast", data))

    def changed(self, token):
        self.calls.append(("changed", token.user_id))


def test_apply_silence_tells_the_sessions_everyone_and_the_log(caplog):
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    gone = world.user("Alice", channels=())
    world.state.tokens.remove(gone)
    gone.user_id = a.user_id
    world.state.tokens.add(gone)
    gone.kicked = True
    end = int(time.time()) + 300
    reason = "r" * 200
    with caplog.at_level(logging.INFO, logger="pep.session"):
        left = session.apply_silence(world.state, a.user_id, end, reason)
    assert 298 <= left <= 300
    packets = received(a)
    assert C.values(packets, C.SILENCE_END)[0] == left
    assert C.values(packets, C.NOTIFICATION) == [session.SILENCE_NOTICE.format(reason="r" * 127)]
    assert a.silence_end == end and gone.silence_end != end
    assert C.values(received(gone), C.SILENCE_END) == []  # a kicked session is left alone
    assert C.values(received(b), C.USER_SILENCED) == [a.user_id]
    assert f"silence user={a.user_id} applied: {left} s left reason={reason!r}" in [r.getMessage() for r in caplog.records]
    # unchanged and not forced: nothing sent; a lifted silence: no notice, no log line
    assert session.apply_silence(world.state, a.user_id, end, reason, always=False) == left
    assert received(a) == [] and received(b) == []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pep.session"):
        assert session.apply_silence(world.state, a.user_id, 0, "") == 0
    packets = received(a)
    assert C.values(packets, C.SILENCE_END) == [0] and C.values(packets, C.NOTIFICATION) == []
    assert [r for r in caplog.records if r.name == "pep.session"] == []
    assert session.apply_silence(world.state, a.user_id, end, "", always=False) == left  # changed: sent
    assert C.values(received(a), C.NOTIFICATION) == [] and C.values(received(a), C.SILENCE_END) == []


def test_apply_silence_in_a_cluster():
    world = World()
    a, r = world.user("Alice"), world.user("Remote")
    r.node = "node-2"
    world.state.cluster = cluster = RecordingCluster()
    end = int(time.time()) + 60
    session.apply_silence(world.state, r.user_id, end)
    silenced = [c for c in cluster.calls if c[0] == "broadcast"]
    assert cluster.calls[0] == ("control", r.user_id, "silence", {"end": end})
    assert len(silenced) == 1 and C.values(C.decode_packets(silenced[0][1]), C.USER_SILENCED) == [r.user_id]
    assert ("changed", r.user_id) in cluster.calls
    cluster.calls.clear()
    session.apply_silence(world.state, a.user_id, end)  # a session of this node: no control message
    assert [c[0] for c in cluster.calls] == ["broadcast", "changed"]


def test_kick_of_another_nodes_session_goes_to_that_node():
    world = World()
    r = world.user("Remote")
    r.node = "node-2"
    world.state.cluster = cluster = RecordingCluster()
    session.kick(world.state, r, "bye", reply=-5)
    assert cluster.calls == [("control", r.user_id, "kick", {"reason": "bye", "reply": -5})]
    assert not r.kicked and world.state.tokens.get(r.token) is r and received(r) == []


def test_prefixed_action_text():
    from constants import game

    world = World()
    t = world.user("Alice")
    assert session.prefixed_action_text(t, game.PLAYING, "Song") == "[VN] Song"
    assert session.prefixed_action_text(t, game.IDLE, "ignored") == "[VN]"
    t.status_text = "busy"
    assert session.prefixed_action_text(t, game.AFK, "ignored") == "(busy) [VN]"
    assert session.prefixed_action_text(t, game.PLAYING, "Song") == "[VN] Song"
    t.autopilot = True
    assert session.prefixed_action_text(t, game.PLAYING, "Song") == "[AP] Song"
    t.relax = True
    assert session.prefixed_action_text(t, game.IDLE, "") == "(busy) [RX]"


class CountingRepo:
    """The stats query of the repository, counted; ``fail`` makes it raise like MySQL down."""

    def __init__(self):
        self.reads = 0
        self.fail = False

    async def stats(self, user_id, mode, relax=False, autopilot=False):
        import asyncio
        from common.ripple import Stats

        self.reads += 1
        await asyncio.sleep(0)
        if self.fail:
            raise DatabaseError("2003: cannot connect (fake)")
        return Stats(ranked_score=100 * self.reads, accuracy=0.5, playcount=1, total_score=1, rank=1, pp=self.reads)


def test_stats_reloads_are_coalesced(no_errors):
    import asyncio
    from objects.token import REPLY_STATS, REPLY_STATUS

    world = World()
    repo = CountingRepo()
    world.state.repo = repo
    a = world.user("Alice")

    async def burst(replies):
        for reply in replies:
            session.request_stats_reload(world.state, a, reply)
        await world.state.drain_tasks()

    asyncio.run(burst([REPLY_STATS]))
    assert repo.reads == 1 and not a.stats_reloading and a.stats_reply == 0
    assert [s.ranked_score for s in C.values(received(a), C.USER_STATS)] == [100]
    asyncio.run(burst([REPLY_STATS] * 50))  # requested before the read starts: one read
    assert repo.reads == 2 and [s.ranked_score for s in C.values(received(a), C.USER_STATS)] == [200]

    async def during():
        session.request_stats_reload(world.state, a, REPLY_STATS)
        await asyncio.sleep(0)  # the read is under way
        for _ in range(20):
            session.request_stats_reload(world.state, a, REPLY_STATUS)
        await world.state.drain_tasks()

    asyncio.run(during())  # one more read after the one under way, whatever the count
    assert repo.reads == 4 and not a.stats_reloading and not a.stats_reload_again
    packets = received(a)
    assert [s.ranked_score for s in C.values(packets, C.USER_STATS)] == [400]  # the last read, once
    assert [p.user_id for p in C.values(packets, C.USER_PRESENCE)] == [a.user_id]  # REPLY_STATUS: 83 too
    repo.fail = True
    asyncio.run(burst([REPLY_STATS]))  # a failed read: the cached stats answer
    assert [s.ranked_score for s in C.values(received(a), C.USER_STATS)] == [400]
    assert not a.stats_reloading
    assert [r.getMessage() for r in no_errors] == [f"stats reload of {a.user_id} failed: 2003: cannot connect (fake)"]
    no_errors.clear()
