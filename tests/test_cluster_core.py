"""The cluster link (services/cluster.py, docs/cluster.md) between two in-memory worlds: events
of one node applied by the other, invalid events dropped, dead nodes, the relay batches.

The two :class:`services.cluster.Cluster` objects are wired by hand (what one publishes is handed
to the other's ``handle``); tests/integration/test_cluster.py runs real nodes on Redis.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from helpers import config
from objects.remote import RemotePresence
from services import chat
from services.cluster import Cluster
from tests import client as C
from tests.fakes import World, received, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")


def node(node_id: str) -> tuple[World, Cluster]:
    world = World(env={"PEP_CLUSTER_NODE_ID": node_id})
    cluster = Cluster(world.state)
    world.state.cluster = cluster
    world.state.tokens.observer = cluster
    return world, cluster


def user(world: World, name: str):
    """A user of ``world`` in ``#osu``; its channels reach the other nodes (World.user joins
    them after the login, without the join hook a real join has)."""
    token = world.user(name)
    world.state.cluster.changed(token)
    return token


def pump(src: Cluster, dst: Cluster) -> int:
    """Hand every event ``src`` published that ``dst`` subscribes to over to ``dst``."""
    count = 0
    while src._outbox:
        channel, message = src._outbox.popleft()
        if channel in (dst.world, dst.own):
            dst.handle(message.encode())
            count += 1
    return count


@pytest.fixture
def pair():
    wa, a = node("a")
    wb, b = node("b")
    wb._next_id = 5000  # user ids of their own (a login of the same user elsewhere replaces it)
    a._send("hello", {"a": "127.0.0.1:1", "ask": True})
    pump(a, b)
    pump(b, a)
    pump(a, b)
    return wa, a, wb, b


def test_a_login_on_one_node_is_a_presence_on_the_other(pair):
    wa, a, wb, b = pair
    watcher = user(wb, "watcher")
    alice = user(wa, "alice")
    pump(a, b)
    presence = wb.state.tokens.user(alice.user_id)
    assert isinstance(presence, RemotePresence) and presence.node == "a"
    assert presence.token == "@" + alice.token and wb.state.tokens.get(alice.token) is None
    assert "#osu" in presence.channels and presence in wb.state.channels.get("#osu").members
    assert alice.user_id in [p.value.user_id for p in received(watcher) if p.id == C.USER_PRESENCE]
    # a status change crosses as a record; the logout as 12
    alice.action_text = "playing something"
    a.changed(alice)
    pump(a, b)
    assert presence.action_text == "playing something"
    wa.state.tokens.remove(alice)
    pump(a, b)
    assert wb.state.tokens.user(alice.user_id) is None
    assert presence not in wb.state.channels.get("#osu").members
    assert [p.value.user_id for p in received(watcher) if p.id == C.USER_LOGOUT] == [alice.user_id]


def test_a_channel_line_is_encoded_once_per_receiving_node(pair):
    wa, a, wb, b = pair
    alice = user(wa, "alice")
    r1, r2 = user(wb, "r1"), user(wb, "r2")
    pump(a, b)
    r1.drain(), r2.drain()
    assert chat.send_message(wa.state, alice, "#osu", "hello world") is chat.Result.SENT
    pump(a, b)
    assert r1.queue and r2.queue and r1.queue[-1] is r2.queue[-1]  # the same bytes object
    got = C.values(received(r1), C.SEND_MESSAGE)
    assert [(m.sender, m.content, m.target) for m in got] == [("alice", "hello world", "#osu")]


def test_a_private_message_goes_to_the_target_node_only(pair):
    wa, a, wb, b = pair
    alice, bob = user(wa, "alice"), user(wb, "bob")
    pump(a, b), pump(b, a)
    remote_bob = wa.state.tokens.user(bob.user_id)
    assert remote_bob.node == "b"
    assert chat.send_message(wa.state, alice, "bob", "psst") is chat.Result.SENT
    world_events = [c for c, _ in a._outbox if c == a.world]
    assert not [m for c, m in a._outbox if '"k":"pm"' in m and c == a.world]
    assert world_events is not None
    pump(a, b)
    assert [m.content for m in C.values(received(bob), C.SEND_MESSAGE)] == ["psst"]
    # bob blocks non-friends: refused on bob's node, 100 relayed back to alice
    bob.block_nonfriend_dms = True
    alice.drain()
    chat.send_message(wa.state, alice, "bob", "again")
    pump(a, b)
    assert not C.values(received(bob), C.SEND_MESSAGE)
    pump(b, a)
    assert [p.id for p in received(alice)] == [C.USER_DM_BLOCKED]


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"n": "bad id!", "b": "x", "k": "hb"}', b'{"n": "a", "b": "x", "k": "nope"}',
    b'{"n": "a", "b": "x", "k": "up", "r": {"t": "x", "u": "one"}}',
    b'{"n": "a", "b": "x", "k": "msg", "t": "t", "u": 5, "nm": "n", "c": "#osu", "x": 7}',
    b'{"n": "a", "b": "x", "k": "pkt", "d": ["AAAA"], "to": [["t", [9]]]}',
    b'{"n": "a", "b": "x", "k": "all", "d": "***"}',
    b'{"n": "a", "b": "x", "k": "call", "t": "t", "op": "frame", "x": {"id": 4, "p": ""}}',
    b'{"n": "a", "b": "x", "k": "ctl", "t": "t", "op": "boom", "x": {}}',
    b'{"n": "a", "b": "x", "k": "lobby", "i": 0}',
    b'{"n": "a", "b": "x", "k": "mid", "t": "t", "x": "one"}',
])
def test_invalid_events_are_dropped_and_change_nothing(pair, raw):
    wa, a, wb, b = pair
    bob = user(wb, "bob")
    before = (len(wb.state.tokens), len(wb.state.channels.get("#osu").members))
    b.handle(raw)
    assert (len(wb.state.tokens), len(wb.state.channels.get("#osu").members)) == before
    assert b.bad_events.total >= 1 or raw.startswith(b'{"n": "a", "b": "x", "k": "call"')
    assert not bob.queue


def test_a_silent_node_is_dead_after_the_timeout(pair):
    wa, a, wb, b = pair
    watcher = user(wb, "watcher")
    alice = user(wa, "alice")
    pump(a, b)
    received(watcher)
    assert b.check_nodes(time.monotonic() + 1) == []
    assert b.check_nodes(time.monotonic() + wb.state.cfg.cluster.node_timeout + 1) == ["a"]
    assert wb.state.tokens.user(alice.user_id) is None
    assert [p.value.user_id for p in received(watcher) if p.id == C.USER_LOGOUT] == [alice.user_id]


def test_relayed_packets_travel_once_per_block(pair):
    wa, a, wb, b = pair
    r1, r2 = user(wa, "r1"), user(wa, "r2")
    pump(a, b)
    p1, p2 = wb.state.tokens.user(r1.user_id), wb.state.tokens.user(r2.user_id)
    data = C.frame(24, b"\x0b\x02hi")

    async def one_step():
        p1.enqueue(data)
        p2.enqueue(data)
        await asyncio.sleep(0)  # the batch is flushed at the end of the loop step

    asyncio.run(one_step())
    events = [json.loads(m) for c, m in b._outbox if c == a.own]
    assert len(events) == 1 and len(events[0]["d"]) == 1 and len(events[0]["to"]) == 2
    pump(b, a)
    assert r1.drain() == data and r2.drain() == data


def test_the_node_id_is_checked():
    with pytest.raises(config.ConfigError):
        config.load(None, environ={"PEP_CLUSTER_NODE_ID": "bad id"})
    with pytest.raises(config.ConfigError):
        config.load(None, environ={"PEP_CLUSTER_NODE_ID": "n1", "PEP_CLUSTER_HEARTBEAT": "20"})
    assert World().state.cluster is None  # single process: no link at all


class NoRedis:
    """A ``state.redis`` that fails the test on any use."""

    def __getattr__(self, name):
        raise AssertionError(f"Redis used on the poll path: {name}")


def test_an_idle_poll_of_a_cluster_node_touches_neither_redis_nor_the_others(pair):
    from handlers.bancho import poll

    wa, a, wb, b = pair
    alice = user(wa, "alice")
    user(wb, "bob")
    pump(a, b), pump(b, a)
    wa.state.redis = NoRedis()
    for _ in range(3):
        poll(wa.state, alice.token, C.ping() + C.stats_request([5001]) + C.presence_request_all())
    assert not a._outbox and not a._relay
    assert wa.state.background_tasks() == 0


def test_spectator_frames_reach_a_spectator_of_another_node(pair):
    from services import spectate

    wa, a, wb, b = pair
    spectator, host = user(wa, "s"), user(wb, "h")
    pump(a, b), pump(b, a)

    async def steps():
        spectate.start_spectating(wa.state, spectator, host.user_id)
        pump(a, b)  # the host's node runs the rules
        await asyncio.sleep(0)
        pump(b, a)
        bundle = C.replay_bundle(seed=4)
        spectate.relay_frames(wb.state, host, C.spectate_frames_payload(bundle))
        await asyncio.sleep(0)  # the relay batch of this loop step
        pump(b, a)
        return bundle

    bundle = asyncio.run(steps())
    got = received(spectator)
    assert C.CHANNEL_JOIN_SUCCESS in [p.id for p in got]
    frames = [p for p in got if p.id == C.SPECTATE_FRAMES]
    assert len(frames) == 1 and frames[0].value.sequence == 4
    assert [p.value for p in received(host) if p.id == C.SPECTATOR_JOINED] == [spectator.user_id]
