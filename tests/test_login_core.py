"""The login in-process (services/login.py; docs/architecture.md "The path of a login"):
``services.login.login`` with real bcrypt and a fake of the repository's login queries, on a
real :class:`State`; the response body is decoded by chio.

These are the tests ``scripts/mutation.sh`` runs against the mutants of ``services/login.py``
(with ``tests/test_login_parse.py``; docs/testing.md). The whole login against MySQL is tested
in ``tests/integration/test_login*.py``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from constants import game, privileges as privs
from services import login as login_module
from tests import client as C
from tests.fakes import ADMIN, HASH, MD5, NORMAL, PASSWORD, LoginRepo, World, received, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")

def make(flavour="ripple", env=None):
    world = World(env, redis=True)
    repo = LoginRepo(flavour)
    world.state.repo = repo
    repo.add(1000, "Alice")
    return world, repo


def do_login(world, name="Alice", password=PASSWORD, ip="10.0.0.1", **kwargs):
    body = C.login_body(name, password, **kwargs)

    async def run():
        result = await login_module.login(world.state, body, ip)
        await world.state.drain_tasks()
        return result

    token, reply = asyncio.run(run())
    return token, C.decode_packets(reply)


def reply_code(packets):
    return C.values(packets, C.LOGIN_REPLY)[0]


def test_successful_login_sequence():
    world, repo = make()
    other = world.user("Bob")
    r = world.user("Rex", restricted=True)
    token, packets = do_login(world)
    assert token is not None and token.user_id == 1000 and world.state.tokens.get(token.token) is token
    ids = [p.id for p in packets]
    assert ids[:3] == [C.PROTOCOL_VERSION, C.LOGIN_REPLY, C.PRIVILEGES]
    assert reply_code(packets) == 1000
    assert ids.index(C.USER_PRESENCE) < ids.index(C.USER_STATS) < ids.index(C.CHANNEL_JOIN_SUCCESS)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#osu", "#announce"]
    assert C.values(packets, C.FRIENDS_LIST) == [[3, 7]] and C.values(packets, C.SILENCE_END) == [0]
    assert ids[ids.index(C.CHANNEL_INFO_END) - 1] == C.CHANNEL_INFO
    presences = {p.user_id for p in C.values(packets, C.USER_PRESENCE)}
    assert presences == {1000, world.bot.user_id, other.user_id}  # never the restricted user
    stats = C.values(packets, C.USER_STATS)[0]
    assert (stats.ranked_score, stats.pp, stats.rank) == (5, 300, 2)
    assert token.country == "CH" and token.friends == {3, 7} and token.utc_offset == 1
    assert repo.logins[0][:2] == (1000, "10.0.0.1") and repo.logins[0][3] == C.DEFAULT_VERSION
    assert C.values(received(other), C.USER_PRESENCE)[0].user_id == 1000
    assert not C.values(received(r), C.ACCOUNT_RESTRICTED)
    assert world.state.password_cache[1000] == (MD5, HASH)
    assert ("add_session_ip", (1000, "10.0.0.1")) in world.redis.calls


def test_wrong_password_and_unknown_user_count_failures():
    world, repo = make()
    for name, password in (("Alice", "wrong"), ("Nobody", PASSWORD)):
        token, packets = do_login(world, name, password)
        assert token is None and reply_code(packets) == game.LOGIN_FAILED
    assert world.state.tokens.user(1000) is None and 1000 not in world.state.password_cache


def test_failure_limit_refuses_before_bcrypt():
    world, repo = make(env={"PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "2"})
    for _ in range(2):
        do_login(world, password="wrong")
    token, packets = do_login(world)
    assert token is None and reply_code(packets) == game.LOGIN_FAILED
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_TOO_MANY]
    world2, _ = make(env={"PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "2"})
    do_login(world2, password="wrong")
    token, _ = do_login(world2)  # a success resets the account's count
    do_login(world2, password="wrong")
    token, _ = do_login(world2)
    assert token is not None


def test_banned_locked_and_bot_accounts():
    world, repo = make()
    repo.add(1001, "Banned", 0)
    repo.add(1002, "Locked", privs.USER_PUBLIC)
    repo.add(999, "BotUser")
    _, packets = do_login(world, "Banned")
    assert reply_code(packets) == game.LOGIN_BANNED
    _, packets = do_login(world, "Locked")
    assert reply_code(packets) == game.LOGIN_INACTIVE
    _, packets = do_login(world, "BotUser")
    assert reply_code(packets) == game.LOGIN_FAILED


def test_two_factor_needs_a_known_ip():
    world, repo = make()
    repo.totp.add(1000)
    _, packets = do_login(world)
    assert reply_code(packets) == game.LOGIN_VERIFICATION
    repo.known_ips.add((1000, "10.0.0.1"))
    token, _ = do_login(world)
    assert token is not None


def test_kawata_skips_ripple_checks():
    world, repo = make("kawata")
    repo.add(1002, "Locked", privs.USER_PUBLIC)
    repo.totp.add(1002)
    token, _ = do_login(world, "Locked")
    assert token is not None


def test_restricted_login():
    world, repo = make()
    repo.add(1003, "Rex", privs.USER_NORMAL)
    b = world.user("Bob")
    token, packets = do_login(world, "Rex")
    assert token.restricted and C.of(packets, C.ACCOUNT_RESTRICTED)
    assert any("restricted" in m.content for m in C.values(packets, C.SEND_MESSAGE))
    assert not C.values(received(b), C.USER_PRESENCE)


def test_maintenance_admits_admins_only():
    world, repo = make()
    world.state.settings.maintenance = True
    _, packets = do_login(world)
    assert reply_code(packets) == game.LOGIN_FAILED
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_MAINTENANCE]
    repo.add(1004, "Admin", NORMAL | ADMIN)
    token, packets = do_login(world, "Admin")
    assert token is not None and token.admin
    assert login_module.NOTICE_MAINTENANCE_ADMIN in C.values(packets, C.NOTIFICATION)
    assert "#admin" in C.values(packets, C.CHANNEL_JOIN_SUCCESS)


def test_restarting_server_refuses():
    world, repo = make()
    world.state.restarting = True
    _, packets = do_login(world)
    assert [p.id for p in packets] == [C.NOTIFICATION, C.RESTART]
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_RESTARTING]
    assert C.values(packets, C.RESTART) == [int(world.state.cfg.server.reconnect_delay * 1000)]


def test_database_error_gives_the_error_reply(no_errors):
    world, repo = make()
    repo.fail_login_log = True
    token, packets = do_login(world)
    assert token is None and reply_code(packets) == game.LOGIN_ERROR
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_ERROR]
    assert world.state.tokens.user(1000) is None
    assert [r.getMessage() for r in no_errors] == ["login failed: database error: 2003: cannot connect (fake)"]
    no_errors.clear()


def test_relogin_replaces_the_old_session_silently():
    world, repo = make()
    # tournament clients are for tournament staff (docs/security.md, "Hardening II: in game")
    repo.users[1000]["privileges"] |= privs.USER_TOURNAMENT_STAFF
    b = world.user("Bob")
    first, _ = do_login(world)
    received(b)
    second, _ = do_login(world)
    assert first.logged_out and not second.logged_out
    assert not C.values(received(b), C.USER_LOGOUT)
    tourney, _ = do_login(world, version="b20250306.2tourney")
    assert tourney.tournament and not second.logged_out


def test_settings_notices_and_donor_expiry():
    world, repo = make()
    world.state.settings.login_notification = "welcome!"
    world.state.settings.menu_icon = "https://i/1.png|https://u"
    repo.add(1005, "Donor", NORMAL | privs.USER_DONOR, donor_expire=int(time.time()) + 86400)
    repo.add(1006, "Donor2", NORMAL | privs.USER_DONOR, donor_expire=int(time.time()) + 2.5 * 86400)
    _, packets = do_login(world, "Donor")
    notes = C.values(packets, C.NOTIFICATION)
    assert notes[0] == "welcome!" and "less than 48 hours" in notes[1]
    assert C.values(packets, C.MAIN_MENU_ICON) == ["https://i/1.png|https://u"]
    _, packets = do_login(world, "Donor2")
    assert "expires in 2 days" in C.values(packets, C.NOTIFICATION)[1]


def test_silenced_user_is_told_at_login():
    world, repo = make()
    repo.users[1000]["silence_end"] = int(time.time()) + 100
    token, packets = do_login(world)
    assert 98 <= C.values(packets, C.SILENCE_END)[0] <= 100 and token.is_silenced()


def test_pending_account_is_activated():
    world, repo = make()
    repo.add(1007, "Fresh", privs.USER_PENDING_VERIFICATION)
    token, packets = do_login(world, "Fresh")
    assert token is not None and token.privileges & NORMAL == NORMAL
    assert repo.hardware_logs == [(1007, True)] and world.state.verified["1007"] == 1
    repo.add(1009, "NoHw", privs.USER_PENDING_VERIFICATION)
    token, packets = do_login(world, "NoHw", hashes="osu:adapters::x:y:")
    assert token is None and C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_HARDWARE]


def test_old_password_version_refused_on_ripple():
    world, repo = make()
    repo.users[1000]["password_version"] = 1
    token, _ = do_login(world)
    assert token is None
    world2, repo2 = make("kawata")
    repo2.users[1000]["password_version"] = 1
    token, _ = do_login(world2)
    assert token is not None


@pytest.mark.parametrize("stored", ["", "plain", HASH[:-1], "$2y$" + HASH[4:]])
def test_stored_hash_forms(stored):
    world, repo = make()
    repo.users[1000]["password_md5"] = stored
    token, _ = do_login(world)
    assert (token is not None) == stored.startswith("$2y$")
