"""Redis pub/sub bridge and the Redis keys of the web stack, against a running server.

Specs: docs/integration.md §1–3 (channels, payloads, handlers, keys); docs/rules.md §7.2–7.3
(logout, kick, ban, restricted); docs/schema.md §2.3 (privilege states), §2.4 (silence).

Every message is published on the server's *prefixed* channel (``server.redis.publish``).
Negative checks use a sentinel: the listener handles messages one at a time in arrival order,
so once a later notification has arrived, whatever an earlier message caused has arrived too.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests import client as C
from tests.waiting import holds_for, past_logout_grace, wait_until

KAWATA_FULL_PERMS = 136104116219  # an admin preset of the kawata flavour (docs/schema.md §2.3)
TOURNEY_VERSION = "b20250306.2tourney"
TOURNAMENT_STAFF = 2097152
CHANNELS = (
    "peppy:disconnect", "peppy:change_username", "peppy:reload_settings", "peppy:reload_chat_channels",
    "peppy:update_cached_stats", "peppy:silence", "peppy:ban", "peppy:notification",
    "peppy:set_main_menu_icon", "peppy:refresh_privs", "peppy:change_pass", "peppy:bot_msg",
)
RENAMED = "Your username has been changed to {}. Please log in again."
RENAME_FAILED = "There was a critical error while trying to change your username. Please contact a developer."


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def numsub(srv, channel="peppy:ban") -> int:
    ((_, n),) = srv.redis.raw.pubsub_numsub(srv.prefix + channel)
    return int(n)


def listener_connections(srv) -> list[dict]:
    """The server's own pub/sub connection(s), found by the name it sets (never another's)."""
    name = "pep.py-pubsub:" + srv.prefix
    return [c for c in srv.redis.raw.client_list() if c.get("name") == name]


def wait_subscribed(srv, timeout=10.0) -> None:
    wait_until(lambda: numsub(srv) >= 1, timeout, what=f"{srv.prefix}peppy:ban subscribed")


def pub(srv, channel, payload) -> None:
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload)
    srv.redis.publish(channel, payload)


def text(stem="t") -> str:
    return f"{stem} {secrets.token_hex(4)}"


def sentinel(srv, *clients) -> None:
    """Publish a notification to each client and wait for it (everything before has arrived)."""
    for c in clients:
        t = text("sentinel")
        pub(srv, "peppy:notification", {"userID": c.user_id, "message": t})
        C.wait_for(c, lambda p, t=t: p.id == C.NOTIFICATION and p.value == t, description=f"sentinel {t!r}")


def since(c, start):
    return c.received[start:]


def notifications(packets):
    return C.values(packets, C.NOTIFICATION)


def wait_notification(c, value, timeout=5.0):
    return C.wait_for(c, lambda p: p.id == C.NOTIFICATION and p.value == value, timeout=timeout,
                      description=f"notification {value!r}")


def wait_login_reply(c, value, timeout=5.0):
    return C.wait_for(c, lambda p: p.id == C.LOGIN_REPLY and p.value == value, timeout=timeout,
                      description=f"login reply {value}")


def wait_quit(c, user_id, timeout=5.0):
    return C.wait_for(c, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == user_id, timeout=timeout,
                      description=f"12 of {user_id}")


def bot_pm(c, content, timeout=5.0):
    return C.wait_for(c, lambda p: C.is_message(p, content=content, sender_id=C.BOT_ID), timeout=timeout,
                      description=f"bot PM {content!r}")


def user_row(srv, user_id):
    return srv.db.one("SELECT * FROM users WHERE id=%s", (user_id,))


def assert_gone(c):
    """The session is over: a poll with its token is answered as an unknown token (86)."""
    packets = c.drain(rounds=2)
    assert C.of(packets, C.RESTART), f"the session should be gone, got {packets!r}"


# --------------------------------------------------------------------------------------------
# the listener
# --------------------------------------------------------------------------------------------
def test_listener_subscribes_every_channel_with_the_prefix(server):
    wait_subscribed(server)
    for channel in CHANNELS:
        assert numsub(server, channel) >= 1, f"{server.prefix}{channel} has no subscriber"
    conns = listener_connections(server)
    assert len(conns) == 1, f"expected one named pub/sub connection, got {conns!r}"
    assert int(conns[0]["sub"]) == len(CHANNELS)


def test_malformed_messages_are_skipped_and_the_listener_survives(server):
    a = server.connect()
    b = server.connect()
    start = len(a.received)
    bad = [
        ("peppy:disconnect", "not json"),
        ("peppy:disconnect", json.dumps({"userID": a.user_id})),  # missing key
        ("peppy:disconnect", json.dumps({"userID": a.user_id, "reason": "x", "extra": 1})),  # extra key
        ("peppy:disconnect", json.dumps({"userID": "abc", "reason": "x"})),  # not an id
        ("peppy:disconnect", json.dumps({"userID": True, "reason": "x"})),
        ("peppy:disconnect", json.dumps({"userID": a.user_id, "reason": 5})),  # reason not a string
        ("peppy:disconnect", json.dumps([a.user_id, "x"])),
        ("peppy:disconnect", b"\xff\xfe{"),
        ("peppy:ban", "abc"),
        ("peppy:ban", "12.5"),
        ("peppy:ban", ""),
        ("peppy:ban", "-5"),
        ("peppy:silence", json.dumps({"userID": a.user_id})),
        ("peppy:update_cached_stats", "99999999999999"),
        ("peppy:notification", json.dumps({"userID": a.user_id, "msg": "wrong key"})),
        ("peppy:bot_msg", json.dumps({"to": a.user.name, "message": None})),
        ("peppy:reload_settings", "reload please"),
        ("peppy:change_pass", json.dumps({"userID": a.user_id})),
    ]
    for channel, payload in bad:
        pub(server, channel, payload)
    # the listener is still there and handles the next message; a decimal string id is accepted
    t = text("after")
    pub(server, "peppy:notification", {"userID": str(a.user_id), "message": t})
    wait_notification(a, t)
    got = since(a, start)
    assert not C.of(got, C.LOGIN_REPLY), f"a malformed message had an effect: {got!r}"
    assert notifications(got) == [t]
    assert not C.of(got, C.SEND_MESSAGE)
    sentinel(server, b)
    assert "malformed message" in server.log_text()
    assert len(listener_connections(server)) == 1


# --------------------------------------------------------------------------------------------
# peppy:disconnect
# --------------------------------------------------------------------------------------------
def test_disconnect_kicks_every_session_with_the_reason(server):
    user = server.new_user(privileges=3 | TOURNAMENT_STAFF)  # tournament clients need it
    game = server.login(user)
    tourney = server.login(user, version=TOURNEY_VERSION)
    observer = server.connect()
    reason = text("Reloading data...")
    pub(server, "peppy:disconnect", {"userID": user.id, "reason": reason})
    for c in (game, tourney):
        n = wait_notification(c, reason)
        r = wait_login_reply(c, -1)
        assert c.received.index(n) < c.received.index(r), "the notification comes before the login reply"
    wait_quit(observer, user.id)
    assert_gone(game)
    assert_gone(tourney)


def test_disconnect_with_an_empty_reason_sends_no_notification(server):
    c = server.connect()
    start = len(c.received)
    pub(server, "peppy:disconnect", {"userID": c.user_id, "reason": ""})
    wait_login_reply(c, -1)
    assert notifications(since(c, start)) == []


def test_disconnect_of_an_offline_user_does_nothing(server):
    a = server.connect()
    offline = server.new_user()
    pub(server, "peppy:disconnect", {"userID": offline.id, "reason": "x"})
    start = len(a.received)
    sentinel(server, a)
    assert not C.of(since(a, start), C.LOGIN_REPLY)


# --------------------------------------------------------------------------------------------
# peppy:change_username
# --------------------------------------------------------------------------------------------
def test_change_username_of_an_offline_user(server):
    user = server.new_user()
    old_safe = user.name.lower()
    new = f"Ren {secrets.token_hex(5)}"  # a space: the safe form gets an underscore
    server.redis.set(f"ripple:userid_cache:{old_safe}", user.id, ex=3600)
    pub(server, "peppy:change_username", {"userID": user.id, "newUsername": new})
    row = wait_until(lambda: (r := user_row(server, user.id)) and r["username"] == new and r, what="rename in MySQL")
    assert row["username_safe"] == new.lower().replace(" ", "_")
    assert f"Username change: '{user.name}' -> '{new}'" in (row["notes"] or "")
    assert server.db.scalar("SELECT username FROM users_stats WHERE id=%s", (user.id,)) == new
    # the flavour's other stats tables follow the transaction (best effort, ripple.rename_user)
    wait_until(lambda: server.db.scalar("SELECT username FROM users_stats_relax WHERE id=%s", (user.id,)) == new,
               what="rename in users_stats_relax")
    wait_until(lambda: not server.redis.exists(f"ripple:userid_cache:{old_safe}"), what="userid cache deleted")
    # the new name logs in, the old one does not
    c = server.client()
    assert c.login(new, user.password).user_id == user.id
    assert server.client().login(user.name, user.password).user_id != user.id


def test_change_username_of_an_idle_user_renames_and_kicks(server):
    c = server.connect()
    observer = server.connect()
    new = server.unique_name("renamed")
    pub(server, "peppy:change_username", {"userID": c.user_id, "newUsername": new})
    wait_notification(c, RENAMED.format(new))
    wait_login_reply(c, -1)
    wait_quit(observer, c.user_id)
    assert user_row(server, c.user_id)["username"] == new
    assert not server.redis.exists(f"ripple:change_username_pending:{c.user_id}")


def test_change_username_while_playing_is_deferred_until_logout(server):
    c = server.connect()
    old = c.user.name
    c.send(C.change_action(2, "Artist - Title [Hard]", "a" * 32))
    new = server.unique_name("later")
    start = len(c.received)
    pub(server, "peppy:change_username", {"userID": c.user_id, "newUsername": new})
    wait_until(lambda: server.redis.get(f"ripple:change_username_pending:{c.user_id}") == new,
               what="pending rename key")
    sentinel(server, c)
    assert not C.of(since(c, start), C.LOGIN_REPLY), "a playing user must not be kicked"
    assert user_row(server, c.user_id)["username"] == old
    # logout: the server republishes the pending rename to itself
    past_logout_grace(c)
    c.send(C.logout())
    wait_until(lambda: user_row(server, c.user_id)["username"] == new, what="rename at logout")
    wait_until(lambda: not server.redis.exists(f"ripple:change_username_pending:{c.user_id}"),
               what="pending key deleted")


def test_change_username_to_a_taken_name_is_refused(server):
    c = server.connect()
    other = server.new_user()
    pub(server, "peppy:change_username", {"userID": c.user_id, "newUsername": other.name.upper()})
    wait_notification(c, RENAME_FAILED)
    wait_login_reply(c, -1)
    assert user_row(server, c.user_id)["username"] == c.user.name
    assert user_row(server, other.id)["username"] == other.name


@pytest.mark.parametrize("bad", ["with space_and underscore", "x" * 31, "   ", "tab\there"])
def test_change_username_to_an_invalid_name_is_refused(server, bad):
    user = server.new_user()
    before = user_row(server, user.id)
    pub(server, "peppy:change_username", {"userID": user.id, "newUsername": bad})
    a = server.connect()
    sentinel(server, a)
    after = user_row(server, user.id)
    assert (after["username"], after["username_safe"], after["notes"]) == (
        before["username"], before["username_safe"], before["notes"])


def test_change_username_already_done_by_the_panel(server):
    """RealistikPanel renames in MySQL, then publishes: treated as done, no critical error."""
    c = server.connect()
    new = server.unique_name("panel")
    server.db.execute("UPDATE users SET username=%s, username_safe=%s WHERE id=%s", (new, new.lower(), c.user_id))
    notes_before = user_row(server, c.user_id)["notes"]
    pub(server, "peppy:change_username", {"userID": c.user_id, "newUsername": new})
    wait_notification(c, RENAMED.format(new))
    assert RENAME_FAILED not in notifications(c.received)
    assert user_row(server, c.user_id)["notes"] == notes_before


# --------------------------------------------------------------------------------------------
# peppy:update_cached_stats, peppy:silence
# --------------------------------------------------------------------------------------------
def test_update_cached_stats_reloads_and_pushes_the_stats(server):
    a = server.connect()
    b = server.connect()
    server.db.execute(
        "UPDATE users_stats SET pp_std=%s, ranked_score_std=%s, total_score_std=%s, playcount_std=%s, "
        "avg_accuracy_std=%s WHERE id=%s", (4321, 55555, 66666, 7, 98.5, a.user_id))
    server.redis.zadd("ripple:leaderboard:std", {str(a.user_id): 4321, "2000000001": 4322})
    try:
        expected_rank = server.redis.raw.zrevrank(server.prefix + "ripple:leaderboard:std", str(a.user_id)) + 1
        pub(server, "peppy:update_cached_stats", str(a.user_id))
        s = C.wait_for(a, lambda p: p.id == C.USER_STATS and p.value.user_id == a.user_id and p.value.pp == 4321,
                       description="own 11 with the new pp").value
        assert (s.ranked_score, s.total_score, s.playcount, s.rank) == (55555, 66666, 7, expected_rank)
        assert abs(s.accuracy - 0.985) < 1e-4
        # the cached stats answer other users at once
        b.send(C.stats_request([a.user_id]))
        s2 = C.wait_for(b, lambda p: p.id == C.USER_STATS and p.value.user_id == a.user_id, description="11 of A").value
        assert (s2.pp, s2.rank, s2.playcount) == (4321, expected_rank, 7)
    finally:
        server.redis.raw.zrem(server.prefix + "ripple:leaderboard:std", str(a.user_id), "2000000001")


def test_silence_set_by_the_website(server):
    a = server.connect()
    b = server.connect()
    end = int(time.time()) + 300
    server.db.execute("UPDATE users SET silence_end=%s, silence_reason=%s WHERE id=%s", (end, "spam", a.user_id))
    pub(server, "peppy:silence", a.user_id)
    left = C.wait_for(a, lambda p: p.id == C.SILENCE_END and p.value > 0, description="92").value
    assert 290 <= left <= 300
    C.wait_for(b, lambda p: p.id == C.USER_SILENCED and p.value == a.user_id, description="94 to others")
    C.wait_for(a, lambda p: p.id == C.USER_SILENCED and p.value == a.user_id, description="94 to self")
    # a silenced user cannot talk
    t = text("muted")
    a.send(C.public_message("#osu", t))
    # lifted: 92 with 0 and 94 again
    server.db.execute("UPDATE users SET silence_end=0 WHERE id=%s", (a.user_id,))
    pub(server, "peppy:silence", a.user_id)
    C.wait_for(a, lambda p: p.id == C.SILENCE_END and p.value == 0, description="92 (0)")
    C.wait_for(b, lambda p: p.id == C.USER_SILENCED and p.value == a.user_id, description="94 again")
    assert t not in [m.content for m in C.values(b.received, C.SEND_MESSAGE)]
    t2 = text("free")
    a.send(C.public_message("#osu", t2))
    C.wait_for(b, lambda p: C.is_message(p, content=t2), description="message after the silence")


# --------------------------------------------------------------------------------------------
# peppy:ban (privileges changed by the website or the panel)
# --------------------------------------------------------------------------------------------
def test_ban_message_logs_a_banned_user_out(server):
    a = server.connect()
    observer = server.connect()
    server.set_privileges(a.user_id, 0)
    pub(server, "peppy:ban", a.user_id)
    n = C.wait_for(a, lambda p: p.id == C.NOTIFICATION and "banned" in p.value, description="banned notice")
    r = wait_login_reply(a, -3)
    assert a.received.index(n) < a.received.index(r)
    wait_quit(observer, a.user_id)
    assert_gone(a)


def test_ban_message_restricts_then_unrestricts(server):
    a = server.connect()
    b = server.connect()
    server.set_privileges(a.user_id, 2)
    pub(server, "peppy:ban", a.user_id)
    C.wait_for(a, lambda p: p.id == C.ACCOUNT_RESTRICTED, description="104")
    pm = C.wait_for(a, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
                    and "restricted" in p.value.content, description="restricted PM").value
    assert pm.target == a.user.name
    wait_quit(b, a.user_id)
    # restricted: mute for others
    t = text("restricted talk")
    a.send(C.public_message("#osu", t))
    # a second identical message does not repeat the PM
    start = len(a.received)
    pub(server, "peppy:ban", a.user_id)
    sentinel(server, a, b)
    assert not [m for m in C.values(since(a, start), C.SEND_MESSAGE) if "restricted" in m.content]
    assert t not in [m.content for m in C.values(b.received, C.SEND_MESSAGE)]
    # unrestricted
    server.set_privileges(a.user_id, 3)
    pub(server, "peppy:ban", a.user_id)
    C.wait_for(a, lambda p: p.id == C.SEND_MESSAGE and p.value.sender_id == C.BOT_ID
               and "unrestricted" in p.value.content, description="unrestricted PM")
    C.wait_for(b, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == a.user_id, description="83 of A again")
    t2 = text("back")
    a.send(C.public_message("#osu", t2))
    C.wait_for(b, lambda p: C.is_message(p, content=t2), description="A talks again")


# --------------------------------------------------------------------------------------------
# peppy:notification, peppy:set_main_menu_icon, peppy:bot_msg
# --------------------------------------------------------------------------------------------
def test_notification_reaches_every_session(server):
    user = server.new_user(privileges=3 | TOURNAMENT_STAFF)  # tournament clients need it
    game = server.login(user)
    tourney = server.login(user, version=TOURNEY_VERSION)
    t = "Your latest score is worth\n123 pp (personal best!) ✓"
    pub(server, "peppy:notification", {"userID": user.id, "message": t})
    wait_notification(game, t)
    wait_notification(tourney, t)


def test_set_main_menu_icon_previews_an_icon(server):
    a = server.connect()
    file_id = secrets.token_hex(8)
    server.db.execute(
        "INSERT INTO main_menu_icons (is_current, file_id, name, url) VALUES (0, %s, 'test', %s)",
        (file_id, "https://example.com/event"))
    icon_id = server.db.scalar("SELECT id FROM main_menu_icons WHERE file_id=%s", (file_id,))
    try:
        pub(server, "peppy:set_main_menu_icon", {"userID": a.user_id, "mainMenuIconID": icon_id})
        v = C.wait_for(a, lambda p: p.id == C.MAIN_MENU_ICON, description="76").value
        assert v == f"https://i.ppy.sh/{file_id}.png|https://example.com/event"
        # an unknown icon id: nothing
        start = len(a.received)
        pub(server, "peppy:set_main_menu_icon", {"userID": a.user_id, "mainMenuIconID": 2_000_000_000})
        sentinel(server, a)
        assert not C.of(since(a, start), C.MAIN_MENU_ICON)
    finally:
        server.db.execute("DELETE FROM main_menu_icons WHERE file_id=%s", (file_id,))


def test_bot_msg_to_a_channel_and_to_a_user_in_utf8(server):
    a = server.connect()
    bot = server.bot_name()
    t = "[RX] User héllo ✓ has submitted a #1 place " + secrets.token_hex(3)
    pub(server, "peppy:bot_msg", {"to": "#announce", "message": t})
    m = C.wait_for(a, lambda p: C.is_message(p, content=t), description="bot message in #announce").value
    assert (m.sender, m.sender_id, m.target) == (bot, C.BOT_ID, "#announce")
    t2 = "privé ✓ " + secrets.token_hex(3)
    pub(server, "peppy:bot_msg", {"to": a.user.name, "message": t2})
    m2 = C.wait_for(a, lambda p: C.is_message(p, content=t2), description="bot PM").value
    assert (m2.sender, m2.sender_id, m2.target) == (bot, C.BOT_ID, a.user.name)


# --------------------------------------------------------------------------------------------
# peppy:refresh_privs, peppy:change_pass
# --------------------------------------------------------------------------------------------
def test_refresh_privs_reloads_privileges_without_a_message(server):
    a = server.connect()
    b = server.connect()
    t = text("not yet")
    a.send(C.public_message("#announce", t))  # #announce is read-only for non-admins
    server.set_privileges(a.user_id, KAWATA_FULL_PERMS)
    start = len(a.received)
    pub(server, "peppy:refresh_privs", {"user_id": a.user_id})
    sentinel(server, a)
    got = since(a, start)
    assert notifications(got)[:-1] == [] and not C.of(got, C.LOGIN_REPLY) and not C.of(got, C.SEND_MESSAGE)
    t2 = text("admin now")
    a.send(C.public_message("#announce", t2))
    C.wait_for(b, lambda p: C.is_message(p, content=t2, target="#announce"), description="admin post in #announce")
    assert t not in [m.content for m in C.values(b.received, C.SEND_MESSAGE)]


def test_change_pass_drops_the_password_cache(server):
    user = server.new_user()
    server.login(user)
    pub(server, "peppy:change_pass", {"user_id": user.id})
    a = server.connect()
    sentinel(server, a)
    assert f"change_pass user={user.id}: password cache entry dropped" in server.log_text()
    # the stored hash still checks: the next login works (after a real bcrypt check)
    assert server.client().login(user.name, user.password).user_id == user.id


# --------------------------------------------------------------------------------------------
# reloads and reconnection: dedicated servers (they change the server's memory)
# --------------------------------------------------------------------------------------------
def _new_channel(server) -> str:
    name = "#t" + secrets.token_hex(4)
    server.db.execute(
        "INSERT INTO bancho_channels (name, description, public_read, public_write) VALUES (%s, 'test', 1, 1)",
        (name,))
    return name


@pytest.mark.parametrize("channel", ["peppy:reload_settings", "peppy:reload_chat_channels"])
def test_reload_adds_new_channels(start_server, server, channel):
    srv = start_server()
    a = srv.login(server.new_user())
    ignored = _new_channel(srv)
    try:
        pub(srv, channel, "Reload")  # not the literal: ignored
        sentinel(srv, a)
        assert ignored not in [i.name for i in C.values(a.received, C.CHANNEL_INFO)]
        pub(srv, channel, "reload")
        info = C.wait_for(a, lambda p: p.id == C.CHANNEL_INFO and p.value.name == ignored, timeout=5,
                          description=f"65 of {ignored}")
        assert C.of(a.received[: a.received.index(info)], C.CHANNEL_INFO_END), "89 comes before the listing"
    finally:
        srv.db.execute("DELETE FROM bancho_channels WHERE name=%s", (ignored,))
    assert "NotImplementedError" not in srv.log_text()


def test_listener_reconnects_after_its_connection_is_killed(start_server, server):
    srv = start_server()
    wait_subscribed(srv)
    ip = "10.9.8.7"
    user = server.new_user()
    c = srv.login(user, headers={"X-Real-IP": ip})
    expected = srv.settled_online_users()
    (old,) = listener_connections(srv)
    # a Redis that lost its data: the keys are gone or wrong
    srv.redis.set("ripple:online_users", 12345)
    srv.redis.delete(f"peppy:sessions:{user.id}", "peppy:version")
    srv.redis.raw.client_kill_filter(_id=old["id"])
    conns = wait_until(lambda: [x for x in listener_connections(srv) if x["id"] != old["id"]], timeout=10,
                       what="a new pub/sub connection")
    assert len(conns) == 1
    wait_subscribed(srv)
    t = text("after reconnect")
    pub(srv, "peppy:notification", {"userID": user.id, "message": t})
    wait_notification(c, t)
    assert wait_until(lambda: srv.redis.get("ripple:online_users") == str(expected), what="online count rewritten")
    assert wait_until(lambda: srv.redis.sismember(f"peppy:sessions:{user.id}", ip), what="session ip rewritten")
    assert srv.redis.get("peppy:version")
    assert "pub/sub connection lost" in srv.log_text()


# --------------------------------------------------------------------------------------------
# Redis keys
# --------------------------------------------------------------------------------------------
def test_online_users_is_exact(start_server, server):
    srv = start_server()
    assert srv.wait_online_users(1) == 1, "only the bot"
    a = srv.login(server.new_user())
    b = srv.login(server.new_user())
    assert srv.wait_online_users(3) == 3
    pub(srv, "peppy:disconnect", {"userID": a.user_id, "reason": ""})
    assert srv.wait_online_users(2) == 2, "a kicked session no longer counts"
    past_logout_grace(b)
    b.send(C.logout())
    assert srv.wait_online_users(1) == 1


def test_session_ips_follow_the_sessions(server):
    user = server.new_user(privileges=3 | TOURNAMENT_STAFF)  # tournament clients need it
    key = f"peppy:sessions:{user.id}"
    game = server.login(user, headers={"X-Real-IP": "10.1.1.1"})
    t1 = server.login(user, version=TOURNEY_VERSION, headers={"X-Real-IP": "10.2.2.2"})
    t2 = server.login(user, version=TOURNEY_VERSION, headers={"X-Real-IP": "10.2.2.2"})
    assert wait_until(lambda: server.redis.smembers(key) == {"10.1.1.1", "10.2.2.2"}, what="both IPs")
    assert "None" not in server.redis.smembers(key)
    past_logout_grace(game, t1, t2)
    game.send(C.logout())
    assert wait_until(lambda: server.redis.smembers(key) == {"10.2.2.2"}, what="game IP removed")
    t1.send(C.logout())  # another session still has this IP: it stays
    holds_for(lambda: server.redis.smembers(key) == {"10.2.2.2"}, 0.3, what="the shared IP stays")
    t2.send(C.logout())
    assert wait_until(lambda: not server.redis.exists(key), what="last IP removed")


def test_startup_sets_the_version_and_wipes_peppy_keys(start_server, server):
    prefix = server.prefix + "w" + secrets.token_hex(3) + ":"
    r = server.redis.raw
    r.set(prefix + "peppy:sessions:1234", "x")
    r.sadd(prefix + "peppy:sessions:1235", "10.0.0.1")
    r.set(prefix + "peppy:junk", "1")
    r.set(prefix + "ripple:online_users", 77)
    r.set(prefix + "ripple:keep_me", "1")
    r.set(prefix + "ripple:change_username_pending:1234", "someone")
    try:
        srv = start_server({"PEP_REDIS_KEY_PREFIX": prefix})
        keys = sorted(k[len(prefix):] for k in r.scan_iter(match=prefix + "*"))
        assert [k for k in keys if k.startswith("peppy:")] == ["peppy:version"]
        assert r.get(prefix + "peppy:version")
        assert r.get(prefix + "ripple:keep_me") == "1"
        assert r.get(prefix + "ripple:change_username_pending:1234") == "someone"
        assert wait_until(lambda: r.get(prefix + "ripple:online_users") == "1", what="online count reset")
    finally:
        for k in list(r.scan_iter(match=prefix + "*")):
            r.delete(k)
