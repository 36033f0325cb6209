"""Several nodes, one world (docs/cluster.md): two or three ``pep.py`` processes with a
``[cluster] node_id`` each, on the test database and one Redis prefix of their own, with users
on different nodes. Every packet is encoded and decoded with chio (tests/client.py).

Negative checks ("delivered once") use a sentinel sent after the message on the same path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time

import pytest
import requests

from tests import client as C
from tests.conftest import REPO, PrefixedRedis, ServerProcess, TestServer, _server_env, free_port
from tests.waiting import past_logout_grace, wait_until

#: [cluster] node_timeout of the failure tests (seconds; the default is 30)
FAST_TIMEOUT = 3


class Cluster:
    """Nodes sharing one Redis prefix; ``nodes[i]`` is a :class:`TestServer`."""

    def __init__(self, world, ids, extra=None):
        self.world = world
        sub = secrets.token_hex(3)
        self.prefix = f"{world['prefix']}c{sub}:"
        self.redis = PrefixedRedis(self.prefix)
        self.nodes: list[TestServer] = []
        self.extra = dict(extra or {})
        self.sub = sub
        for node_id in ids:
            self.add(node_id)

    def add(self, node_id: str, port: int | None = None) -> TestServer:
        w = self.world
        env = _server_env(w["db_name"], self.prefix, port or free_port(),
                          {"PEP_CLUSTER_NODE_ID": node_id, **self.extra})
        proc = ServerProcess(env, w["log_dir"] / f"cluster_{self.sub}_{node_id}.log")
        w["servers"].append(proc)
        proc.start()
        srv = TestServer(proc, w["db"], self.redis, w["db_name"], w["names"])
        self.nodes.append(srv)
        return srv

    def close(self) -> None:
        for node in self.nodes:
            node.proc.stop()
        try:
            self.redis.delete_all()
        finally:
            self.redis.close()


@pytest.fixture(scope="module")
def pair(_test_world, server):
    """Two nodes, n1 and n2, for the feature tests (module scope)."""
    cluster = Cluster(_test_world, ["n1", "n2"])
    yield cluster
    cluster.close()


@pytest.fixture
def users(pair, server):
    """``users(node_index, ...)``: a new user logged in on that node; closed at the end."""
    made = []

    def login(index: int, **kw):
        node = pair.nodes[index]
        c = node.login(server.new_user(), **kw)
        made.append(c)
        return c

    yield login
    for c in made:
        c.close()


def presence_ids(packets) -> set[int]:
    return {p.value.user_id for p in packets if p.id == C.USER_PRESENCE}


def text(stem="m"):
    return f"{stem} {secrets.token_hex(4)}"


def wait_world_sees(node: TestServer, user_id: int, online: bool = True, timeout: float = 10.0):
    url = node.url + f"api/v1/isOnline?id={user_id}"
    wait_until(lambda: requests.get(url, timeout=5).json().get("result") is online, timeout=timeout,
               what=f"isOnline({user_id}) == {online} on {node.url}")


# ------------------------------------------------------------------------------ presence
def test_tokens_show_their_node(pair, users):
    a = users(0)
    b = users(1)
    assert a.token.startswith("n1."), a.token
    assert b.token.startswith("n2."), b.token


def test_users_see_each_other_at_login_and_as_they_come_and_go(pair, users):
    a = users(0)
    b = users(1)
    # a (on n1) is told of b's arrival on n2
    C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == b.user_id, timeout=10,
               description="presence of b")
    # c logs in on n1 after both: its login lists b (n2) and a (n1)
    wait_world_sees(pair.nodes[0], b.user_id)
    c = users(0, drain=False)
    seen = presence_ids(c.login_result.packets)
    assert {a.user_id, b.user_id} <= seen, seen
    # b leaves (logout on n2, after the login's grace period): a and c on n1 get 12
    past_logout_grace(b)  # a logout sooner after the login is ignored (docs/rules.md §7.2)
    b.send(C.logout())
    for watcher in (a, c):
        C.wait_for(watcher, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == b.user_id, timeout=10,
                   description="logout of b")
    wait_world_sees(pair.nodes[0], b.user_id, online=False)


def test_a_login_on_another_node_replaces_the_session(pair, users, server):
    a = users(0)
    user = server.new_user()
    first = pair.nodes[0].login(user)
    try:
        wait_world_sees(pair.nodes[1], user.id)
        second = pair.nodes[1].login(user)
        try:
            # the old session on n1 is gone: its next poll is told to reconnect
            old = C.BanchoClient(pair.nodes[0].url)
            old.token = first.token
            wait_until(lambda: any(p.id == C.RESTART for p in old.poll()), timeout=10,
                       what="the replaced session's poll answers 86")
            old.close()
            # the world holds the user once, on n2; a on n1 still talks to it
            line = text("to the new session")
            a.send(C.private_message(user.name, line))
            C.wait_for(second, lambda p: C.is_message(p, content=line), timeout=10)
            assert pair.redis.sismember(f"peppy:sessions:{user.id}", "127.0.0.1")
        finally:
            second.close()
    finally:
        first.close()


def test_status_and_stats_cross_nodes(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    b.send(C.change_action(action=2, text="cluster song", md5="a" * 32, mods=64, mode=0, beatmap_id=77))

    def stats_of_b():
        packets = a.send(C.stats_request([b.user_id])) + a.drain(rounds=1)
        got = [s for s in C.values(packets, C.USER_STATS) if s.user_id == b.user_id]
        return got and got[-1].text.endswith("cluster song") and got[-1].beatmap_id == 77

    wait_until(stats_of_b, timeout=10, what="b's new status seen from n1")


# ------------------------------------------------------------------------------ chat
def test_channel_messages_cross_nodes_once(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    wait_world_sees(pair.nodes[1], a.user_id)
    first, second = text("a->osu"), text("b->osu")
    a.send(C.public_message("#osu", first))
    C.wait_for(b, lambda p: C.is_message(p, content=first, sender=a.username, target="#osu"), timeout=10)
    b.send(C.public_message("#osu", second))
    C.wait_for(a, lambda p: C.is_message(p, content=second, sender=b.username, target="#osu"), timeout=10)
    # the sender never gets its own line back, and b got a's line exactly once
    sentinel = text("sentinel")
    a.send(C.public_message("#osu", sentinel))
    C.wait_for(b, lambda p: C.is_message(p, content=sentinel), timeout=10)
    assert sum(1 for p in b.received if C.is_message(p, content=first)) == 1
    assert not any(C.is_message(p, content=second) for p in b.received)


def test_private_messages_cross_nodes(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    wait_world_sees(pair.nodes[1], a.user_id)
    hello, back = text("pm"), text("reply")
    a.send(C.private_message(b.username, hello))
    C.wait_for(b, lambda p: C.is_message(p, content=hello, sender=a.username, sender_id=a.user_id), timeout=10)
    b.send(C.private_message(a.username, back))
    C.wait_for(a, lambda p: C.is_message(p, content=back, sender=b.username), timeout=10)


def test_dm_blocking_is_checked_on_the_target_node(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    b.send(C.toggle_block_dms(1))
    blocked = text("blocked")

    def refused():
        packets = a.send(C.private_message(b.username, blocked)) + a.drain(rounds=2)
        return any(p.id == C.USER_DM_BLOCKED for p in packets)

    wait_until(refused, timeout=10, what="a is told b blocks DMs from non-friends")
    assert not any(C.is_message(p, content=blocked) for p in b.drain(rounds=1))


def test_bot_commands_and_replies_cross_nodes(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[1], a.user_id)
    b.send(C.public_message("#osu", "!roll 50"))
    # the command runs on b's node; its answer in #osu reaches a on the other node
    reply = C.wait_for(a, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
                       and p.value.target == "#osu" and "rolls" in p.value.content, timeout=10)
    assert b.username in reply.value.content


def test_irc_users_chat_with_game_users_of_another_node(pair, users, server):
    from tests.irc_client import IrcUser

    a = users(0)
    user = server.new_user()
    irc_user = IrcUser(pair.nodes[1], user.name)
    try:
        irc_user.welcome()
        irc_user.join("#osu")
        # the IRC session of n2 is online in the world: a (n1) sees it come
        C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == user.id, timeout=10)
        wait_world_sees(pair.nodes[0], user.id)
        line = text("game to irc")
        a.send(C.public_message("#osu", line))
        irc_user.wait(lambda e: e.type == "pubmsg" and e.args and e.args[0] == line, timeout=10,
                      what="the #osu line of the game user of n1")
        back = text("irc to game")
        irc_user.privmsg("#osu", back)
        C.wait_for(a, lambda p: C.is_message(p, content=back, sender=user.name, target="#osu"), timeout=10)
        pm = text("irc pm")
        irc_user.privmsg(a.username, pm)
        C.wait_for(a, lambda p: C.is_message(p, content=pm, sender=user.name), timeout=10)
        answer = text("game pm")
        a.send(C.private_message(user.name, answer))
        irc_user.wait(lambda e: e.type == "privmsg" and e.args and e.args[0] == answer, timeout=10,
                      what="the PM of the game user of n1")
    finally:
        irc_user.close()


# ------------------------------------------------------------------------------ spectating
def test_spectating_a_host_on_another_node(pair, users):
    host = users(1)
    s1 = users(0)
    s2 = users(0)
    wait_world_sees(pair.nodes[0], host.user_id)
    s1.send(C.start_spectating(host.user_id))
    C.wait_for(host, lambda p: p.id == C.SPECTATOR_JOINED and p.value == s1.user_id, timeout=10)
    C.wait_for(s1, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#spectator", timeout=10)
    C.wait_for(host, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#spectator", timeout=10)
    s2.send(C.start_spectating(host.user_id))
    C.wait_for(s1, lambda p: p.id == C.FELLOW_SPECTATOR_JOINED and p.value == s2.user_id, timeout=10)
    C.wait_for(s2, lambda p: p.id == C.FELLOW_SPECTATOR_JOINED and p.value == s1.user_id, timeout=10)
    # frames: identical payload to both spectators on the other node, encoded once there
    bundle = C.replay_bundle(seed=11)
    payload = C.spectate_frames_payload(bundle)
    host.send(C.spectate_frames(bundle))
    for spectator in (s1, s2):
        frames = C.wait_for(spectator, lambda p: p.id == C.SPECTATE_FRAMES, timeout=10)
        assert frames.raw == payload
    # #spectator chat both ways
    line = text("spec chat")
    s1.send(C.public_message("#spectator", line))
    C.wait_for(host, lambda p: C.is_message(p, content=line, target="#spectator"), timeout=10)
    C.wait_for(s2, lambda p: C.is_message(p, content=line, target="#spectator"), timeout=10)
    back = text("host chat")
    host.send(C.public_message("#spectator", back))
    C.wait_for(s1, lambda p: C.is_message(p, content=back, target="#spectator"), timeout=10)
    # stop: the host and the fellow are told
    s1.send(C.stop_spectating())
    C.wait_for(host, lambda p: p.id == C.SPECTATOR_LEFT and p.value == s1.user_id, timeout=10)
    C.wait_for(s2, lambda p: p.id == C.FELLOW_SPECTATOR_LEFT and p.value == s1.user_id, timeout=10)
    # the host leaves: the remaining spectator is detached (66 #spectator)
    past_logout_grace(host)
    host.send(C.logout())
    C.wait_for(s2, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#spectator", timeout=10)


def test_being_spectated_from_another_node(pair, users):
    host = users(0)
    spectator = users(1)
    wait_world_sees(pair.nodes[1], host.user_id)
    spectator.send(C.start_spectating(host.user_id))
    C.wait_for(host, lambda p: p.id == C.SPECTATOR_JOINED and p.value == spectator.user_id, timeout=10)
    bundle = C.replay_bundle(seed=5)
    host.send(C.spectate_frames(bundle))
    frames = C.wait_for(spectator, lambda p: p.id == C.SPECTATE_FRAMES, timeout=10)
    assert frames.raw == C.spectate_frames_payload(bundle)
    # the spectator logs out on its node: the host is told it left
    past_logout_grace(spectator)
    spectator.send(C.logout())
    C.wait_for(host, lambda p: p.id == C.SPECTATOR_LEFT and p.value == spectator.user_id, timeout=10)


# ------------------------------------------------------------------------------ multiplayer
TOURNAMENT_STAFF = 2097152


def staff(pair, server, index):
    """A tournament-staff user (may referee with !mp) logged in on node ``index``."""
    return pair.nodes[index].login(server.new_user(privileges=3 | TOURNAMENT_STAFF))


def bot_says(client, needle, target="#multiplayer"):
    return C.wait_for(client, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
                      and p.value.target == target and needle in p.value.content, timeout=10,
                      description=f"bot says {needle!r}")


def test_a_match_across_nodes_from_lobby_to_a_round_with_referees(pair, users, server):
    from tests.integration.test_multiplayer_common import create

    host = staff(pair, server, 0)
    player = staff(pair, server, 1)
    lobby = users(1)
    try:
        lobby.send(C.lobby_join())
        wait_world_sees(pair.nodes[1], host.user_id)
        match_id, _ = create(host)
        # the lobby of the other node hears of it, and a later lobby join lists it
        C.wait_for(lobby, lambda p: p.id in (C.MATCH_UPDATE, C.MATCH_NEW) and p.value.id == match_id, timeout=10)
        player.send(C.lobby_join())
        C.wait_for(player, lambda p: p.id == C.MATCH_NEW and p.value.id == match_id, timeout=10)
        # join from the other node
        player.send(C.match_join(match_id))
        joined = C.wait_for(player, lambda p: p.id == C.MATCH_JOIN_SUCCESS, timeout=10)
        assert joined.value.id == match_id
        C.wait_for(player, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer", timeout=10)
        C.wait_for(host, lambda p: p.id == C.MATCH_UPDATE and any(
            sl.user_id == player.user_id for sl in p.value.slots if sl.has_player), timeout=10)
        # a round: ready, start, load, scores, complete
        player.send(C.match_ready())
        C.wait_for(host, lambda p: p.id == C.MATCH_UPDATE and any(
            sl.user_id == player.user_id and int(sl.status) == 8 for sl in p.value.slots if sl.has_player), timeout=10)
        host.send(C.match_start())
        C.wait_for(player, lambda p: p.id == C.MATCH_START, timeout=10)
        host.send(C.match_load_complete())
        player.send(C.match_load_complete())
        for c in (host, player):
            C.wait_for(c, lambda p: p.id == C.MATCH_ALL_PLAYERS_LOADED, timeout=10)
        frame = C.score_frame(score=4242, slot_id=1)
        player.send(C.match_score_update(frame))
        got = C.wait_for(host, lambda p: p.id == C.MATCH_SCORE_UPDATE, timeout=10)
        assert got.value.total_score == 4242
        host.send(C.match_complete())
        player.send(C.match_complete())
        for c in (host, player):
            C.wait_for(c, lambda p: p.id == C.MATCH_COMPLETE, timeout=10)
        # #multiplayer chat and !mp from both nodes: the referee on the match's node gives the
        # host to the player; the player, referee on the other node, locks the match
        line = text("mp chat")
        player.send(C.public_message("#multiplayer", line))
        C.wait_for(host, lambda p: C.is_message(p, content=line, target="#multiplayer"), timeout=10)
        host.send(C.public_message("#multiplayer", f"!mp host {player.username}"))
        C.wait_for(player, lambda p: p.id == C.MATCH_TRANSFER_HOST, timeout=10)
        bot_says(player, "is now the host")
        player.send(C.public_message("#multiplayer", "!mp lock"))
        bot_says(player, "This match has been locked")
        bot_says(host, "This match has been locked")
        # the player leaves: the host sees the slot free again
        player.send(C.match_part())
        C.wait_for(host, lambda p: p.id == C.MATCH_UPDATE and not any(
            sl.user_id == player.user_id for sl in p.value.slots if sl.has_player), timeout=10)
        # a referee match made with !mp make on n1; the player (n2), added as referee, joins it
        # with !mp join from its own node
        bot = server.bot_name()
        host.send(C.private_message(bot, "!mp make cluster cup"))
        made = C.wait_for(host, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
                          and "Tourney match #" in p.value.content, timeout=10)
        ref_match = int(re.search(r"#(\d+)", made.value.content).group(1))
        host.send(C.private_message(bot, f"!mp join {ref_match}"))
        C.wait_for(host, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == ref_match, timeout=10)
        host.send(C.public_message("#multiplayer", f"!mp addref {player.username}"))
        C.wait_for(host, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
                   and player.username in p.value.content and p.value.target == "#multiplayer", timeout=10)
        player.send(C.private_message(bot, f"!mp join {ref_match}"))
        C.wait_for(player, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == ref_match, timeout=10)
        C.wait_for(player, lambda p: C.is_message(p, content=f"Attempting to join match #{ref_match}!"), timeout=10)
    finally:
        host.close()
        player.close()


TOURNEY_VERSION = "b20250306.2tourney"
SECRET = "clustersecret"


def test_a_tournament_client_observes_a_match_of_another_node(pair, users, server):
    from tests.integration.test_multiplayer_common import create

    host = staff(pair, server, 1)
    tourney_user = server.new_user(privileges=3 | TOURNAMENT_STAFF)
    far = pair.nodes[0].login(tourney_user, version=TOURNEY_VERSION)  # another node than the match
    near = pair.nodes[1].login(tourney_user, version=TOURNEY_VERSION)  # the match's node
    try:
        match_id, _ = create(host, SECRET)

        # 93: the same answer on both nodes (the censored update), once n1 knows the match
        def info(client):
            client.send(C.tournament_match_info(match_id))
            got = [p for p in client.received if p.id == C.MATCH_UPDATE and p.value.id == match_id]
            return got[-1] if got else None

        wait_until(lambda: info(far) is not None, timeout=10, what="93 answered on n1")
        answer = info(far)
        assert answer.raw == info(near).raw
        assert C.match_wire_password(answer) not in (None, SECRET) and answer.value.host_id == host.user_id
        # 108: the channel of the match of n2, without a slot
        far.send(C.tournament_join_match_channel(match_id))
        C.wait_for(far, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer", timeout=10)
        # the stream of updates, censored
        host.send(C.match_change_mods(64))
        update = C.wait_for(far, lambda p: p.id == C.MATCH_UPDATE and int(p.value.mods) == 64, timeout=10)
        assert C.match_wire_password(update) not in (None, SECRET)
        assert C.slot_of(update.value, far.user_id) is None
        # the channel's lines, both ways
        line = text("host to observer")
        host.send(C.public_message("#multiplayer", line))
        C.wait_for(far, lambda p: C.is_message(p, content=line, target="#multiplayer"), timeout=10)
        back = text("observer to host")
        far.send(C.public_message("#multiplayer", back))
        C.wait_for(host, lambda p: C.is_message(p, content=back, sender=tourney_user.name,
                                                target="#multiplayer"), timeout=10)
        # 109: 66, and the lines stop (a sentinel through the channel of another observer)
        far.send(C.tournament_leave_match_channel(match_id))
        C.wait_for(far, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#multiplayer", timeout=10)
        near.send(C.tournament_join_match_channel(match_id))
        C.wait_for(near, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer", timeout=10)
        after = text("after the leave")
        host.send(C.public_message("#multiplayer", after))
        C.wait_for(near, lambda p: C.is_message(p, content=after), timeout=10)
        newcomer = users(1)  # its login (83) reaches n1 after anything relayed for the line
        C.wait_for(far, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == newcomer.user_id, timeout=10)
        assert not [p for p in far.received if C.is_message(p, content=after)]
        # observe again; the match ends on its node: MATCH_DISPOSE and 66 reach the observer
        far.send(C.tournament_join_match_channel(match_id))
        C.wait_for(far, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer", timeout=10)
        host.send(C.match_part())
        C.wait_for(far, lambda p: p.id == C.MATCH_DISPOSE and p.value == match_id, timeout=10)
        C.wait_for(far, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#multiplayer", timeout=10)
    finally:
        for client in (host, far, near):
            client.close()


def test_irc_users_in_runtime_channels_of_another_node(pair, users, server):
    from tests.integration.test_multiplayer_common import create
    from tests.irc_client import IrcUser

    host = staff(pair, server, 1)
    referee = server.new_user(privileges=3 | TOURNAMENT_STAFF)
    irc_user = IrcUser(pair.nodes[0], referee.name)
    try:
        irc_user.welcome()
        match_id, _ = create(host)
        channel = f"#mp_{match_id}"
        # JOIN on n1 of the match channel of n2: decided there, the same JOIN/NAMES replies
        wait_world_sees(pair.nodes[0], host.user_id)

        def joined():
            irc_user.conn.join(channel)
            try:
                irc_user.wait(lambda e: e.type == "join" and e.target.lower() == channel, timeout=1,
                              what="JOIN of the match channel")
                return True
            except AssertionError:
                return False

        wait_until(joined, timeout=10, what=f"JOIN {channel} on n1")
        names = irc_user.wait(lambda e: e.type == "namreply", what="NAMES of the match channel")
        assert host.username.replace(" ", "_") in names.args[-1].split()
        # lines both ways; !mp runs on the match's node and its answer comes back
        line = text("game to irc")
        host.send(C.public_message("#multiplayer", line))
        irc_user.wait(lambda e: e.type == "pubmsg" and e.target.lower() == channel and e.args[0] == line,
                      timeout=10, what="the #multiplayer line of the host of n2")
        back = text("irc to game")
        irc_user.privmsg(channel, back)
        C.wait_for(host, lambda p: C.is_message(p, content=back, sender=referee.name, target="#multiplayer"),
                   timeout=10)
        irc_user.privmsg(channel, "!mp lock")
        bot_says(host, "locked")
        irc_user.wait(lambda e: e.type == "pubmsg" and e.target.lower() == channel and "locked" in e.args[0],
                      timeout=10, what="the bot's answer to !mp lock")
        # PART: echoed, and the lines stop (sentinel: a later PM of the host, the same path)
        irc_user.conn.part(channel)
        irc_user.wait(lambda e: e.type == "part" and e.target.lower() == channel, timeout=10, what="PART echo")
        gone = text("after the part")
        host.send(C.public_message("#multiplayer", gone))
        sentinel = text("sentinel")
        host.send(C.private_message(referee.name, sentinel))
        irc_user.wait(lambda e: e.type == "privmsg" and e.args[0] == sentinel, timeout=10, what="the sentinel PM")
        assert not [e for e in irc_user.events if e.type == "pubmsg" and e.args and e.args[0] == gone]
        # the spectator channel of a host of n2: the IRC user's game client (n1) spectates it
        game = pair.nodes[0].login(referee)
        spec_host = users(1)
        wait_world_sees(pair.nodes[0], spec_host.user_id)
        game.send(C.start_spectating(spec_host.user_id))
        C.wait_for(spec_host, lambda p: p.id == C.SPECTATOR_JOINED, timeout=10)
        spec = f"#spec_{spec_host.user_id}"
        irc_user.conn.join(spec)
        irc_user.wait(lambda e: e.type == "join" and e.target.lower() == spec, timeout=10, what=f"JOIN {spec}")
        spec_line = text("spectator chat")
        spec_host.send(C.public_message("#spectator", spec_line))
        irc_user.wait(lambda e: e.type == "pubmsg" and e.target.lower() == spec and e.args[0] == spec_line,
                      timeout=10, what="the #spectator line of the host of n2")
        game.close()
    finally:
        irc_user.close()
        host.close()


# ------------------------------------------------------------------------------ world answers
def test_online_count_and_api_give_the_world(pair, users):
    a = users(0)
    b = users(1)
    for node in pair.nodes:
        wait_world_sees(node, a.user_id)
        wait_world_sees(node, b.user_id)
    counts = [requests.get(n.url + "api/v1/onlineUsers", timeout=5).json()["result"] for n in pair.nodes]
    assert counts[0] == counts[1] and counts[0] >= 3, counts  # a, b and the bot
    wait_until(lambda: int(pair.redis.get("ripple:online_users") or 0) == counts[0], timeout=10,
               what="ripple:online_users is the world's count")
    for node in pair.nodes:
        info = requests.get(node.url + f"api/v2/clients/{b.user_id}", timeout=5)
        assert info.status_code == 200, info.text
        assert b.username in info.text


def test_wrong_node_poll_is_forwarded(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    note = text("fwd")
    a.send(C.private_message(b.username, note))
    # b polls n1 (the wrong node) with its n2 token: n1 forwards, b gets its queue, session kept
    wrong = C.BanchoClient(pair.nodes[0].url)
    wrong.token = b.token
    try:
        got = []
        wait_until(lambda: got.extend(wrong.poll()) or any(C.is_message(p, content=note) for p in got),
                   timeout=10, what="PM received through the wrong node")
        assert not any(p.id == C.RESTART for p in got)
    finally:
        wrong.close()
    assert "poll forwarded to 127.0.0.1:%d" % pair.nodes[1].port in pair.nodes[0].log_text()
    again = text("still")
    a.send(C.private_message(b.username, again))
    C.wait_for(b, lambda p: C.is_message(p, content=again), timeout=10)


# ------------------------------------------------------------------------------ web stack
def test_peppy_messages_are_handled_once_by_the_users_node(pair, users):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    note = text("notice")
    pair.redis.publish("peppy:notification", json.dumps({"userID": b.user_id, "message": note}))
    C.wait_for(b, lambda p: p.id == C.NOTIFICATION and p.value == note, timeout=10)
    later = text("later")
    pair.redis.publish("peppy:notification", json.dumps({"userID": b.user_id, "message": later}))
    C.wait_for(b, lambda p: p.id == C.NOTIFICATION and p.value == later, timeout=10)
    assert sum(1 for p in b.received if p.id == C.NOTIFICATION and p.value == note) == 1
    # peppy:bot_msg to a channel: once for everyone, whichever node they are on
    line = text("botline")
    pair.redis.publish("peppy:bot_msg", json.dumps({"to": "#osu", "message": line}))
    for c in (a, b):
        C.wait_for(c, lambda p: C.is_message(p, content=line), timeout=10)
    sentinel = text("sentinel")
    pair.redis.publish("peppy:bot_msg", json.dumps({"to": "#osu", "message": sentinel}))
    for c in (a, b):
        C.wait_for(c, lambda p: C.is_message(p, content=sentinel), timeout=10)
        assert sum(1 for p in c.received if C.is_message(p, content=line)) == 1


def test_silence_from_the_web_reaches_everyone(pair, users, server):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    server.db.execute("UPDATE users SET silence_end=%s, silence_reason='cluster' WHERE id=%s",
                      (int(time.time()) + 300, b.user_id))
    pair.redis.publish("peppy:silence", str(b.user_id))
    C.wait_for(b, lambda p: p.id == C.SILENCE_END and p.value > 0, timeout=10)
    C.wait_for(a, lambda p: p.id == C.USER_SILENCED and p.value == b.user_id, timeout=10)
    # the silence is known on n1: a PM to b is refused as "target silenced"
    def told():
        packets = a.send(C.private_message(b.username, text("to silenced"))) + a.drain(rounds=1)
        return any(p.id == C.TARGET_IS_SILENCED for p in packets)

    wait_until(told, timeout=10, what="a told that b is silenced")


def test_kick_and_ban_from_the_web(pair, users, server):
    a = users(0)
    b = users(1)
    wait_world_sees(pair.nodes[0], b.user_id)
    pair.redis.publish("peppy:disconnect", json.dumps({"userID": b.user_id, "reason": "cluster kick"}))
    C.wait_for(b, lambda p: p.id == C.NOTIFICATION and p.value == "cluster kick", timeout=10)
    C.wait_for(a, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == b.user_id, timeout=10)
    wait_world_sees(pair.nodes[0], b.user_id, online=False)
    # a ban: privileges 0 in MySQL, then peppy:ban; the node holding the user logs it out
    c = users(1)
    wait_world_sees(pair.nodes[0], c.user_id)
    server.db.execute("UPDATE users SET privileges=0 WHERE id=%s", (c.user_id,))
    pair.redis.publish("peppy:ban", str(c.user_id))
    C.wait_for(a, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == c.user_id, timeout=10)
    wait_world_sees(pair.nodes[0], c.user_id, online=False)


def test_staff_commands_reach_users_of_another_node(pair, users, server):
    admin = pair.nodes[0].login(server.new_user(privileges=3 | 64 | 524288))  # silence, kick
    target = users(1)
    bot = server.bot_name()
    try:
        wait_world_sees(pair.nodes[0], target.user_id)
        admin.send(C.private_message(bot, f"!silence {target.username} 5 m cluster test"))
        C.wait_for(target, lambda p: p.id == C.SILENCE_END and p.value > 0, timeout=10)
        C.wait_for(admin, lambda p: p.id == C.USER_SILENCED and p.value == target.user_id, timeout=10)
        # the silence holds on the target's own node: its next line is refused there
        line = text("while silenced")

        def refused():
            packets = target.send(C.public_message("#osu", line)) + target.drain(rounds=1)
            return any(p.id == C.SILENCE_END for p in packets)

        wait_until(refused, timeout=10, what="the target's node knows the silence")
        assert not any(C.is_message(p, content=line) for p in admin.drain(rounds=1))
        admin.send(C.private_message(bot, f"!kick {target.username}"))
        C.wait_for(target, lambda p: p.id == C.LOGIN_REPLY and p.value == -1, timeout=10)
        C.wait_for(admin, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == target.user_id, timeout=10)
        wait_world_sees(pair.nodes[1], target.user_id, online=False)
    finally:
        admin.close()


# ------------------------------------------------------------------------------ failure
def test_a_dead_node_users_leave_and_log_in_again_elsewhere(_test_world, server):
    from tests.integration.test_multiplayer_common import create

    from tests.irc_client import IrcUser

    cluster = Cluster(_test_world, ["f1", "f2", "f3"],
                      {"PEP_CLUSTER_NODE_TIMEOUT": str(FAST_TIMEOUT), "PEP_CLUSTER_HEARTBEAT": "0.5"})
    made = []
    irc_users = []
    try:
        n1, n2, n3 = cluster.nodes
        a = n1.login(server.new_user())
        c = n3.login(server.new_user())
        made += [a, c]
        b_user = server.new_user()
        b = n2.login(b_user)
        b2 = n2.login(server.new_user())
        made += [b, b2]
        wait_world_sees(n1, b.user_id)
        wait_world_sees(n3, b.user_id)
        wait_world_sees(n2, c.user_id)
        wait_world_sees(n1, b2.user_id)
        # a match on the dying node (host b, c of n3 seated) and one on n1 (made by a) whose
        # host is b2 of the dying node
        # the joiners sit in the lobby and join once their node lists the match, as a client does
        c.send(C.lobby_join())
        b2.send(C.lobby_join())
        dying, _ = create(b)
        C.wait_for(c, lambda p: p.id in (C.MATCH_NEW, C.MATCH_UPDATE) and p.value.id == dying, timeout=10)
        c.send(C.match_join(dying))
        C.wait_for(c, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == dying, timeout=10)
        # a tournament client of n1 observes it, an IRC referee of n3 is in its channel
        observer = n1.login(server.new_user(privileges=3 | TOURNAMENT_STAFF), version=TOURNEY_VERSION)
        made.append(observer)
        referee = IrcUser(n3, server.new_user(privileges=3 | TOURNAMENT_STAFF).name)
        irc_users.append(referee)
        referee.welcome()
        channel = f"#mp_{dying}"

        def observing():
            observer.send(C.tournament_join_match_channel(dying))
            return any(p.id == C.CHANNEL_JOIN_SUCCESS for p in observer.received)

        def in_channel():
            referee.conn.join(channel)
            referee.pump(0.3)
            return any(e.type == "join" and e.target.lower() == channel for e in referee.events)

        wait_until(observing, timeout=10, what="the observer of n1 in the match of n2")
        wait_until(in_channel, timeout=10, what=f"the IRC referee of n3 in {channel}")
        surviving, _ = create(a)
        C.wait_for(b2, lambda p: p.id in (C.MATCH_NEW, C.MATCH_UPDATE) and p.value.id == surviving, timeout=10)
        b2.send(C.match_join(surviving))
        C.wait_for(b2, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == surviving, timeout=10)
        C.wait_for(a, lambda p: p.id == C.MATCH_UPDATE and any(
            sl.user_id == b2.user_id for sl in p.value.slots if sl.has_player), timeout=10)
        a.send(C.match_transfer_host(1))
        C.wait_for(b2, lambda p: p.id == C.MATCH_TRANSFER_HOST, timeout=10)
        os.kill(n2.proc.proc.pid, signal.SIGKILL)
        n2.proc.proc.wait(timeout=10)
        killed = time.monotonic()
        C.wait_for(a, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == b.user_id,
                   timeout=FAST_TIMEOUT + 10, description="b leaves when its node dies")
        assert time.monotonic() - killed >= FAST_TIMEOUT - 1  # not before the timeout
        wait_world_sees(n3, b.user_id, online=False)
        # the match of the dead node is closed for c; a gets the host of its match back
        C.wait_for(c, lambda p: p.id == C.MATCH_DISPOSE and p.value == dying, timeout=10)
        C.wait_for(observer, lambda p: p.id == C.MATCH_DISPOSE and p.value == dying, timeout=10)
        C.wait_for(observer, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#multiplayer", timeout=10)
        referee.wait(lambda e: e.type == "part" and e.target.lower() == channel, timeout=10,
                     what=f"PART {channel} when its node died")
        C.wait_for(a, lambda p: p.id == C.MATCH_TRANSFER_HOST, timeout=10)
        C.wait_for(a, lambda p: p.id == C.MATCH_UPDATE and p.value.id == surviving and p.value.host_id == a.user_id
                   and not any(sl.user_id == b2.user_id for sl in p.value.slots if sl.has_player), timeout=10)
        # the other sessions are intact: a and c still talk across n1 and n3
        line = text("alive")
        a.send(C.private_message(c.username, line))
        C.wait_for(c, lambda p: C.is_message(p, content=line), timeout=10)
        # b logs in again on a surviving node and is seen by everyone
        b2 = n3.login(b_user)
        made.append(b2)
        C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == b_user.id, timeout=10)
        wait_world_sees(n1, b_user.id)
    finally:
        for cl in made:
            cl.close()
        for irc_user in irc_users:
            irc_user.close()
        cluster.close()


def test_a_clean_stop_leaves_the_world_to_the_others(_test_world, server):
    cluster = Cluster(_test_world, ["g1", "g2"])
    made = []
    try:
        n1, n2 = cluster.nodes
        a = n1.login(server.new_user())
        b = n2.login(server.new_user())
        made += [a, b]
        wait_world_sees(n1, b.user_id)
        b_ip_key = f"peppy:sessions:{b.user_id}"
        assert cluster.redis.sismember(b_ip_key, "127.0.0.1")
        assert n1.proc.stop() == 0
        # b's node hears "bye" and the user leaves at once (no timeout); the world's count and
        # b's address in peppy:sessions stay
        wait_world_sees(n2, a.user_id, online=False, timeout=5)
        C.wait_for(b, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == a.user_id, timeout=5)
        count = requests.get(n2.url + "api/v1/onlineUsers", timeout=5).json()["result"]
        wait_until(lambda: int(cluster.redis.get("ripple:online_users") or -1) == count, timeout=10,
                   what="ripple:online_users is the remaining world's count")
        assert cluster.redis.sismember(b_ip_key, "127.0.0.1")
    finally:
        for cl in made:
            cl.close()
        cluster.close()


def test_a_new_node_gets_the_world_before_serving(_test_world, server):
    cluster = Cluster(_test_world, ["s1"])
    made = []
    try:
        a = cluster.nodes[0].login(server.new_user())
        made.append(a)
        n2 = cluster.add("s2")
        # no waiting: the snapshot is taken before the node answers its first request
        assert requests.get(n2.url + f"api/v1/isOnline?id={a.user_id}", timeout=5).json()["result"] is True
        b = n2.login(server.new_user(), drain=False)
        made.append(b)
        assert a.user_id in presence_ids(b.login_result.packets)
    finally:
        for cl in made:
            cl.close()
        cluster.close()


# ------------------------------------------------------------------------------ nginx
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/setup.sh --test installs it)")
def test_through_nginx_with_the_shipped_configuration(_test_world, server, tmp_path):
    cluster = Cluster(_test_world, [])
    made = []
    proc = None
    try:
        # the ports the nodes really listen on (a start retries on another port when one is taken)
        ports = [cluster.add("n1").port, cluster.add("n2").port]
        listen = free_port()
        shipped = (REPO / "ext" / "nginx-cluster.conf").read_text()
        assert "127.0.0.1:5001" in shipped and "127.0.0.1:5002" in shipped and "listen 80;" in shipped
        conf = (shipped.replace("127.0.0.1:5001", f"127.0.0.1:{ports[0]}")
                .replace("127.0.0.1:5002", f"127.0.0.1:{ports[1]}")
                .replace("listen 80;", f"listen 127.0.0.1:{listen};"))
        (tmp_path / "cluster.conf").write_text(conf)
        (tmp_path / "nginx.conf").write_text(
            f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\ndaemon off;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n access_log off;\n client_body_temp_path {tmp_path}/body;\n"
            f" proxy_temp_path {tmp_path}/proxy;\n fastcgi_temp_path {tmp_path}/fcgi;\n"
            f" uwsgi_temp_path {tmp_path}/uwsgi;\n scgi_temp_path {tmp_path}/scgi;\n"
            f" include {tmp_path}/cluster.conf;\n}}\n")
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{listen}/"
        wait_until(lambda: _answers(url), timeout=15, what="nginx answers")
        # logins through nginx land on either node; every poll reaches the token's node
        via = []
        for _ in range(4):
            cl = C.BanchoClient(url)
            user = server.new_user()
            res = cl.login(user.name, user.password)
            assert res.user_id == user.id, res.packets
            cl.user = user
            made.append(cl)
            via.append(cl)
        nodes = {cl.token.split(".")[0] for cl in via}
        assert nodes == {"n1", "n2"}, nodes  # round robin over the two nodes
        direct = cluster.nodes[1].login(server.new_user())
        made.append(direct)
        for cl in via:
            line = text("via nginx")
            cl.send(C.private_message(direct.username, line))
            C.wait_for(direct, lambda p, line=line: C.is_message(p, content=line), timeout=10)
            back = text("back")
            direct.send(C.private_message(cl.user.name, back))
            C.wait_for(cl, lambda p, back=back: C.is_message(p, content=back), timeout=10)
        # the polls were answered by the owning node, not forwarded
        for node in cluster.nodes:
            assert "poll forwarded" not in node.log_text()
    finally:
        for cl in made:
            cl.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        cluster.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
