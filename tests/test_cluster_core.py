"""The cluster link (services/cluster.py, docs/cluster.md) between two in-memory worlds: events
of one node applied by the other, invalid events dropped, dead nodes, the relay batches.

The two :class:`services.cluster.Cluster` objects are wired by hand (what one publishes is handed
to the other's ``handle``); tests/integration/test_cluster.py runs real nodes on Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest
import tornado.httputil

from handlers.bancho import BanchoRequest, BanchoServer
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
    b'{"n": "a", "b": "x", "k": "irc", "d": ["AAAA"], "to": [["t", [0]]]}',
    b'{"n": "a", "b": "x", "k": "irc", "d": [7], "to": []}',
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


# ------------------------------------------------------------------ tournament observers, IRC
TOURNEY_STAFF = 2097152


def published_match(wb, b, wa, a, host):
    """A match of node b with a password, known to node a's lobby replica."""
    from services import multiplayer as mp

    match = mp.create_match(wb.state, host, "cup", "secret")
    pump(b, a)  # the lobby event (flushed at once without a running loop)
    assert match.id in a.remote_matches
    return match


def test_a_tournament_client_observes_a_match_of_another_node(pair):
    from services import multiplayer as mp

    wa, a, wb, b = pair
    host = user(wb, "host")
    staff = wa.user("staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    a.changed(staff)
    pump(a, b)
    match = published_match(wb, b, wa, a, host)
    staff.drain()
    # 93: the censored update, the same bytes the match's node sends, from memory
    wa.send(staff, C.tournament_match_info(match.id))
    assert staff.drain() == match.view(C.MATCH_UPDATE, True, staff.layout)
    assert not a._outbox
    # 108: the match's node seats nobody, joins the presence to the channel; 64 comes back
    wa.send(staff, C.tournament_join_match_channel(match.id))
    pump(a, b)
    presence = wb.state.tokens.get("@" + staff.token)
    assert presence.token in match.observers and presence in wb.state.channels.get(match.channel_name).members
    assert match.slot_of(presence) is None
    pump(b, a)
    assert [(p.id, p.value) for p in received(staff)] == [(C.CHANNEL_JOIN_SUCCESS, "#multiplayer")]
    # the match's updates (censored) and its channel lines reach the observer
    mp.set_ready(wb.state, host, True)
    chat.send_message(wb.state, host, "#multiplayer", "glhf")
    pump(b, a)
    got = received(staff)
    updates = [p for p in got if p.id == C.MATCH_UPDATE]
    assert updates and updates[-1].value.id == match.id and "secret" not in updates[-1].value.password
    assert [(m.sender, m.content, m.target) for m in C.values(got, C.SEND_MESSAGE)] == [("host", "glhf", "#multiplayer")]
    # the observer's line is said in the match's channel on its node
    assert chat.send_message(wa.state, staff, "#multiplayer", "hello") is chat.Result.SENT
    pump(a, b)
    assert [m.content for m in C.values(received(host), C.SEND_MESSAGE)] == ["hello"]
    # 109: out of the channel there, 66 here
    wa.send(staff, C.tournament_leave_match_channel(match.id))
    pump(a, b)
    pump(b, a)
    assert presence.token not in match.observers and match.channel_name not in presence.channels
    assert [(p.id, p.value) for p in received(staff)] == [(C.CHANNEL_KICKED, "#multiplayer")]
    assert not a.watching and staff.tourney_match_id is None
    # observe again; the match is disposed there: dispose + 66 here, and forgotten
    wa.send(staff, C.tournament_join_match_channel(match.id))
    pump(a, b)
    mp.dispose(wb.state, match)
    pump(b, a)
    assert [p.id for p in received(staff)][-2:] == [C.MATCH_DISPOSE, C.CHANNEL_KICKED]
    assert not a.watching and staff.tourney_match_id is None and match.id not in a.remote_matches


def test_observers_of_a_dead_nodes_match_are_told_and_others_refused(pair):
    wa, a, wb, b = pair
    host = user(wb, "host")
    staff = wa.user("staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    plain = wa.user("plain", channels=(), tournament=True)
    a.changed(staff), a.changed(plain)
    pump(a, b)
    match = published_match(wb, b, wa, a, host)
    plain.drain(), staff.drain()
    # not tournament staff: nothing, and nothing asked of the match's node
    wa.send(plain, C.tournament_match_info(match.id), C.tournament_join_match_channel(match.id))
    assert not plain.queue and not a._outbox
    wa.send(staff, C.tournament_join_match_channel(match.id))
    assert '"op":"obs"' in a._outbox[-1][1]
    a._outbox.clear()
    assert a.check_nodes(time.monotonic() + wa.state.cfg.cluster.node_timeout + 1) == ["b"]
    assert [p.id for p in received(staff)] == [C.USER_LOGOUT, C.MATCH_DISPOSE, C.CHANNEL_KICKED]
    assert not a.watching and staff.tourney_match_id is None


class FakeStream:
    """The stream of an IRC connection: what the gateway writes, as text lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, data: bytes):
        self.lines.extend(line for line in data.decode().split("\r\n") if line)

    def closed(self) -> bool:
        return False

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def irc_session(world, name, **kw):
    """An IRC session of ``world`` (a gateway without a listener, a connection on a fake
    stream); returns (token, stream)."""
    from handlers.irc.gateway import Connection, Gateway

    state = world.state
    if state.irc is None:
        state.irc = Gateway(state)
        state.chat_listeners.append(state.irc)
    stream = FakeStream()
    conn = Connection(state.irc, stream, "127.0.0.1")
    token = world.user(name, channels=(), **kw)
    token.irc = conn
    conn.token, conn.nick = token, name
    state.irc.connections.add(conn)
    state.cluster.changed(token)
    return token, stream


def test_an_irc_user_is_a_member_of_a_runtime_channel_of_another_node(pair):
    from services import multiplayer as mp

    wa, a, wb, b = pair
    host = user(wb, "host")
    match = published_match(wb, b, wa, a, host)
    referee, lines = irc_session(wa, "ref", privileges=3 | TOURNEY_STAFF)
    watcher, other = irc_session(wb, "watcher", privileges=3 | TOURNEY_STAFF)
    pump(a, b), pump(b, a)
    # the match's node decides and answers: JOIN, NAMES, as on one node
    watcher.irc.c_join([f"#mp_{match.id}"])
    other.take()
    referee.irc.c_join([f"#mp_{match.id}"])
    assert not lines.take()  # nothing local: the command went to b
    pump(a, b), pump(b, a)
    got = lines.take()
    assert got[0] == f":ref!ref@pep.py JOIN #mp_{match.id}"
    assert any(" 353 ref " in line and "host" in line and "watcher" in line for line in got)
    assert other.take() == [f":ref!ref@pep.py JOIN #mp_{match.id}"]
    # lines of the channel: a game player there, an IRC user there, and the remote one's
    chat.send_message(wb.state, host, "#multiplayer", "hi all")
    pump(b, a)
    assert lines.take() == [f":host!host@pep.py PRIVMSG #mp_{match.id} :hi all"]
    assert other.take() == [f":host!host@pep.py PRIVMSG #mp_{match.id} :hi all"]
    referee.irc.c_privmsg([f"#mp_{match.id}", "from irc"])
    pump(a, b)
    assert other.take() == [f":ref!ref@pep.py PRIVMSG #mp_{match.id} :from irc"]
    assert [m.content for m in C.values(received(host), C.SEND_MESSAGE)] == ["from irc"]
    pump(b, a)
    assert not lines.take()  # never its own line back, and no game packets turned into lines
    # a WHO, then PART: the PART line to both, the membership gone there
    referee.irc.c_who([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    assert lines.take()[-1].split(" ")[1] == "315"
    referee.irc.c_part([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    assert lines.take() == [f":ref!ref@pep.py PART #mp_{match.id}"]
    assert other.take() == [f":ref!ref@pep.py PART #mp_{match.id}"]
    assert not wb.state.irc.remote
    # join again; the match closes there: PART (the gateway's reconcile), relayed
    referee.irc.c_join([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    lines.take()
    mp.dispose(wb.state, match)
    wb.state.irc.flush()
    pump(b, a)
    assert lines.take() == [f":ref!ref@pep.py PART #mp_{match.id}"]
    assert not wb.state.irc.remote


def test_a_remote_irc_members_quit_and_refusals(pair):
    wa, a, wb, b = pair
    host = user(wb, "host")
    match = published_match(wb, b, wa, a, host)
    plain, plain_lines = irc_session(wa, "plain")
    referee, lines = irc_session(wa, "ref", privileges=3 | TOURNEY_STAFF)
    watcher, other = irc_session(wb, "watcher", privileges=3 | TOURNEY_STAFF)
    pump(a, b), pump(b, a)
    # not a referee: refused by the match's node with 473
    plain.irc.c_join([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    assert [line.split(" ")[1] for line in plain_lines.take()] == ["473"]
    assert not wb.state.irc.remote
    watcher.irc.c_join([f"#mp_{match.id}"])
    referee.irc.c_join([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    other.take(), lines.take()
    # a second IRC user of node a in the match channel, also in #osu with the referee
    fellow, fellow_lines = irc_session(wa, "fellow", privileges=3 | TOURNEY_STAFF)
    for token in (referee, fellow):
        wa.state.channels.get("#osu").members.add(token)
        token.channels.add("#osu")
        a.changed(token)
    fellow.irc.c_join([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    other.take(), lines.take(), fellow_lines.take()
    # the remote member logs out: QUIT to the IRC members there that share no other channel
    # with it; the fellow of its own node hears it there (its logout, #osu), not through b
    wa.state.tokens.remove(referee)
    pump(a, b)
    assert other.take() == [":ref!ref@pep.py QUIT Quit"]
    pump(b, a)
    assert fellow_lines.take() == []
    assert list(wb.state.irc.remote) == ["@" + fellow.token]


@pytest.mark.parametrize("x", [
    {"c": "KICK", "p": ["#mp_1"], "mp": False}, {"c": "JOIN", "p": ["#osu"], "mp": False},
    {"c": "JOIN", "p": ["#mp_1,#osu"], "mp": False}, {"c": "JOIN", "p": [], "mp": False},
    {"c": "JOIN", "p": ["#mp_1"]}, {"c": "PRIVMSG", "p": ["#mp_1", 5], "mp": False},
])
def test_invalid_irc_calls_change_nothing(pair, x):
    wa, a, wb, b = pair
    referee, lines = irc_session(wa, "ref", privileges=3 | TOURNEY_STAFF)
    pump(a, b)
    from handlers.irc.gateway import Gateway

    wb.state.irc = Gateway(wb.state)
    osu = wb.state.channels.get("#osu")
    before = len(osu.members)
    b.handle(json.dumps({"n": "a", "b": a.boot, "k": "call", "t": referee.token, "op": "irc", "x": x}).encode())
    assert len(osu.members) == before and not wb.state.irc.remote and not b._outbox


def test_irc_lines_from_another_node_are_checked(pair):
    wa, a, wb, b = pair
    referee, lines = irc_session(wa, "ref")
    pump(a, b)
    import base64

    for bad in (b"no end", b"two\r\nlines\r\n", b"x" * (1 << 20) + b"\r\n"):
        a.handle(json.dumps({"n": "b", "b": b.boot, "k": "irc", "d": [base64.b64encode(bad).decode()],
                             "to": [[referee.token, [0]]]}).encode())
    assert not lines.take() and a.bad_events.total >= 3
    a.handle(json.dumps({"n": "b", "b": b.boot, "k": "irc", "d": [base64.b64encode(b":x PING :y\r\n").decode()],
                         "to": [[referee.token, [0]]]}).encode())
    assert lines.take() == [":x PING :y"]


def test_a_login_replaces_only_the_game_session_of_the_receiving_node(pair):
    wa, a, wb, b = pair
    referee, lines = irc_session(wa, "ref")
    pump(a, b)
    # the user's game client logs in on a, next to its IRC session there: b keeps both presences
    wa._next_id = referee.user_id - 1
    game = wa.user("ref")
    a.added(game)
    pump(a, b)
    assert sorted(t.token for t in wb.state.tokens.user_tokens(referee.user_id)) == sorted(
        ["@" + referee.token, "@" + game.token])


def test_a_login_replaces_a_third_nodes_game_presence_but_not_its_irc_one(pair):
    from objects.remote import record

    wa, a, wb, b = pair
    # node c holds an IRC session of "ref" and a game session of "player" (as b's replica has them)
    referee, _ = irc_session(wa, "ref")
    game = wa.user("player")
    for token, suffix in ((referee, "1"), (game, "2")):
        rec = record(token)
        rec["t"] = "c." + suffix
        b.handle(json.dumps({"n": "c", "b": "cc", "k": "up", "r": rec, "new": True}).encode())
    assert {t.token for t in wb.state.tokens.user_tokens(referee.user_id)} == {"@c.1"}
    # both users log in on a: b replaces the stale game presence of c at once, not the IRC one
    a.added(referee)
    a.added(game)
    pump(a, b)
    assert {t.token for t in wb.state.tokens.user_tokens(referee.user_id)} == {"@c.1", "@" + referee.token}
    assert {t.token for t in wb.state.tokens.user_tokens(game.user_id)} == {"@" + game.token}


def test_the_runtime_channels_of_a_dead_node_are_parted_for_irc_users(pair):
    wa, a, wb, b = pair
    host = user(wb, "host")
    match = published_match(wb, b, wa, a, host)
    referee, lines = irc_session(wa, "ref", privileges=3 | TOURNEY_STAFF)
    irc_session(wb, "someone")  # node b runs a gateway too
    pump(a, b)
    referee.irc.c_join([f"#MP_{match.id}"])
    pump(a, b), pump(b, a)
    assert lines.take()[0] == f":ref!ref@pep.py JOIN #mp_{match.id}"
    assert referee.irc.remote_channels == {f"#mp_{match.id}": "b"}
    # JOIN 0 parts the runtime channels of the other nodes too
    referee.irc.c_join(["0"])
    pump(a, b), pump(b, a)
    assert lines.take() == [f":ref!ref@pep.py PART #mp_{match.id}"] and not referee.irc.remote_channels
    referee.irc.c_join([f"#mp_{match.id}"])
    pump(a, b), pump(b, a)
    lines.take()
    a.check_nodes(time.monotonic() + wa.state.cfg.cluster.node_timeout + 1)
    assert f":ref!ref@pep.py PART #mp_{match.id}" in lines.take()
    assert referee.irc.remote_channels == {}


def test_the_main_session_of_a_user_is_never_an_irc_session_of_another_node(pair):
    wa, a, wb, b = pair
    referee, _ = irc_session(wa, "ref")
    pump(a, b)
    assert wb.state.tokens.user(referee.user_id).remote_irc  # the only session: any will do
    wb._next_id = referee.user_id - 1
    game = wb.user("ref")
    # the game client, not the IRC presence listed first (spectating, #spec_ and PMs go there)
    assert wb.state.tokens.user(referee.user_id) is game
    assert wb.state.tokens.by_name("ref") is game


@pytest.mark.parametrize("x", [{"i": 0, "on": True}, {"i": 70000, "on": True}, {"i": 1, "on": "yes"}, {"i": "1", "on": True}, 5])
def test_invalid_observer_calls_change_nothing(pair, x):
    wa, a, wb, b = pair
    host = user(wb, "host")
    match = published_match(wb, b, wa, a, host)
    staff = wa.user("staff", channels=(), tournament=True, privileges=3 | TOURNEY_STAFF)
    a.changed(staff)
    pump(a, b)
    if isinstance(x, dict) and x["i"] == 1:
        x = dict(x, i=match.id)
    before = b.bad_events.total
    b.handle(json.dumps({"n": "a", "b": a.boot, "k": "call", "t": staff.token, "op": "obs", "x": x}).encode())
    assert b.bad_events.total == before + 1 and not match.observers and not b._outbox


def test_the_events_of_a_poll_are_published_before_its_answer_is_written():
    """A poll that queues an event for the other nodes is answered one loop step later, after
    the writer task wrote the event to Redis: the answer's write wakes the client, which on a
    busy core could otherwise run before the writer (bench/cluster.py, hop "outbox -> publish").
    A poll that queues nothing is answered at once."""
    world, cluster = node("a")
    alice = user(world, "alice")
    cluster._outbox.clear()
    order: list[str] = []

    class Publisher:  # the Redis client of the writer task
        async def publish(self, channel: str, message: str) -> int:
            order.append("publish " + json.loads(message)["k"])
            return 1

    class Conn:  # the HTTP/1.1 connection of the request
        stream = SimpleNamespace(closed=lambda: False)
        context = SimpleNamespace(remote_ip="127.0.0.1")

        def write(self, data: bytes) -> None:
            order.append("answer")

        def finish(self) -> None:
            pass

    world.state.redis.client = Publisher()
    server = BanchoServer(world.state, None)

    def poll(body: bytes) -> None:
        request = BanchoRequest(server, None, Conn())
        request.headers_received(SimpleNamespace(method="POST", path="/", version="HTTP/1.1"),
                                 tornado.httputil.HTTPHeaders({"osu-token": alice.token}))
        request.data_received(body)
        request.finish()

    async def run() -> None:
        writer = asyncio.ensure_future(cluster._writer())
        await asyncio.sleep(0)  # the writer waits for events
        poll(C.ping())
        assert order == ["answer"]  # nothing queued: answered in the same step
        poll(C.public_message("#osu", "hello"))
        assert order == ["answer"]  # the answer waits for the writer's step
        for _ in range(3):
            await asyncio.sleep(0)
        writer.cancel()

    asyncio.run(run())
    assert order == ["answer", "publish msg", "answer"]
