"""Presence, stats, status changes, logout/timeout, friends and restricted users.

Specs: docs/protocol.md §7.1, §7.4, §7.7; docs/rules.md §3, §4 and scenarios S70-S74;
docs/rules.md §7.2–7.3.
"""

from __future__ import annotations

import math
import time

from tests import client as C
from tests.waiting import holds_for, past_logout_grace, wait_until



def presence_of(packets, user_id):
    return [p for p in C.values(packets, C.USER_PRESENCE) if p.user_id == user_id]


def stats_of(packets, user_id):
    return [s for s in C.values(packets, C.USER_STATS) if s.user_id == user_id]


def quits_of(packets, user_id):
    return [q for q in C.values(packets, C.USER_LOGOUT) if q.user_id == user_id]


def wait_own_stats(client, predicate=lambda s: True, timeout=5.0):
    """Wait for a packet 11 about the client itself (stats reloads may be asynchronous)."""
    return C.wait_for(
        client,
        lambda p: p.id == C.USER_STATS and p.value.user_id == client.user_id and predicate(p.value),
        timeout=timeout,
        description=f"own 11 of {client.user_id}",
    ).value


def wait_past_grace(client):
    """Return once ``client``'s session is older than the logout grace period."""
    past_logout_grace(client)


# --------------------------------------------------------------------------------------------
# login visibility and requests
# --------------------------------------------------------------------------------------------
def test_new_login_is_announced_to_online_users(server):
    a = server.connect()
    b = server.connect()
    p = C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == b.user_id, description="83 of B")
    assert p.value.username == b.user.name
    assert p.value.utc_offset == 1


def test_stats_request_s70(server):
    a = server.connect()
    b = server.connect()
    r = server.connect(privileges=2, stem="r")
    offline = 999999
    a.drain()
    packets = a.send(C.stats_request([b.user_id, r.user_id, offline, a.user_id]))
    packets += a.drain(rounds=1)
    got = {s.user_id for s in C.values(packets, C.USER_STATS)}
    assert b.user_id in got, packets
    assert a.user_id not in got, "a stats request is not answered for the requester itself"
    assert r.user_id not in got, "restricted users are invisible (FIX)"
    assert offline not in got
    sb = stats_of(packets, b.user_id)[0]
    assert sb.mode == 0 and 0.0 <= sb.accuracy <= 1.0


def test_presence_request(server):
    a = server.connect()
    b = server.connect()
    a.drain()
    packets = a.send(C.presence_request([b.user_id]))
    packets += a.drain(rounds=1)
    pres = presence_of(packets, b.user_id)
    assert pres, packets
    assert pres[0].username == b.user.name
    # the bot answers too
    packets = a.send(C.presence_request([C.BOT_ID, 999999]))
    assert presence_of(packets, C.BOT_ID)[0].username == server.bot_name()
    assert not presence_of(packets, 999999)


def test_presence_request_all(server):
    a = server.connect()
    b = server.connect()
    r = server.connect(privileges=2, stem="r")
    a.drain()
    packets = a.send(C.presence_request_all())
    packets += a.drain(rounds=1)
    ids = {p.user_id for p in C.values(packets, C.USER_PRESENCE)}
    assert {a.user_id, b.user_id, C.BOT_ID} <= ids, packets
    assert r.user_id not in ids


# --------------------------------------------------------------------------------------------
# status changes
# --------------------------------------------------------------------------------------------
def test_change_action_playing_then_idle_then_afk(server):
    a = server.connect()
    b = server.connect()
    md5 = "0123456789abcdef0123456789abcdef"
    packets = a.send(C.change_action(2, "Artist - Title [Insane]", md5, 24, 0, 12345)) + a.drain(rounds=1)
    own = stats_of(packets, a.user_id)
    assert own, f"A gets its own 11 after a status change: {packets!r}"
    s = own[-1]
    assert s.action == 2
    assert s.text == "[VN] Artist - Title [Insane]"
    assert s.beatmap_md5 == md5 and s.mods == 24 and s.mode == 0 and s.beatmap_id == 12345

    # what others see through a stats request
    b.drain()
    packets = b.send(C.stats_request([a.user_id])) + b.drain(rounds=1)
    seen = stats_of(packets, a.user_id)
    assert seen and seen[-1].text == "[VN] Artist - Title [Insane]" and seen[-1].action == 2
    assert seen[-1].beatmap_id == 12345

    # idle: the client's text is dropped
    packets = a.send(C.change_action(0, "ignored text", "", 0, 0, 0)) + a.drain(rounds=1)
    s = stats_of(packets, a.user_id)
    assert s, packets
    assert s[-1].action == 0 and s[-1].text == "[VN]"

    # AFK: same
    packets = a.send(C.change_action(1, "whatever", "", 0, 0, 0)) + a.drain(rounds=1)
    s = stats_of(packets, a.user_id)
    assert s and s[-1].action == 1 and s[-1].text == "[VN]"


def test_change_action_mode_switch_reloads_mode_stats(server):
    a = server.connect()
    server.db.execute("UPDATE users_stats SET pp_taiko=321, playcount_taiko=9 WHERE id=%s", (a.user_id,))
    a.send(C.change_action(0, "", "", 0, 1, 0))
    s = wait_own_stats(a, lambda s: s.mode == 1)
    assert s.pp == 321 and s.playcount == 9


def test_request_status_update_s71(server):
    a = server.connect()
    server.db.execute(
        "UPDATE users_stats SET pp_std=1234, playcount_std=77, ranked_score_std=555666777, "
        "total_score_std=888999000, avg_accuracy_std=95.5 WHERE id=%s",
        (a.user_id,),
    )
    a.send(C.request_status_update())
    s = wait_own_stats(a)
    assert s.pp == 1234
    assert s.playcount == 77
    assert s.ranked_score == 555666777
    assert s.total_score == 888999000
    assert math.isclose(s.accuracy, 0.955, rel_tol=1e-4)


def test_rank_comes_from_redis_leaderboard(server):
    a = server.connect()
    b = server.new_user()
    server.redis.zadd("ripple:leaderboard:std", {str(b.id): 10**9, str(a.user_id): 10**9 - 1})
    try:
        server.db.execute("UPDATE users_stats SET pp_std=100 WHERE id=%s", (a.user_id,))
        a.send(C.request_status_update())
        s = wait_own_stats(a)
        assert s.rank == 2, s
    finally:
        server.redis.raw.zrem(server.redis.key("ripple:leaderboard:std"), str(b.id), str(a.user_id))


# --------------------------------------------------------------------------------------------
# logout, re-login, timeout
# --------------------------------------------------------------------------------------------
def test_logout_after_grace_s73(server):
    b = server.connect()
    a = server.connect()
    C.wait_for(b, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == a.user_id)
    wait_past_grace(a)
    a.send(C.logout())
    q = C.wait_for(b, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == a.user_id, description="12 of A")
    assert q.value.state == 0
    packets = a.poll()
    assert C.of(packets, C.RESTART), f"old token after logout must get 86: {packets!r}"
    assert C.of(packets, C.NOTIFICATION), "86 comes with a notification (Kawata)"
    # A is gone for everybody
    assert not presence_of(b.send(C.presence_request([a.user_id])), a.user_id)


def test_logout_within_grace_is_ignored(server):
    b = server.connect()
    a = server.connect(drain=False)
    a.send(C.logout())  # immediately after login: stale logout of a previous session
    packets = a.poll()
    assert not C.of(packets, C.RESTART), "logout within the grace period must be ignored"
    b_packets = C.collect(b, 0.4)
    assert not quits_of(b_packets, a.user_id)
    # A is still online and visible
    assert presence_of(b.send(C.presence_request([a.user_id])), a.user_id)
    past_logout_grace(a)  # the ignored logout stays ignored once the grace is over
    assert not C.of(a.poll(), C.RESTART)


def test_second_login_replaces_first_token(server):
    b = server.connect()
    user = server.new_user()
    count = server.settled_online_users() + 1
    c1 = server.client()
    assert c1.login(user.name, user.password).user_id == user.id
    assert server.wait_online_users(count) == count
    c2 = server.client()
    assert c2.login(user.name, user.password).user_id == user.id
    assert C.of(c1.poll(), C.RESTART), "the first token must be dropped"
    assert not C.of(c2.poll(), C.RESTART)
    assert server.settled_online_users() == count
    # exactly one session for the user remains: B sees it once in a presence request
    b.drain()
    pres = presence_of(b.send(C.presence_request([user.id])), user.id)
    assert len(pres) == 1


def test_session_timeout(server, start_server):
    second = start_server({"PEP_SESSIONS_TIMEOUT": "4", "PEP_SESSIONS_TIMEOUT_CHECK": "0.3"})
    assert second.wait_online_users(1) == 1, "only the bot is online on a fresh server"
    # the accounts first (a subprocess each, slow on a loaded machine), then two quick logins, so
    # that A cannot time out before B is online
    user_a, user_b = second.new_user(), second.new_user()
    a = second.login(user_a)
    b = second.login(user_b)
    assert second.wait_online_users(3) == 3
    # A stops polling; B keeps polling and learns that A left
    q = C.wait_for(
        b, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == a.user_id, timeout=15, interval=0.2,
        description="12 of the timed-out A",
    )
    assert q.value.user_id == a.user_id
    assert C.of(a.poll(), C.RESTART), "a timed-out token gets 86"
    assert not C.of(b.poll(), C.RESTART), "B kept polling and must still be online"
    assert second.wait_online_users(2) == 2


# --------------------------------------------------------------------------------------------
# friends
# --------------------------------------------------------------------------------------------
def relation_count(server, a, b):
    return server.db.scalar(
        "SELECT COUNT(*) AS n FROM users_relationships WHERE user1=%s AND user2=%s", (a, b)
    )


def test_friend_add_and_remove(server):
    a = server.connect()
    b = server.connect()
    missing = 987654
    a.send(C.friend_add(a.user_id), C.friend_add(missing), C.friend_add(b.user_id))
    assert wait_until(lambda: relation_count(server, a.user_id, b.user_id) >= 1)
    a.send(C.friend_add(b.user_id))  # already a friend: ignored
    a.send(C.ping())
    holds_for(lambda: relation_count(server, a.user_id, b.user_id) == 1, 0.2,
              what="adding twice must not duplicate the row")
    assert relation_count(server, a.user_id, a.user_id) == 0, "self-friending is ignored"
    assert relation_count(server, a.user_id, missing) == 0, "a non-existent user cannot be added (FIX)"
    assert relation_count(server, b.user_id, a.user_id) == 0, "friendship is one-directional"

    # re-login: 72 contains B
    a2 = server.client()
    res = a2.login(a.user.name, a.user.password)
    assert res.user_id == a.user_id
    friends = res.values(C.FRIENDS_LIST)
    assert len(friends) == 1 and b.user_id in friends[0]

    a2.send(C.friend_remove(b.user_id))
    assert wait_until(lambda: relation_count(server, a.user_id, b.user_id) == 0)
    # removing again is harmless
    packets = a2.send(C.friend_remove(b.user_id))
    assert not C.of(packets, C.RESTART)
    res = server.client().login(a.user.name, a.user.password)
    assert b.user_id not in res.values(C.FRIENDS_LIST)[0]


def test_friend_add_twice_in_one_request_no_duplicate(server):
    # docs/rules.md §4: "ignore if already a friend"; no unique index exists, so the check must
    # also hold when both adds arrive in the same request
    a = server.connect()
    b = server.connect()
    a.send(C.friend_add(b.user_id), C.friend_add(b.user_id))
    assert wait_until(lambda: relation_count(server, a.user_id, b.user_id) >= 1)
    holds_for(lambda: relation_count(server, a.user_id, b.user_id) == 1, 0.3, what="one row only")


# --------------------------------------------------------------------------------------------
# restricted users (S74)
# --------------------------------------------------------------------------------------------
def test_restricted_user_s74(server):
    a = server.connect()
    a.drain()
    rc = server.client()
    ruser = server.new_user(privileges=2, stem="r")
    res = rc.login(ruser.name, ruser.password)
    assert res.user_id == ruser.id, res.packets
    # R sees itself, A and the bot, and gets a bot PM about the restriction
    assert presence_of(res.packets, ruser.id) and stats_of(res.packets, ruser.id)
    assert presence_of(res.packets, a.user_id)
    assert presence_of(res.packets, C.BOT_ID)
    r_packets = res.packets + rc.drain()
    bot_pms = [m for m in C.values(r_packets, C.SEND_MESSAGE) if m.sender_id == C.BOT_ID]
    if not bot_pms:
        bot_pms = [C.wait_for(rc, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID).value]
    assert bot_pms[0].target == ruser.name and "restrict" in bot_pms[0].content.lower()

    # A is not told about R; a later login (sentinel) is
    s = server.connect()
    C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == s.user_id)
    assert not presence_of(a.received, ruser.id), "restricted users are never announced"

    # R's own requests work
    packets = rc.send(C.stats_request([a.user_id]), C.presence_request([a.user_id])) + rc.drain(rounds=1)
    assert stats_of(packets, a.user_id) and presence_of(packets, a.user_id)
    rc.send(C.request_status_update())
    wait_own_stats(rc)

    # others cannot see R on request
    packets = a.send(C.stats_request([ruser.id]), C.presence_request([ruser.id])) + a.drain(rounds=1)
    assert not stats_of(packets, ruser.id) and not presence_of(packets, ruser.id)

    # R is mute: public message and PM reach nobody; a PM to R is dropped silently
    rc.send(C.public_message("#osu", "restricted hello"), C.private_message(a.user.name, "restricted pm"))
    packets = a.send(C.private_message(ruser.name, "to restricted"))
    assert not C.of(packets, C.USER_DM_BLOCKED) and not C.of(packets, C.TARGET_IS_SILENCED)
    s.send(C.private_message(a.user.name, "sentinel after R"))
    C.wait_for(a, lambda p: C.is_message(p, content="sentinel after R"))
    contents = [m.content for m in C.values(a.received, C.SEND_MESSAGE)]
    assert "restricted hello" not in contents and "restricted pm" not in contents
    r_msgs = [m.content for m in C.values(rc.drain(), C.SEND_MESSAGE)]
    assert "to restricted" not in r_msgs

    # R may join a public channel it is not in yet
    extra = server.db.scalar(
        "SELECT name FROM bancho_channels WHERE public_read=1 AND name NOT IN ('#osu','#announce','#lobby') "
        "ORDER BY name LIMIT 1"
    ) or "#lobby"
    packets = rc.send(C.channel_join(extra)) + rc.drain(rounds=1)
    assert extra in C.values(packets, C.CHANNEL_JOIN_SUCCESS)

    # R logs out: A gets no 12 for R (sentinel: S logs out afterwards)
    past_logout_grace(rc, s)
    rc.send(C.logout())
    assert C.of(rc.poll(), C.RESTART)
    s.send(C.logout())
    C.wait_for(a, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == s.user_id)
    assert not quits_of(a.received, ruser.id), "no USER_LOGOUT for restricted users (FIX)"


# --------------------------------------------------------------------------------------------
# the login reply's presences (the token list's cached block, objects/tokenlist.py)
# --------------------------------------------------------------------------------------------
def login_presences(server):
    """Log a new user in; returns (client, {user id: [its 83 in the login reply]})."""
    c = server.client()
    user = server.new_user()
    res = c.login(user.name, user.password)
    assert res.user_id == user.id, res.packets
    shown: dict[int, list] = {}
    for p in C.values(res.packets, C.USER_PRESENCE):
        shown.setdefault(p.user_id, []).append(p)
    return c, shown


def test_login_reply_follows_logins_logouts_status_and_restriction(server):
    """Every login reply shows who is online now: each later login sees a user who logged in,
    a mode change, a logout, a restriction and a lift, and lists every user once."""
    a = server.connect()
    _, shown = login_presences(server)  # builds the cached block
    assert [p.mode for p in shown[a.user_id]] == [0]
    assert all(len(v) == 1 for v in shown.values()), "one 83 per user"
    b = server.connect()  # logged in after the block was built
    _, shown = login_presences(server)
    assert b.user_id in shown and a.user_id in shown
    a.send(C.change_action(0, "", "", 0, 2, 0))  # catch the beat: the presence carries the mode
    wait_own_stats(a, lambda s: s.mode == 2)
    _, shown = login_presences(server)
    assert [p.mode for p in shown[a.user_id]] == [2]
    # B logs out (past the grace period), then is restricted and unrestricted while online again
    wait_past_grace(b)
    b.send(C.logout())  # answered after the session is gone
    assert b.user_id not in login_presences(server)[1]
    b2 = server.client()
    assert b2.login(b.user.name, b.user.password).user_id == b.user_id
    _, shown = login_presences(server)
    assert b.user_id in shown
    server.db.execute("UPDATE users SET privileges=2 WHERE id=%s", (b.user_id,))
    server.redis.publish("peppy:ban", str(b.user_id))
    C.wait_for(b2, lambda p: p.id == C.ACCOUNT_RESTRICTED, description="104")
    _, shown = login_presences(server)
    assert b.user_id not in shown and a.user_id in shown
    server.db.execute("UPDATE users SET privileges=3 WHERE id=%s", (b.user_id,))
    server.redis.publish("peppy:ban", str(b.user_id))
    C.wait_for(a, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == b.user_id, description="83 of B")
    _, shown = login_presences(server)
    assert len(shown[b.user_id]) == 1 and len(shown[a.user_id]) == 1
