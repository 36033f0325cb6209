"""Operations: systemd notifications, SIGTERM/SIGUSR2/SIGHUP, maintenance, scheduled shutdown,
metrics, logs and geolocation.

Specs: docs/integration.md §1 (reload_settings); docs/rules.md §7.5 (restart/shutdown), §7.6
(maintenance), §7.7 (start-up); docs/schema.md §3.4 (country, geolocation), §4. Decisions: docs/operations.md.

Servers are real subprocesses (``start_server``); their signals are sent with ``os.kill``. The
in-process tests at the end drive :mod:`services.maintenance`, :mod:`services.stop` and
:mod:`services.reload` on a real MySQL database.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import signal
import socket
import threading
import time

import chio
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests import client as C
from tests.waiting import holds_for, past_logout_grace, until, wait_until

KAWATA_FULL_PERMS = 136104116219  # a Kawata admin preset (docs/schema.md §2.3)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET; collects messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._lock:
                self.messages.append(fields)

    def snapshot(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.messages)

    def wait(self, predicate, timeout: float = 5.0, what: str = "") -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.snapshot():
                if predicate(message):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no sd_notify message {what} within {timeout}s; got {self.snapshot()!r}")

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


def scrape(url: str, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    r = requests.get(url.rstrip("/") + "/metrics", headers=headers or {}, timeout=5)
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_exit(extra, timeout: float) -> int:
    return extra.proc.proc.wait(timeout=timeout)


def login_refused(res) -> bool:
    codes = res.values(C.LOGIN_REPLY)
    return len(codes) == 1 and codes[0] < 0


# ---------------------------------------------------------------------------------------------
# systemd: READY, WATCHDOG, STATUS, STOPPING, and a bounded grace period
# ---------------------------------------------------------------------------------------------
def test_sd_notify_ready_watchdog_status_and_bounded_stop(server, start_server, tmp_path):
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    try:
        extra = start_server({"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000",
                              "PEP_SERVER_SHUTDOWN_GRACE": "1.5", "PEP_SESSIONS_HANDOVER": "0"})
        ready = listener.wait(lambda m: m.get("READY") == "1", what="READY=1")
        assert ready.get("STATUS") == "0 online, 0 matches"
        # the server answered HTTP before the test got here, READY came once
        assert sum(1 for m in listener.snapshot() if m.get("READY") == "1") == 1
        # WATCHDOG=1 every WATCHDOG_USEC / 2 = 0.5 s, from the event loop
        def watchdogs() -> int:
            return len([m for m in listener.snapshot() if m.get("WATCHDOG") == "1"])

        first, started = watchdogs(), time.monotonic()
        wait_until(lambda: watchdogs() - first >= 2, timeout=15, what="two WATCHDOG=1 pings")
        pings, elapsed = watchdogs() - first, time.monotonic() - started
        # at most one ping per 0.5 s (plus the one under way): never more often than asked
        assert pings <= elapsed / 0.5 + 2, f"{pings} watchdog pings in {elapsed:.2f} s: more often than WATCHDOG_USEC / 2"

        extra.login(server.new_user())  # then deliberately idle
        listener.wait(lambda m: m.get("STATUS", "").startswith("1 online"), what="STATUS=1 online")

        # the client never polls again: the grace period runs out, bounded by shutdown_grace
        started = time.monotonic()
        os.kill(extra.proc.proc.pid, signal.SIGTERM)
        listener.wait(lambda m: m.get("STOPPING") == "1", what="STOPPING=1")
        code = wait_exit(extra, timeout=8)
        elapsed = time.monotonic() - started
        assert code == 0
        assert 1.4 <= elapsed < 1.5 + 5, f"stop took {elapsed:.2f}s with a 1.5 s grace period"
        assert "grace period of 1.50 s over" in extra.log_text()
    finally:
        listener.close()


# ---------------------------------------------------------------------------------------------
# SIGTERM: restart packet to every client, logins refused, clean Redis, quick exit
# ---------------------------------------------------------------------------------------------
def test_sigterm_tells_clients_to_reconnect_and_exits_cleanly(server, start_server):
    # [sessions] handover = 0: stops tell clients to reconnect (test_restart.py covers the default)
    extra = start_server({"PEP_SERVER_SHUTDOWN_GRACE": "6", "PEP_SERVER_RECONNECT_DELAY": "7",
                          "PEP_SESSIONS_HANDOVER": "0"})
    a = extra.login(server.new_user())
    b = extra.login(server.new_user())
    late = server.new_user()
    for c in (a, b):
        wait_until(lambda c=c: extra.redis.sismember(f"peppy:sessions:{c.user_id}", "127.0.0.1"),
                   what="peppy:sessions entry")
    assert extra.wait_online_users(3) == 3  # bot + 2

    started = time.monotonic()
    os.kill(extra.proc.proc.pid, signal.SIGTERM)
    got = C.wait_for_id(a, C.RESTART, timeout=3)
    assert got.value == 7000, "the restart packet carries [server] reconnect_delay in ms"
    assert any("restarting" in n.lower() for n in C.values(a.received, C.NOTIFICATION))

    # logins are not served while stopping: the client is told to come back after the restart
    res = extra.client().login(late.name, late.password)
    assert not res.values(C.LOGIN_REPLY), res.packets
    assert res.values(C.RESTART) == [7000]
    assert res.of(C.NOTIFICATION)

    assert C.wait_for_id(b, C.RESTART, timeout=3).value == 7000
    # everyone has the packet: the server does not wait out its 6 s grace period
    code = wait_exit(extra, timeout=5)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 5, f"stop took {elapsed:.2f}s although every client had its restart packet"
    log = extra.log_text()
    assert "restart packet delivered to every session" in log
    assert "Traceback" not in log

    # nothing of ours is left in Redis
    assert extra.redis.get("ripple:online_users") == "0"
    assert extra.redis.keys("peppy:sessions:*") == []


def test_second_sigterm_skips_the_grace_period(server, start_server):
    extra = start_server({"PEP_SERVER_SHUTDOWN_GRACE": "30", "PEP_SESSIONS_HANDOVER": "0"})
    extra.login(server.new_user())  # never polls again: would hold the stop for 30 s
    started = time.monotonic()
    os.kill(extra.proc.proc.pid, signal.SIGTERM)
    wait_until(lambda: "SIGTERM: shutdown requested" in extra.log_text(), what="the first SIGTERM")
    holds_for(extra.proc.alive, 0.3, what="the server must wait for its client during the grace period")
    os.kill(extra.proc.proc.pid, signal.SIGTERM)
    assert wait_exit(extra, timeout=8) == 0
    assert time.monotonic() - started < 8
    assert "skipping the rest of the grace period" in extra.log_text()
    assert extra.redis.get("ripple:online_users") == "0"


# ---------------------------------------------------------------------------------------------
# SIGUSR2: restart in place (re-exec, same pid)
# ---------------------------------------------------------------------------------------------
def test_sigusr2_restarts_in_place(server, start_server):
    """With ``[sessions] handover = 0`` SIGUSR2 re-executes (same pid) and clients log in again;
    the default hand-over is tested in test_restart.py."""
    extra = start_server({"PEP_SERVER_RECONNECT_DELAY": "1", "PEP_SESSIONS_HANDOVER": "0"})
    pid = extra.proc.proc.pid
    user = server.new_user()
    c = extra.login(user)
    old_token = c.token
    os.kill(pid, signal.SIGUSR2)
    assert C.wait_for_id(c, C.RESTART, timeout=3).value == 1000

    wait_until(lambda: extra.log_text().count("listening on") >= 2, timeout=20, what="the re-executed server")
    assert extra.proc.alive() and extra.proc.proc.pid == pid
    wait_until(lambda: requests.get(extra.url, timeout=2).status_code == 200, timeout=10, what="GET / after re-exec")
    assert "re-executing" in extra.log_text()

    # the old session is unknown to the new process: the client is told to reconnect at once
    packets = c.send_raw(C.ping(), token=old_token)
    assert C.values(packets, C.RESTART) == [0]
    again = extra.login(user)
    assert again.user_id == user.id
    assert extra.wait_online_users(2) == 2


# ---------------------------------------------------------------------------------------------
# SIGHUP: reload settings and channels without dropping anyone
# ---------------------------------------------------------------------------------------------
def test_sighup_reloads_channels_and_settings(server, start_server):
    extra = start_server({"INVOCATION_ID": secrets.token_hex(16)})  # as under systemd: journald log form
    assert re.search(r"^<6>INFO pep: listening on ", extra.log_text(), re.M), extra.log_text()[-2000:]
    c = extra.login(server.new_user())
    newcomer = server.new_user()
    plain = server.new_user()
    name = f"#ops{secrets.token_hex(3)}"
    notice = f"Welcome back {secrets.token_hex(4)}"
    old = server.db.one("SELECT value_string FROM bancho_settings WHERE name='login_notification'")
    server.db.execute("INSERT INTO bancho_channels (name, description, public_read, public_write, status) "
                      "VALUES (%s, 'reload test', 1, 1, 1)", (name,))
    try:
        server.db.execute("UPDATE bancho_settings SET value_string=%s WHERE name='login_notification'", (notice,))
        os.kill(extra.proc.proc.pid, signal.SIGHUP)
        C.wait_for_id(c, C.CHANNEL_INFO_END, timeout=5)
        info = C.wait_for(c, lambda p: p.id == C.CHANNEL_INFO and p.value.name == name, timeout=3)
        assert info.value.topic == "reload test"
        # 76, then 89, then 65 for every listed channel (docs/integration.md §1)
        ids = C.ids(c.received)
        end = len(ids) - 1 - ids[::-1].index(C.CHANNEL_INFO_END)
        assert C.MAIN_MENU_ICON in ids[:end] and ids[end - 1] == C.MAIN_MENU_ICON
        assert any(p.id == C.CHANNEL_INFO and p.value.name == "#osu" for p in c.received[end:])
        # nobody was dropped, the new channel can be joined and the bot is in it
        reply = c.send(C.channel_join(name))
        assert name in C.values(reply + C.collect(c, 0.2), C.CHANNEL_JOIN_SUCCESS)
        # the new login notification is used by new logins
        res = extra.client().login(newcomer.name, newcomer.password)
        assert res.user_id == newcomer.id
        assert notice in res.values(C.NOTIFICATION)
        assert "new channels: " + name in extra.log_text()

        # maintenance switched on in the database and reloaded: new non-admin logins are refused,
        # sessions already online stay (docs/rules.md §7.6)
        server.db.execute("UPDATE bancho_settings SET value_int=1 WHERE name='bancho_maintenance'")
        os.kill(extra.proc.proc.pid, signal.SIGHUP)
        wait_until(lambda: "settings reloaded: maintenance on" in extra.log_text(), what="second reload")
        res = extra.client().login(plain.name, plain.password)
        assert login_refused(res), res.packets
        assert C.values(c.poll(), C.LOGIN_REPLY) == []  # still online
        assert extra.wait_online_users(3) == 3
    finally:
        server.db.execute("UPDATE bancho_settings SET value_int=0 WHERE name='bancho_maintenance'")
        server.db.execute("UPDATE bancho_settings SET value_string=%s WHERE name='login_notification'",
                          (old["value_string"] if old else "",))
        server.db.execute("DELETE FROM bancho_channels WHERE name=%s", (name,))


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------
def test_metrics_reflect_logins_packets_and_polls(server):
    before = scrape(server.url)
    user = server.new_user()
    c = server.login(user, drain=False)
    bad = server.client().login(user.name, "wrong password")
    assert login_refused(bad)
    c.send(C.ping(), C.request_status_update(), C.ping())
    c.poll()
    after = scrape(server.url)

    assert sample(after, "pep_logins_total", outcome="success") >= sample(before, "pep_logins_total", outcome="success") + 1
    assert sample(after, "pep_logins_total", outcome="failed") >= sample(before, "pep_logins_total", outcome="failed") + 1
    assert sample(after, "pep_packets_total", packet="4") >= sample(before, "pep_packets_total", packet="4") + 3
    assert sample(after, "pep_packets_total", packet="3") >= sample(before, "pep_packets_total", packet="3") + 1
    assert sample(after, "pep_requests_total", kind="poll") >= sample(before, "pep_requests_total", kind="poll") + 2
    assert sample(after, "pep_requests_total", kind="login") >= sample(before, "pep_requests_total", kind="login") + 2
    assert sample(after, "pep_poll_seconds_count") >= sample(before, "pep_poll_seconds_count") + 2
    assert sample(after, "pep_online_users") >= 1
    assert sample(after, "pep_tokens") >= 2  # the bot and this client
    assert ("pep_matches", ()) in after and ("pep_mysql_errors_total", ()) in after
    assert sample(after, "pep_restarting") == 0


def test_metrics_refuse_scrapes_through_the_proxy(server):
    r = requests.get(server.url + "metrics", headers={"X-Real-IP": "198.51.100.7"}, timeout=5)
    assert r.status_code == 403
    assert "pep_" not in r.text
    # a proxy header with an allowed address is fine (Prometheus next to nginx)
    assert scrape(server.url, headers={"X-Real-IP": "127.0.0.1"})


# ---------------------------------------------------------------------------------------------
# logs: one line per login/logout with the user id; never a password or a token
# ---------------------------------------------------------------------------------------------
def test_logs_have_user_lines_and_no_secrets(server):
    password = "Pw-" + secrets.token_hex(8)
    wrong = "Wrong-" + secrets.token_hex(8)
    user = server.new_user(password=password, stem="sec")
    start = server.log_path.stat().st_size
    c = server.login(user)
    token = c.token
    server.client().login(user.name, wrong)
    c.send(C.public_message("#osu", "hello from the log test"))
    c.send(C.channel_join("#nonexistent"))
    past_logout_grace(c)
    c.send(C.logout())
    c.send_raw(C.ping(), token=token)  # unknown token now

    def logged() -> str:
        with open(server.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    wait_until(lambda: re.search(rf"logout user={user.id}\b", logged()), what="the logout in the log")
    text = logged()

    assert re.search(rf"login user={user.id}\b", text), text[-3000:]
    assert re.search(rf"logout user={user.id}\b", text), text[-3000:]
    assert re.search(r"login refused .*code=-1", text)
    for secret in (password, wrong, hashlib.md5(password.encode()).hexdigest(),
                   hashlib.md5(wrong.encode()).hexdigest(), token):
        assert secret not in text, f"the server log contains a secret ({secret[:6]}...)"
    # the whole log of the session so far, too
    whole = server.log_text()
    assert token not in whole and hashlib.md5(password.encode()).hexdigest() not in whole


# ---------------------------------------------------------------------------------------------
# geolocation
# ---------------------------------------------------------------------------------------------
def test_geolocation_sets_country_and_position_and_saves_the_first_country(server, start_server, tmp_path):
    from tests.test_systemd import write_mmdb

    path = str(tmp_path / "geo.mmdb")
    write_mmdb(path)
    extra = start_server({"PEP_GEO_DATABASE": path})
    user = server.new_user()
    assert server.db.scalar("SELECT country FROM users_stats WHERE id=%s", (user.id,)) == "XX"

    def own_presence(c):
        return [p.value for p in c.login_result.of(C.USER_PRESENCE) if p.value.user_id == user.id][0]

    c = extra.login(user, headers={"X-Real-IP": "133.1.2.3"})
    me = own_presence(c)
    assert me.country == chio.resolve_country_index("JP")
    assert me.latitude == pytest.approx(35.5) and me.longitude == pytest.approx(139.75)
    assert server.db.scalar("SELECT country FROM users_stats WHERE id=%s", (user.id,)) == "JP"

    # a later login elsewhere shows where the player is, the stored (first) country stays
    c = extra.login(user, headers={"X-Real-IP": "2a00:1450::1"})
    me = own_presence(c)
    assert me.country == chio.resolve_country_index("DE")
    assert me.latitude == pytest.approx(52.5) and me.longitude == pytest.approx(13.25)
    assert server.db.scalar("SELECT country FROM users_stats WHERE id=%s", (user.id,)) == "JP"

    # an address the database does not know: the stored country, position 0, 0
    c = extra.login(user, headers={"X-Real-IP": "8.8.8.8"})
    me = own_presence(c)
    assert me.country == chio.resolve_country_index("JP")
    assert (me.latitude, me.longitude) == (0.0, 0.0)

    # without [geo] database (the session server): the stored country only
    other = server.new_user()
    c = server.login(other, headers={"X-Real-IP": "133.1.2.3"})
    mine = [p.value for p in c.login_result.of(C.USER_PRESENCE) if p.value.user_id == other.id][0]
    assert mine.country == 0 and (mine.latitude, mine.longitude) == (0.0, 0.0)
    assert server.db.scalar("SELECT country FROM users_stats WHERE id=%s", (other.id,)) == "XX"


# ---------------------------------------------------------------------------------------------
# in process: maintenance, scheduled stop and reload on a real database
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def local_state(server):
    """A State on the test database (Redis: the in-memory fake, so the session server's keys are
    not touched), with two fake sessions: a player and an admin."""
    from common.db import Database
    from helpers import config
    from objects.state import State
    from objects.token import Token
    from tests.fakes import FakeRedis

    cfg = config.load(None, environ=server.env)
    db = Database(cfg.db)
    state = State(cfg, db, FakeRedis())
    base = 2_000_000_000 - secrets.randbelow(1_000_000)
    player = Token(base, "ops player", "ops_player", 3)
    admin = Token(base + 1, "ops admin", "ops_admin", KAWATA_FULL_PERMS, admin=True)
    for token in (player, admin):
        state.tokens.add(token)
    yield state, player, admin
    state.lifecycle.close()
    db.close()
    state.cpu_pool.shutdown(wait=False)


def test_set_maintenance_writes_refuses_and_notifies(server, local_state):
    from services import maintenance

    state, player, admin = local_state
    try:
        asyncio.run(maintenance.set_maintenance(state, True))
        assert server.db.scalar("SELECT value_int FROM bancho_settings WHERE name='bancho_maintenance'") == 1
        assert state.settings.maintenance is True
        got = C.decode_packets(player.drain())
        assert C.ids(got) == [C.NOTIFICATION, C.LOGIN_REPLY]
        assert C.values(got, C.LOGIN_REPLY) == [-5]
        assert "maintenance" in got[0].value
        assert state.tokens.get(player.token) is None and player.token in state.kicked
        got = C.decode_packets(admin.drain())
        assert C.values(got, C.USER_LOGOUT)[0].user_id == player.user_id  # the player left
        assert len(C.values(got, C.NOTIFICATION)) == 1 and "maintenance" in C.values(got, C.NOTIFICATION)[0]
        assert not C.of(got, C.LOGIN_REPLY)
        assert state.tokens.get(admin.token) is admin

        asyncio.run(maintenance.set_maintenance(state, False))
        assert server.db.scalar("SELECT value_int FROM bancho_settings WHERE name='bancho_maintenance'") == 0
        assert state.settings.maintenance is False
        assert C.ids(C.decode_packets(admin.drain())) == [C.NOTIFICATION]
    finally:
        server.db.execute("UPDATE bancho_settings SET value_int=0 WHERE name='bancho_maintenance'")


def test_schedule_shutdown_sequence(local_state):
    from services import stop

    state, player, admin = local_state

    async def scenario():
        stop.schedule_shutdown(state, restart=True, message="Going down", send_after=0.2, delay=0.3)
        assert state.restarting
        first = C.decode_packets(player.drain())
        assert C.values(first, C.NOTIFICATION) == ["Going down"] and C.ids(first) == [C.NOTIFICATION]
        stop.schedule_shutdown(state, restart=False)  # ignored while one is pending
        await until(lambda: state.lifecycle.restart_sent, what="the restart packet")
        second = C.decode_packets(player.drain())
        assert C.values(second, C.RESTART) == [600]  # delay * 2 * 1000 ms
        assert not state.lifecycle.stop_requested.is_set()
        await asyncio.wait_for(stop.wait_for_stop(state), 1)
        lc = state.lifecycle
        assert lc.restart and lc.restart_sent
        assert C.decode_packets(admin.drain())[-1].id == C.RESTART

    asyncio.run(scenario())


def test_reload_settings_in_process_adds_channels_once(server, local_state):
    from services import reload
    from objects.channel import Channel

    state, player, _ = local_state
    state.channels.add(Channel("#osu", "kept as is", True, True))
    name = f"#opsin{secrets.token_hex(3)}"
    server.db.execute("INSERT INTO bancho_channels (name, description, public_read, public_write, status) "
                      "VALUES (%s, 'in process', 1, 1, 1)", (name,))
    try:
        asyncio.run(reload.reload_settings(state))
        assert state.channels.get(name) is not None
        assert state.channels.get("#osu").description == "kept as is"  # existing channels untouched
        got = C.decode_packets(player.drain())
        assert got[0].id == C.MAIN_MENU_ICON and got[1].id == C.CHANNEL_INFO_END
        names = [v.name for v in C.values(got, C.CHANNEL_INFO)]
        assert name in names and "#osu" in names
        count = len(state.channels)
        asyncio.run(reload.reload_settings(state))
        assert len(state.channels) == count
    finally:
        server.db.execute("DELETE FROM bancho_channels WHERE name=%s", (name,))
