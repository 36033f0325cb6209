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
    # the same address stays in peppy:sessions: neither SREM nor SADD of it again
    assert not any(name == "remove_session_ip" for name, _ in world.redis.calls)
    assert world.redis.calls.count(("add_session_ip", (1000, "10.0.0.1"))) == 1
    third, _ = do_login(world, ip="10.0.0.2")  # from another address the old one leaves
    assert second.logged_out and ("remove_session_ip", (1000, "10.0.0.1")) in world.redis.calls
    assert ("add_session_ip", (1000, "10.0.0.2")) in world.redis.calls
    tourney, _ = do_login(world, version="b20250306.2tourney")
    assert tourney.tournament and not third.logged_out
    assert world.redis.calls.count(("add_session_ip", (1000, "10.0.0.1"))) == 2  # listed again
    fourth, _ = do_login(world, version="b20250306.2tourney", ip="10.0.0.2")  # beside third's
    assert world.redis.calls.count(("add_session_ip", (1000, "10.0.0.2"))) == 1


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


# ------------------------------------------------------------------ the login in detail
import concurrent.futures  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import types  # noqa: E402

from prometheus_client import REGISTRY  # noqa: E402

from constants.countries import country_index  # noqa: E402
from helpers import geo  # noqa: E402
from tests.fakes import BOT_NAME  # noqa: E402

AMD5, UMD5, DMD5 = "a" * 32, "b" * 32, "c" * 32
HASHES = f"osumd5:adapters:{AMD5}:{UMD5}:{DMD5}:"


class Repo(LoginRepo):
    """LoginRepo that records what the login asks and writes, with the queries of
    services.moderation (ban, restrict) and optional gates and failures."""

    def __init__(self, flavour="ripple"):
        super().__init__(flavour)
        self.calls = []
        self.offline = []
        self.records_gate = None  # an asyncio.Event login_records waits for
        self.delay = 0.0
        self.fail_totp = False

    async def user_by_safe_name(self, safe_name):
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().user_by_safe_name(safe_name)

    async def user_by_id(self, user_id):
        self.calls.append(("user_by_id", user_id))
        return await super().user_by_id(user_id)

    async def totp_enabled(self, user_id):
        if self.fail_totp:
            raise RuntimeError("totp table broken")
        return await super().totp_enabled(user_id)

    async def hardware_matches(self, *args):
        self.calls.append(("hardware_matches", args))
        return await super().hardware_matches(*args)

    async def login_records(self, user_id, row, ip, hardware, version):
        self.calls.append(("login_records", (user_id, row["id"], ip, hardware, version)))
        if self.records_gate is not None:
            await self.records_gate.wait()
        return await super().login_records(user_id, row, ip, hardware, version)

    async def save_first_country(self, user_id, country):
        self.calls.append(("save_first_country", (user_id, country)))
        return True

    def presence_rank(self, privileges, admin, tournament):
        self.calls.append(("presence_rank", (privileges, admin, tournament)))
        return 16 if admin else 1

    async def log_hardware(self, *args, **kwargs):
        self.calls.append(("log_hardware", args, kwargs))
        await super().log_hardware(*args, **kwargs)

    async def ban_user(self, user_id):
        self.calls.append(("ban_user", user_id))

    async def restrict_user(self, user_id):
        self.calls.append(("restrict_user", user_id))

    async def ban_log(self, author, user_id, action, reason):
        self.calls.append(("ban_log", (user_id, action, reason)))

    async def country(self, user_id, row):
        return "XX"

    async def remove_from_leaderboards(self, user_id, country):
        return None

    async def take_offline_messages(self, user_id, limit):
        taken, self.offline = self.offline, []
        return taken

    def called(self, name):
        return [c[1:] if len(c) > 2 else c[1] for c in self.calls if c[0] == name]


def setup(flavour="ripple", env=None):
    world = World(env, redis=True)
    repo = Repo(flavour)
    world.state.repo = repo
    repo.add(1000, "Alice")
    return world, repo


def attempt(world, name="Alice", ip="10.0.0.1", **kwargs):
    """One login; returns (token, packets)."""
    return do_login(world, name, kwargs.pop("password", PASSWORD), ip, **kwargs)


def refusal(world, caplog, name="Alice", ip="10.0.0.1", **kwargs):
    """A refused login: (code, notifications, logged reason)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pep.login"):
        token, packets = attempt(world, name, ip, **kwargs)
    assert token is None
    reasons = [re.fullmatch(r"login refused ip=(\S*) code=(-?\d+) reason=(.*)", r.getMessage())
               for r in caplog.records if r.name == "pep.login"]
    reasons = [(m.group(1), int(m.group(2)), m.group(3)) for m in reasons if m]
    assert len(reasons) == 1 and reasons[0][0] == ip and reasons[0][1] == reply_code(packets)
    return reply_code(packets), C.values(packets, C.NOTIFICATION), reasons[0][2]


def logins(outcome):
    return REGISTRY.get_sample_value("pep_logins_total", {"outcome": outcome}) or 0.0


SERVER = "Ripple"  # the default [stack] server_name


def test_refusals_say_why(caplog):
    world, repo = setup()
    server = world.state.cfg.stack.server_name
    repo.add(1001, "Banned", 0)
    repo.add(1002, "Locked", privs.USER_PUBLIC)
    repo.add(999, "BotUser")
    repo.add(1003, "Twofa")
    repo.totp.add(1003)
    from services.moderation import NOTICE_BANNED
    assert refusal(world, caplog, "Banned") == (game.LOGIN_BANNED, [NOTICE_BANNED.format(server=server)], "banned")
    assert refusal(world, caplog, "Locked") == (
        game.LOGIN_INACTIVE, [login_module.NOTICE_LOCKED.format(server=server)], "locked")
    assert refusal(world, caplog, "BotUser") == (game.LOGIN_FAILED, [], "the bot account cannot log in")
    assert refusal(world, caplog, "Twofa") == (game.LOGIN_VERIFICATION, [], "2fa verification required")
    assert refusal(world, caplog, "Alice", password="wrong") == (game.LOGIN_FAILED, [], "wrong username or password")
    assert refusal(world, caplog, "Alice", version="b20250306.2tourney") == (
        game.LOGIN_FAILED, [login_module.NOTICE_TOURNEY_STAFF], "tournament client without tournament staff")
    assert server in NOTICE_BANNED.format(server=server) and server != "None"
    maintenance = logins("maintenance")
    world.state.settings.maintenance = True
    assert refusal(world, caplog) == (game.LOGIN_FAILED, [login_module.NOTICE_MAINTENANCE], "maintenance")
    assert logins("maintenance") == maintenance + 1
    world.state.settings.maintenance = False
    restarting = logins("restarting")
    world.state.restarting = True
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pep.login"):
        token, packets = attempt(world)
    assert token is None and C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_RESTARTING]
    assert "login refused ip=10.0.0.1 code=-1 reason=server restarting" in [r.getMessage() for r in caplog.records]
    assert logins("restarting") == restarting + 1


def test_throttled_refusals_are_counted_not_logged_each(caplog):
    world, repo = setup(env={"PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1"})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pep.login"):
        do_login_raw(world, b"one line only", "10.0.0.7")
        do_login_raw(world, b"one line only", "10.0.0.8")
        attempt(world, password="wrong")
        token, packets = attempt(world)  # the account's limit
    assert token is None and C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_TOO_MANY]
    flood = world.state.login_refusal_logs
    assert flood["malformed login"].total == 2 and flood["too many failed logins"].total == 1
    got = [r.getMessage() for r in caplog.records if r.name == "pep.login"]
    assert got == ["login refused 1 time(s) in the last interval: reason=login body has fewer than three lines "
                   "(last ip=10.0.0.7)",
                   "login refused ip=10.0.0.1 code=-1 reason=wrong username or password",
                   "login refused 1 time(s) in the last interval: reason=too many failed logins (last ip=10.0.0.1)"]


def do_login_raw(world, body, ip):
    async def run():
        return await login_module.login(world.state, body, ip)

    return asyncio.run(run())


def test_limits_are_per_address_and_only_failures_count():
    world, repo = setup(env={"PEP_LIMITS_LOGIN_FAILURES_IP": "2", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1"})
    repo.add(1001, "Bob")
    repo.add(1002, "Carol")
    for _ in range(3):  # successes from one address never count
        assert attempt(world, "Bob", "10.0.0.5")[0] is not None
    attempt(world, "Alice", "10.0.0.1", password="wrong")  # Alice's account is now at its limit
    for _ in range(3):  # refused by the account's limit: not a failure of the address
        assert attempt(world, "Alice", "10.0.0.2")[0] is None
    assert attempt(world, "Bob", "10.0.0.2")[0] is not None
    attempt(world, "Carol", "10.0.0.3", password="wrong")
    attempt(world, "Nobody", "10.0.0.3")
    token, packets = attempt(world, "Bob", "10.0.0.3")  # this address is at its limit
    assert token is None and C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_TOO_MANY]
    assert world.state.login_refusal_logs["too many failed logins"].total == 4
    assert attempt(world, "Bob", "10.0.0.4")[0] is not None  # another is not


class CountingPool(concurrent.futures.ThreadPoolExecutor):
    """The bcrypt pool, counting the checks it runs."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.jobs = 0

    def submit(self, fn, *args, **kwargs):
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


def test_bcrypt_runs_on_the_pool_once_per_password():
    world, repo = setup()
    pool = world.state.cpu_pool = CountingPool()
    assert attempt(world)[0] is not None and pool.jobs == 1
    assert attempt(world)[0] is not None and pool.jobs == 1  # cached
    repo.users[1000]["password_md5"] = "$2b$" + "x" * 20  # malformed, too short: no check at all
    assert attempt(world)[0] is None and pool.jobs == 1
    repo.users[1000]["password_md5"] = "p" * 60  # no bcrypt prefix
    assert attempt(world)[0] is None and pool.jobs == 1
    repo.users[1000]["password_md5"] = "$2b$" + "!" * 56  # bcrypt-like but malformed: bcrypt refuses it
    assert attempt(world)[0] is None and pool.jobs == 2
    assert attempt(world, "Nobody")[0] is None and pool.jobs == 3  # the dummy check of unknown users
    assert world.state.bcrypt_pending == 0 and world.state.bcrypt_by_ip == {}


def concurrent_logins(world, who):
    """Start the logins ``who`` ((name, ip) pairs) together; returns their tokens (or None)."""
    async def run():
        bodies = [(C.login_body(name, PASSWORD), ip) for name, ip in who]
        results = await asyncio.gather(*(login_module.login(world.state, body, ip) for body, ip in bodies))
        await world.state.drain_tasks()
        return [token for token, _ in results]

    return asyncio.run(run())


@pytest.mark.parametrize("env, who, admitted", [
    ({"PEP_LIMITS_BCRYPT_PER_IP": "1"}, [("Alice", "10.0.0.1"), ("Bob", "10.0.0.1")], [True, False]),
    ({"PEP_LIMITS_BCRYPT_PER_IP": "1"}, [("Alice", "10.0.0.1"), ("Bob", "10.0.0.2")], [True, True]),
    ({"PEP_LIMITS_BCRYPT_PER_IP": "1"}, [("Nobody", "10.0.0.1"), ("Bob", "10.0.0.2")], [False, True]),
    ({"PEP_LIMITS_BCRYPT_PER_IP": "1"}, [("Nobody", "10.0.0.1"), ("Bob", "10.0.0.1")], [False, False]),
    ({"PEP_LIMITS_BCRYPT_PER_IP": "2"}, [("Alice", "10.0.0.1"), ("Bob", "10.0.0.1"), ("Carol", "10.0.0.1")],
     [True, True, False]),
    ({"PEP_LIMITS_BCRYPT_QUEUE": "1"}, [("Alice", "10.0.0.1"), ("Bob", "10.0.0.2")], [True, False]),
    ({"PEP_LIMITS_BCRYPT_QUEUE": "2"}, [("Alice", "10.0.0.1"), ("Bob", "10.0.0.2"), ("Carol", "10.0.0.3")],
     [True, True, False]),
])
def test_bcrypt_queue_and_per_address_limits(env, who, admitted):
    world, repo = setup(env=env)
    repo.add(1001, "Bob")
    repo.add(1002, "Carol")
    tokens = concurrent_logins(world, who)
    assert [t is not None for t in tokens] == admitted
    assert world.state.bcrypt_pending == 0 and world.state.bcrypt_by_ip == {}


def test_busy_refusal_is_throttled(caplog):
    world, repo = setup(env={"PEP_LIMITS_BCRYPT_QUEUE": "1"})
    repo.add(1001, "Bob")
    async def run():
        bodies = [(C.login_body(name, PASSWORD), ip) for name, ip in (("Alice", "10.0.0.1"), ("Bob", "10.0.0.2"))]
        results = await asyncio.gather(*(login_module.login(world.state, body, ip) for body, ip in bodies))
        await world.state.drain_tasks()
        return results

    with caplog.at_level(logging.WARNING, logger="pep.login"):
        results = asyncio.run(run())
    packets = C.decode_packets(results[1][1])
    assert results[1][0] is None and reply_code(packets) == game.LOGIN_FAILED
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_BUSY]
    assert world.state.login_refusal_logs["bcrypt queue full"].total == 1
    assert [r.getMessage() for r in caplog.records if r.name == "pep.login"] == [
        "login refused 1 time(s) in the last interval: reason=bcrypt queue full (last ip=10.0.0.2)"]


def test_timeout_gives_the_error_reply(caplog):
    world, repo = setup(env={"PEP_SERVER_LOGIN_TIMEOUT": "1"})
    repo.records_gate = asyncio.Event()  # never set: MySQL hangs
    errors = logins("error")

    async def run():
        return await asyncio.wait_for(login_module.login(world.state, C.login_body("Alice", PASSWORD), "10.0.0.1"), 30)

    with caplog.at_level(logging.WARNING, logger="pep.login"):
        token, reply = asyncio.run(run())
    packets = C.decode_packets(reply)
    assert token is None and reply_code(packets) == game.LOGIN_ERROR
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_ERROR]
    assert [r.getMessage() for r in caplog.records if r.name == "pep.login"] == [
        "login failed: no answer within 1.0 s (MySQL or Redis hung?) ip=10.0.0.1"]
    assert logins("error") == errors + 1 and world.state.tokens.user(1000) is None


def test_unexpected_error_gives_the_error_reply(no_errors):
    world, repo = setup()
    repo.fail_totp = True
    errors = logins("error")
    token, packets = attempt(world)
    assert token is None and reply_code(packets) == game.LOGIN_ERROR
    assert C.values(packets, C.NOTIFICATION) == [login_module.NOTICE_ERROR]
    assert [r.getMessage() for r in no_errors] == ["login failed: unexpected error"]
    assert no_errors[0].exc_info[1].args == ("totp table broken",)
    assert logins("error") == errors + 1
    no_errors.clear()


def test_success_is_logged(caplog):
    world, repo = setup()
    repo.users[1000]["privileges"] |= privs.USER_TOURNAMENT_STAFF
    repo.delay = 0.02
    with caplog.at_level(logging.INFO, logger="pep.login"):
        attempt(world)
        attempt(world, version="b20250306.2tourney")
    lines = [r.getMessage() for r in caplog.records if r.name == "pep.login"]
    assert len(lines) == 2
    for line, tail in zip(lines, ("", " tourney")):
        m = re.fullmatch(r"login user=1000 name=Alice ip=10\.0\.0\.1 version=20250306(.*) in (\d+\.\d) ms", line)
        assert m is not None and m.group(1) == tail, line
        assert 20.0 <= float(m.group(2)) < 60000.0


def test_tournament_sessions_per_user(caplog):
    world, repo = setup(env={"PEP_LIMITS_TOURNAMENT_SESSIONS": "2"})
    repo.users[1000]["privileges"] |= privs.USER_TOURNAMENT_STAFF
    normal, _ = attempt(world)  # a normal session does not count
    first, _ = attempt(world, version="b20250306.2tourney")
    second, _ = attempt(world, version="b20250306.2tourney")
    assert None not in (normal, first, second)
    writes = len(repo.called("login_records"))
    assert refusal(world, caplog, version="b20250306.2tourney") == (
        game.LOGIN_FAILED, [login_module.NOTICE_TOURNEY_LIMIT.format(limit=2)], "2 tournament sessions already")
    assert len(repo.called("login_records")) == writes  # refused before any write
    from services import session
    session.kick(world.state, first, "bye")  # a kicked one does not count
    assert attempt(world, version="b20250306.2tourney")[0] is not None


def test_tournament_limit_checked_again_after_the_database():
    world, repo = setup(env={"PEP_LIMITS_TOURNAMENT_SESSIONS": "1"})
    repo.users[1000]["privileges"] |= privs.USER_TOURNAMENT_STAFF

    async def run():
        repo.records_gate = asyncio.Event()
        body = C.login_body("Alice", PASSWORD, version="b20250306.2tourney")
        tasks = [asyncio.ensure_future(login_module.login(world.state, body, "10.0.0.1")) for _ in range(2)]
        while len(repo.called("login_records")) < 2:  # both passed the first check
            await asyncio.sleep(0.01)
        repo.records_gate.set()
        results = await asyncio.gather(*tasks)
        await world.state.drain_tasks()
        return results

    results = asyncio.run(run())
    assert sorted(t is not None for t, _ in results) == [False, True]
    refused = next(reply for t, reply in results if t is None)
    assert C.values(C.decode_packets(refused), C.NOTIFICATION) == [login_module.NOTICE_TOURNEY_LIMIT.format(limit=1)]


def test_what_the_database_is_told_and_the_session_gets():
    world, repo = setup()
    repo.blocks = [55]
    token, packets = attempt(world, block_nonfriend_pm=True, hashes=HASHES)
    assert repo.called("login_records") == [(1000, 1000, "10.0.0.1", (AMD5, UMD5, DMD5), C.DEFAULT_VERSION)]
    assert (token.username, token.safe_name, token.ip, token.version) == ("Alice", "alice", "10.0.0.1", 20250306)
    assert token.max_queue == world.state.cfg.limits.max_queue
    assert token.blocked == {55} and token.block_nonfriend_dms is True and token.silence_end == 0
    assert token.country_index == country_index("CH") and (token.latitude, token.longitude) == (0.0, 0.0)
    assert repo.called("presence_rank") == [(NORMAL, False, False)]
    assert token.action_text != "[VN]"
    # no uninstall hash: no hardware row
    attempt(world, hashes=f"osumd5:adapters:{AMD5}::{DMD5}:")
    assert repo.called("login_records")[-1][3] is None


def test_client_privileges_and_flavour_details():
    world, repo = setup("kawata")
    repo.add(1004, "Admin", NORMAL | ADMIN | privs.USER_TOURNAMENT_STAFF)
    token, _ = attempt(world, "Admin")
    assert token.client_privileges == privs.CLIENT_PLAYER | privs.CLIENT_SUPPORTER | privs.CLIENT_BAT | privs.CLIENT_TOURNAMENT
    assert token.action_text == "[VN]"  # Kawata marks relax
    assert repo.called("presence_rank") == [(NORMAL | ADMIN | privs.USER_TOURNAMENT_STAFF, True, False)]
    repo.add(1003, "Rex", privs.USER_NORMAL)
    rex, _ = attempt(world, "Rex")
    assert rex.client_privileges == privs.CLIENT_PLAYER


class Locator:
    """A geolocation database that knows one address."""

    def __init__(self, ip, location):
        self.ip, self.location = ip, location

    def lookup(self, ip):
        return self.location if ip == self.ip else None


def test_geolocation_shows_and_saves_the_country():
    world, repo = setup()
    world.state.geo = Locator("10.0.0.1", geo.Location("DE", 47.5, 8.25))
    token, _ = attempt(world)
    assert token.country == "DE" and token.country_index == country_index("DE")
    assert (token.latitude, token.longitude) == (47.5, 8.25)
    assert repo.called("save_first_country") == []  # the stored country was known ("CH")
    original = repo.login_records

    async def unknown_country(*args):
        stats, _, *rest = await original(*args)
        return (stats, "XX", *rest)

    repo.login_records = unknown_country
    token, _ = attempt(world)
    assert repo.called("save_first_country") == [(1000, "DE")] and token.country == "DE"
    token, _ = attempt(world, ip="10.9.9.9")  # not located: the stored country
    assert token.country == "XX" and (token.latitude, token.longitude) == (0.0, 0.0)


def test_irc_and_tournament_sessions_stay_at_a_new_login():
    world, repo = setup()
    irc = world.user("Alice")
    world.state.tokens.remove(irc)
    irc.user_id = 1000
    irc.irc = types.SimpleNamespace(name="irc connection")
    world.state.tokens.add(irc)
    token, packets = attempt(world)
    assert not irc.logged_out and token is not None
    assert [p.user_id for p in C.values(packets, C.USER_PRESENCE)].count(1000) == 1  # its own, once


def test_redis_and_offline_failures_are_logged_by_name(no_errors):
    world, repo = setup(env={"PEP_CHAT_OFFLINE_MESSAGES": "10"})
    world.redis.fail = True

    async def broken(user_id, limit):
        raise RuntimeError("offline table broken")

    repo.take_offline_messages = broken
    token, _ = attempt(world)
    assert token is not None
    got = [r.getMessage() for r in no_errors]
    assert "offline messages of 1000 failed: offline table broken" in got
    assert "session ip failed: redis is down (fake)" in got
    no_errors.clear()


def test_offline_messages_are_delivered_at_login():
    world, repo = setup(env={"PEP_CHAT_OFFLINE_MESSAGES": "10"})
    repo.offline = [types.SimpleNamespace(sender_name="Bob", sender_id=1001, content="hi", sent_at=0)]
    token, packets = attempt(world)
    got = C.values(packets, C.SEND_MESSAGE) + C.values(received(token), C.SEND_MESSAGE)
    assert [m.content for m in got] == ["[1970-01-01 00:00 UTC] hi"]


def test_login_sequence_details():
    world, repo = setup()
    server = world.state.cfg.stack.server_name
    world.state.channels.get("#announce").public_read = False
    rex = world.user("Rex", restricted=True)  # before Bob: a skipped session must not end the list
    bob = world.user("Bob")
    bob2 = world.user("Bob", tournament=True)
    world.state.tokens.remove(bob2)
    bob2.user_id = bob.user_id
    world.state.tokens.add(bob2)
    repo.add(1004, "Admin", NORMAL | ADMIN)
    token, packets = attempt(world, "Admin")
    assert login_module.NOTICE_MAINTENANCE_ADMIN not in C.values(packets, C.NOTIFICATION)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#osu", "#announce", "#admin"]
    presences = [p.user_id for p in C.values(packets, C.USER_PRESENCE)]
    assert sorted(presences) == sorted([1004, world.bot.user_id, bob.user_id]) and rex.user_id not in presences
    token, packets = attempt(world)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#osu"]  # #announce not readable for Alice
    repo.add(1003, "Rex2", privs.USER_NORMAL)
    token, packets = attempt(world, "Rex2")
    bot_lines = [m.content for m in C.values(packets, C.SEND_MESSAGE) if m.sender == BOT_NAME]
    from services.moderation import NOTICE_RESTRICTED
    assert bot_lines == [NOTICE_RESTRICTED.format(server=server)]


def test_supporter_expiry_notices():
    world, repo = setup()
    server = world.state.cfg.stack.server_name
    now = time.time()
    repo.add(1005, "Soon", NORMAL | privs.USER_DONOR, donor_expire=int(now) + 86400)
    repo.add(1006, "Two", NORMAL | privs.USER_DONOR, donor_expire=int(now) + 48 * 3600 + 1800)
    repo.add(1007, "NotDonor", NORMAL, donor_expire=int(now) + 86400)
    _, packets = attempt(world, "Soon")
    assert C.values(packets, C.NOTIFICATION) == [
        f"Your supporter status expires in less than 48 hours! Thank you for supporting {server}."]
    _, packets = attempt(world, "Two")
    assert C.values(packets, C.NOTIFICATION) == [f"Your supporter status expires in 2 days! Thank you for supporting {server}."]
    _, packets = attempt(world, "NotDonor")
    assert C.values(packets, C.NOTIFICATION) == []
    repo.add(1008, "Later", NORMAL | privs.USER_DONOR, donor_expire=int(now) + 3 * 86400 + 3600)
    _, packets = attempt(world, "Later")
    assert C.values(packets, C.NOTIFICATION) == []  # more than three days left
    repo.add(1009, "Edge", NORMAL | privs.USER_DONOR, donor_expire=int(time.time()) + 48 * 3600 + 30)
    _, packets = attempt(world, "Edge")
    assert C.values(packets, C.NOTIFICATION) == [f"Your supporter status expires in 2 days! Thank you for supporting {server}."]


def test_first_login_on_a_known_machine_bans_the_new_account(caplog):
    world, repo = setup()
    server = world.state.cfg.stack.server_name
    repo.add(1001, "Original")
    repo.add(1007, "Fresh", privs.USER_PENDING_VERIFICATION)
    repo.hardware[1007] = [1003, 1001]  # 1003 no longer exists
    repo.add(1003, "Gone")
    del repo.users[1003]
    code, notes, reason = refusal(world, caplog, "Fresh", hashes=HASHES)
    assert (code, notes, reason) == (game.LOGIN_BANNED, [login_module.NOTICE_MULTI.format(server=server)],
                                     "multi-account of 1001")
    assert repo.called("hardware_matches") == [(1007, AMD5, UMD5, DMD5, False)]
    assert repo.privilege_writes == [(1007, 0)]  # no longer pending; ban_user takes its rights
    assert repo.notes == [(1007, "Banned: multiaccount of user 1001 (hardware match at first login)"),
                          (1001, "Restricted: created multiaccount 1007")]
    assert repo.called("ban_user") == [1007] and repo.called("restrict_user") == [1001]
    assert world.state.verified["1007"] == 0
    assert repo.called("ban_log") == [(1007, "Ban", "multiaccount of user 1001 (hardware match at first login)"),
                                      (1001, "Restrict", "created multiaccount 1007")]


def test_first_login_matching_a_deleted_account_restricts_nobody(caplog):
    world, repo = setup()
    repo.add(1007, "Fresh", privs.USER_PENDING_VERIFICATION)
    repo.hardware[1007] = [1003]
    assert refusal(world, caplog, "Fresh", hashes=HASHES)[0] == game.LOGIN_BANNED
    assert repo.called("restrict_user") == [] and repo.notes == [
        (1007, "Banned: multiaccount of user 1003 (hardware match at first login)")]


def test_first_login_activation_and_its_exceptions():
    world, repo = setup()
    repo.add(1007, "Fresh", privs.USER_PENDING_VERIFICATION | privs.USER_DONOR)
    token, _ = attempt(world, "Fresh", hashes=HASHES)
    assert token.privileges == NORMAL | privs.USER_DONOR
    assert repo.privilege_writes == [(1007, NORMAL | privs.USER_DONOR)]
    assert repo.called("log_hardware") == [((1007, AMD5, UMD5, DMD5), {"activated": True})]
    assert repo.called("login_records")[-1][3] is None  # the activation wrote this login's hardware row
    assert world.state.verified["1007"] == 1
    # a machine shared on purpose (bypass_hwid), and Wine (whose hashes are shared by everyone)
    repo.add(1008, "Shared", privs.USER_PENDING_VERIFICATION, bypass_hwid=1)
    repo.hardware[1008] = [1000]
    assert attempt(world, "Shared", hashes=HASHES)[0] is not None
    repo.add(1009, "Wine", privs.USER_PENDING_VERIFICATION)
    attempt(world, "Wine", hashes=f"osumd5:runningunderwine:{AMD5}:{UMD5}:{DMD5}:")
    repo.add(1010, "WineDisk", privs.USER_PENDING_VERIFICATION)
    attempt(world, "WineDisk", hashes=f"osumd5:adapters:{AMD5}:{UMD5}:{login_module.WINE_DISK}:")
    assert [c[4] for c in repo.called("hardware_matches")] == [False, False, True, True]


def test_missing_hardware_at_first_login(caplog):
    world, repo = setup()
    repo.add(1009, "NoHw", privs.USER_PENDING_VERIFICATION)
    assert refusal(world, caplog, "NoHw", hashes=f"osu:adapters::{UMD5}:{DMD5}:") == (
        game.LOGIN_FAILED, [login_module.NOTICE_HARDWARE], "no hardware hashes for verification")


def test_largest_body_and_configured_queue():
    world, repo = setup(env={"PEP_LIMITS_MAX_QUEUE": "123456"})
    body = C.login_body("Alice", PASSWORD)
    body = body.replace(b"|0\n", b"|0" + b" " * (login_module.MAX_BODY - len(body)) + b"\n")
    assert len(body) == login_module.MAX_BODY

    async def run():
        return await login_module.login(world.state, body, "10.0.0.1")

    token, _ = asyncio.run(run())
    assert token is not None and token.max_queue == 123456


def test_a_readable_admin_channel_is_still_joined_by_admins_only():
    world, repo = setup()
    world.state.channels.get("#admin").public_read = True
    _, packets = attempt(world)
    assert C.values(packets, C.CHANNEL_JOIN_SUCCESS) == ["#osu", "#announce"]
