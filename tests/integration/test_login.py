"""Login: success sequence, failure codes, bans, maintenance, verification, IP/session bookkeeping.

Specs: docs/protocol.md §1.2–1.5, §3.5, §5; docs/rules.md §7.2–7.3, §7.6; docs/schema.md §2–3.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests import client as C
from tests.waiting import past_logout_grace

KAWATA_FULL_PERMS = 136104116219  # a Kawata admin preset (docs/schema.md §2.3)
PENDING = 1048576


def index_of(packets, predicate) -> int:
    for i, p in enumerate(packets):
        if predicate(p):
            return i
    raise AssertionError(f"no such packet in {packets!r}")


# --------------------------------------------------------------------------------------------
# success
# --------------------------------------------------------------------------------------------
def test_login_success_sequence(server):
    other = server.connect()  # already online: must appear in the new user's presence list
    user = server.new_user()
    c = server.client()
    res = c.login(user.name, user.password, utc_offset=1)
    pk = res.packets

    assert res.response.status_code == 200
    assert res.user_id == user.id and user.id > 0
    assert res.response.headers.get("cho-protocol") == "19"
    assert res.token and len(res.token) >= 16, f"weak token {res.token!r}"
    assert str(user.id) != res.token and user.name not in res.token

    assert C.values(pk, C.PROTOCOL_VERSION) == [19]
    assert C.values(pk, C.LOGIN_REPLY) == [user.id]

    privs = C.values(pk, C.PRIVILEGES)
    assert len(privs) == 1
    assert privs[0] & 4, f"supporter bit missing in 71: {privs[0]}"
    assert privs[0] & 1, f"player bit missing in 71: {privs[0]}"

    own = [p for p in C.values(pk, C.USER_PRESENCE) if p.user_id == user.id]
    assert own, "own presence (83) missing"
    assert own[0].username == user.name
    assert own[0].utc_offset == 1
    own_stats = [s for s in C.values(pk, C.USER_STATS) if s.user_id == user.id]
    assert own_stats, "own stats (11) missing"
    assert own_stats[0].mode == 0 and own_stats[0].pp == 0 and own_stats[0].playcount == 0

    # 5 first of all self references; 83 before 11 for the same user (docs/protocol.md §5.2, §6.3)
    i5 = index_of(pk, lambda p: p.id == C.LOGIN_REPLY)
    i83 = index_of(pk, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == user.id)
    i11 = index_of(pk, lambda p: p.id == C.USER_STATS and p.value.user_id == user.id)
    assert i5 < i83 < i11

    joined = C.values(pk, C.CHANNEL_JOIN_SUCCESS)
    assert "#osu" in joined and "#announce" in joined
    assert "#admin" not in joined

    listed = {ch.name for ch in C.values(pk, C.CHANNEL_INFO)}
    public_read = {r["name"] for r in server.db.query("SELECT name FROM bancho_channels WHERE public_read = 1")}
    admin_only = {r["name"] for r in server.db.query("SELECT name FROM bancho_channels WHERE public_read = 0")}
    assert "#osu" in listed
    assert listed <= public_read, f"65 lists channels that are not public-read: {listed - public_read}"
    assert not (listed & admin_only)
    for ch in C.values(pk, C.CHANNEL_INFO):
        assert ch.user_count >= 0

    assert C.of(pk, C.CHANNEL_INFO_END), "89 missing"
    friends = C.values(pk, C.FRIENDS_LIST)
    assert len(friends) == 1 and set(friends[0]) <= {0}, f"a new user has no friends: {friends}"
    assert C.values(pk, C.SILENCE_END) == [0]

    presences = {p.user_id: p for p in C.values(pk, C.USER_PRESENCE)}
    assert C.BOT_ID in presences, "the bot (999) must always be online and visible"
    assert presences[C.BOT_ID].username == server.bot_name()
    assert other.user_id in presences, "already-online user missing from the login presence list"
    assert presences[other.user_id].username == other.user.name

    # the session works
    assert not C.of(c.poll(), C.RESTART)


def test_tokens_differ_between_logins(server):
    a = server.connect()
    b = server.connect()
    assert a.token != b.token
    assert len({a.token, b.token}) == 2


def test_login_case_insensitive_username(server):
    user = server.new_user(stem="MiXeD")
    c = server.client()
    res = c.login(user.name.upper(), user.password)
    assert res.user_id == user.id


def test_admin_login_joins_admin_channel(server):
    admin = server.new_user(privileges=KAWATA_FULL_PERMS, stem="adm")
    c = server.client()
    res = c.login(admin.name, admin.password)
    assert res.user_id == admin.id
    joined = res.values(C.CHANNEL_JOIN_SUCCESS)
    assert {"#osu", "#announce", "#admin"} <= set(joined)
    assert res.values(C.PRIVILEGES)[0] & 4


def test_login_reply_is_http_200_with_user_agent_osu(server):
    user = server.new_user()
    body = C.login_body(user.name, user.password)
    r = requests.post(server.url, data=body, headers={"User-Agent": "osu!"}, timeout=10)
    assert r.status_code == 200
    packets = C.decode_packets(r.content)
    assert C.values(packets, C.LOGIN_REPLY) == [user.id]


# --------------------------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------------------------
def assert_token_dead(server, token):
    """Polling with ``token`` must not work: 86 restart."""
    c = server.client()
    packets = c.send_raw(C.ping(), token=token or "no-token")
    assert C.of(packets, C.RESTART), f"token {token!r} of a failed login still works: {packets!r}"


def test_wrong_password(server):
    user = server.new_user()
    c = server.client()
    res = c.login(user.name, "not-the-password")
    assert res.values(C.LOGIN_REPLY) == [-1]
    assert not res.of(C.USER_PRESENCE) and not res.of(C.CHANNEL_JOIN_SUCCESS)
    assert_token_dead(server, res.token)
    # and the right password still works afterwards
    assert server.client().login(user.name, user.password).user_id == user.id


def test_unknown_user(server):
    c = server.client()
    res = c.login(server.unique_name("ghost"), "password")
    assert res.values(C.LOGIN_REPLY) == [-1]
    assert_token_dead(server, res.token)


def test_banned_user_refused(server):
    user = server.new_user(privileges=0, stem="ban")
    c = server.client()
    res = c.login(user.name, user.password)
    codes = res.values(C.LOGIN_REPLY)
    assert len(codes) == 1 and codes[0] in (-1, -3, -4), codes
    assert res.of(C.NOTIFICATION), "a banned user gets a notification explaining the refusal"
    assert not res.of(C.USER_PRESENCE)
    assert_token_dead(server, res.token)


def test_banned_donor_refused(server):
    # banned means (privileges & 3) == 0, whatever the other bits: a donor without PUBLIC|NORMAL
    user = server.new_user(privileges=4, stem="ban")
    res = server.client().login(user.name, user.password)
    codes = res.values(C.LOGIN_REPLY)
    assert len(codes) == 1 and codes[0] < 0, codes
    assert_token_dead(server, res.token)


@pytest.mark.parametrize("version", ["b20121202", "bxyz", "b1820"])
def test_old_or_garbage_client_version(server, version):
    user = server.new_user()
    c = server.client()
    res = c.login(user.name, user.password, version=version)
    assert res.values(C.LOGIN_REPLY) == [-2], res.packets
    assert_token_dead(server, res.token)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"onlyausername\n",
        b"name\n5f4dcc3b5aa765d61d8327deb882cf99\n",
        b"name\nnot-a-md5-at-all-zzzzzzzzzzzzzzzz\nb20250306.2|1|1|a:b.:c:d:e:|0\n",
        b"\xff\xfe\x00garbage\x01\x02",
    ],
    ids=["empty", "one-line", "two-lines", "non-hex-md5", "binary"],
)
def test_malformed_login_body(server, body):
    c = server.client()
    res = c.login_raw(body)
    codes = res.values(C.LOGIN_REPLY)
    assert len(codes) == 1 and codes[0] < 0, res.packets
    # the server is still fine
    assert requests.get(server.url, timeout=5).status_code == 200
    assert server.connect().user_id > 0


def test_non_hex_md5_for_existing_user(server):
    user = server.new_user()
    body = f"{user.name}\n{'z' * 32}\nb20250306.2|1|1|{C.default_hashes(user.name)}|0\n".encode()
    res = server.client().login_raw(body)
    assert res.values(C.LOGIN_REPLY)[0] < 0


def test_uppercase_md5_is_not_a_crash(server):
    # the client sends lower-case hex; an upper-case md5 must either work or be refused cleanly
    user = server.new_user()
    body = f"{user.name}\n{C.md5hex('password').upper()}\nb20250306.2|1|1|{C.default_hashes(user.name)}|0\n"
    res = server.client().login_raw(body.encode())
    codes = res.values(C.LOGIN_REPLY)
    assert len(codes) == 1 and (codes[0] == user.id or codes[0] < 0)


def test_crlf_login_body(server):
    user = server.new_user()
    body = C.login_body(user.name, user.password).replace(b"\n", b"\r\n")
    res = server.client().login_raw(body)
    assert res.user_id == user.id


# --------------------------------------------------------------------------------------------
# pending verification, IP and session bookkeeping
# --------------------------------------------------------------------------------------------
def wait_db(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def test_pending_verification_user_gets_verified(server):
    user = server.new_user(privileges=PENDING, stem="pend")
    hashes = C.default_hashes(user.name)
    c = server.client()
    res = c.login(user.name, user.password, hashes=hashes)
    assert res.user_id == user.id, res.packets
    priv = wait_db(lambda: server.db.scalar("SELECT privileges FROM users WHERE id=%s", (user.id,)) == 3)
    assert priv, server.db.scalar("SELECT privileges FROM users WHERE id=%s", (user.id,))
    row = wait_db(lambda: server.db.one("SELECT * FROM hw_user WHERE userid=%s", (user.id,)))
    assert row, "no hw_user row after verification"
    parts = hashes.rstrip(":").split(":")
    assert row["mac"] == parts[2]
    assert row["unique_id"] == parts[3]
    assert row["disk_id"] == parts[4]


def test_login_logs_ip_and_redis_session(server):
    user = server.new_user()
    ip = "10.20.30.40"
    c = server.client()
    res = c.login(user.name, user.password, headers={"X-Real-IP": ip})
    assert res.user_id == user.id
    row = wait_db(lambda: server.db.one("SELECT * FROM ip_user WHERE userid=%s", (user.id,)))
    assert row, "no ip_user row"
    assert row["ip"] == ip
    assert row["occurencies"] >= 1
    assert ip in server.redis.smembers(f"peppy:sessions:{user.id}")

    # second login (same IP): the counter goes up
    before = row["occurencies"]
    res2 = server.client().login(user.name, user.password, headers={"X-Real-IP": ip})
    assert res2.user_id == user.id
    assert wait_db(
        lambda: server.db.scalar("SELECT occurencies FROM ip_user WHERE userid=%s", (user.id,)) > before
    )


def test_online_users_counter(server):
    before = server.settled_online_users()
    assert before >= 1  # the bot is always online
    user = server.new_user()
    c1 = server.client()
    assert c1.login(user.name, user.password).user_id == user.id
    assert server.wait_online_users(before + 1) == before + 1
    # a second login of the same user replaces the first token: the count does not change
    c2 = server.client()
    assert c2.login(user.name, user.password).user_id == user.id
    assert server.settled_online_users() == before + 1
    assert C.of(c1.poll(), C.RESTART), "the replaced token must get 86"
    assert not C.of(c2.poll(), C.RESTART)
    # a failed login does not count
    server.client().login(user.name, "wrong")
    assert server.settled_online_users() == before + 1
    # logout (after the grace period) counts down
    past_logout_grace(c2)
    c2.send(C.logout())
    assert server.wait_online_users(before) == before


# --------------------------------------------------------------------------------------------
# maintenance (read at start-up: checked on a second server)
# --------------------------------------------------------------------------------------------
def test_maintenance_mode_refuses_non_admins(server, start_server):
    normal = server.new_user()
    admin = server.new_user(privileges=KAWATA_FULL_PERMS, stem="adm")
    server.db.execute("UPDATE bancho_settings SET value_int=1 WHERE name='bancho_maintenance'")
    try:
        second = start_server()
    finally:
        server.db.execute("UPDATE bancho_settings SET value_int=0 WHERE name='bancho_maintenance'")

    c = second.client()
    res = c.login(normal.name, normal.password)
    codes = res.values(C.LOGIN_REPLY)
    assert len(codes) == 1 and codes[0] < 0, res.packets
    assert res.of(C.NOTIFICATION), "maintenance refusal must come with a notification"
    assert_token_dead(second, res.token)

    a = second.client()
    res = a.login(admin.name, admin.password)
    assert res.user_id == admin.id, "admins may log in during maintenance"
    assert not C.of(a.poll(), C.RESTART)


def test_get_root_answers_html(server):
    r = requests.get(server.url, timeout=5)
    assert r.status_code == 200
    assert "html" in r.headers.get("Content-Type", "").lower()
    assert r.text.strip()
