"""Hardening II (docs/security.md): MySQL or Redis hung (SIGSTOP), not down.

A stopped server accepts TCP connections (the kernel completes the handshake) and then never
answers, which is worse than a refused connection: without read timeouts a login waits for as
long as the freeze lasts. Each test freezes a private server started by the test itself
(tests/services.py) and always thaws it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from tests.client import BanchoClient
from tests.conftest import ServerProcess
from tests.integration.test_outages import (_clean_redis, _env, _login, _private_mariadb,  # noqa: F401
                                            _private_redis, _start, local_database)
from tests.waiting import wait_until


def _timed_login(url: str, name: str) -> tuple[int | None, float, list]:
    started = time.monotonic()
    result = BanchoClient(url, timeout=60).login(name)
    return result.user_id, time.monotonic() - started, result.packets


@contextlib.contextmanager
def _frozen(pid: int):
    """The process ``pid`` stopped (SIGSTOP) for the block, always continued (SIGCONT) after it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_frozen_mysql_fails_logins_fast_and_polls_go_on(tmp_path):
    maria = _private_mariadb(tmp_path)
    env = _env(PEP_DB_PORT=maria.port, PEP_DB_DATABASE="pep_hung", PEP_DB_CONNECT_TIMEOUT="1",
               PEP_DB_READ_TIMEOUT="1", PEP_DB_WRITE_TIMEOUT="1", PEP_SERVER_LOGIN_TIMEOUT="3")
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        _start(env, server, "hung_a", "hung_b", "hung_c")
        alice = _login(server, "hung_a")
        with _frozen(maria.proc.pid):
            started = time.monotonic()
            reply, seconds, packets = _timed_login(server.url, "hung_b")
            print(f"login with MySQL frozen: reply {reply} after {seconds:.2f} s")
            assert reply == -5, packets
            assert any(p.id == 24 for p in packets), "the server-error notice is missing"
            assert seconds < 4.5
            # polls never touch MySQL
            poll_started = time.monotonic()
            alice.poll()
            assert time.monotonic() - poll_started < 1.0
            # a second login while the pool threads may still be stuck: bounded as well
            reply2, seconds2, _ = _timed_login(server.url, "hung_c")
            assert reply2 == -5 and seconds2 < 4.5
            assert time.monotonic() - started < 12
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if BanchoClient(server.url).login("hung_c").user_id not in (None, -5):
                break
            time.sleep(0.5)
        else:
            pytest.fail("logins did not work again after MySQL was thawed")
        assert server.alive()
    finally:
        server.stop()
        maria.stop(kill=True)
        _clean_redis(env)


def test_frozen_redis_does_not_hold_logins(tmp_path, local_database):  # noqa: F811
    redis_server = _private_redis(tmp_path)
    env = _env(PEP_REDIS_PORT=redis_server.port, PEP_DB_DATABASE=local_database, PEP_REDIS_KEY_PREFIX="",
               PEP_REDIS_TIMEOUT="1", PEP_REDIS_CONNECT_TIMEOUT="1")
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        _start(env, server, "rhung_a", "rhung_b", "rhung_c")
        alice = _login(server, "rhung_a")
        with _frozen(redis_server.proc.pid):
            reply, seconds, packets = _timed_login(server.url, "rhung_b")
            print(f"login with Redis frozen: reply {reply} after {seconds:.2f} s")
            assert reply is not None and reply > 0, packets
            assert seconds < 2.5
            # once the health check has noticed (its warning is in the log), logins do not wait at all
            wait_until(lambda: "Redis is unreachable" in server.log_text(), timeout=15,
                       what="the health check noticing")
            reply, seconds, _ = _timed_login(server.url, "rhung_c")
            print(f"login with Redis frozen, noticed: reply {reply} after {seconds:.2f} s")
            assert reply is not None and reply > 0 and seconds < 1.0
            poll_started = time.monotonic()
            alice.poll()
            assert time.monotonic() - poll_started < 1.0
            assert server.alive()
    finally:
        server.stop()
        _clean_redis(env)
        redis_server.stop()


def test_pubsub_is_back_within_a_second_and_catches_up_bans_and_silences(tmp_path, local_database):  # noqa: F811
    import MySQLdb
    import redis as redis_lib

    from tests import client as C
    from tests.conftest import _mysql_connect

    redis_server = _private_redis(tmp_path)
    env = _env(PEP_REDIS_PORT=redis_server.port, PEP_DB_DATABASE=local_database, PEP_REDIS_KEY_PREFIX="")
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        _start(env, server, "ps_banned", "ps_silenced", "ps_watcher")
        banned, silenced, watcher = (_login(server, n) for n in ("ps_banned", "ps_silenced", "ps_watcher"))
        redis_server.stop()
        time.sleep(5.0)  # long enough for the old backoff to grow past several seconds
        # the website bans and silences while Redis is down: its messages are lost
        conn = _mysql_connect(local_database)
        with conn.cursor() as cur:
            cur.execute("UPDATE users SET privileges = 0 WHERE id = %s", (banned.user_id,))
            cur.execute("UPDATE users SET silence_end = %s WHERE id = %s", (int(time.time()) + 600, silenced.user_id))
        conn.close()
        redis_server.start()
        up = time.monotonic()
        r = redis_lib.Redis(port=redis_server.port)
        back = None
        while time.monotonic() - up < 10:
            if any(c.get("name", "").startswith("pep.py-pubsub") for c in r.client_list()):
                back = time.monotonic() - up
                break
            time.sleep(0.05)
        r.close()
        print(f"pub/sub subscribed again {back} s after Redis was back")
        assert back is not None and back < 1.3
        kicked = C.wait_for(banned, lambda p: p.id == 5 and p.value == -3, timeout=5, description="ban (login reply -3)")
        assert kicked
        left = C.wait_for(silenced, lambda p: p.id == 92 and p.value > 0, timeout=5, description="silence end").value
        assert 500 < left <= 600
        assert watcher.poll() is not None
        assert server.alive()
    finally:
        server.stop()
        _clean_redis(env)
        redis_server.stop()
