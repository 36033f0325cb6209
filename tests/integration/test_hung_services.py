"""Hardening II (docs/security.md): MySQL or Redis hung (SIGSTOP), not down.

A stopped server accepts TCP connections (the kernel completes the handshake) and then never
answers, which is worse than a refused connection: without read timeouts a login waits for as
long as the freeze lasts. Each test freezes a private server started by the test itself
(tests/services.py) and always thaws it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.client import BanchoClient
from tests.conftest import PYTHON, REPO, ServerProcess
from tests.integration.test_outages import _clean_redis, _env, _login, local_database  # noqa: F401
from tests.services import PrivateMariaDB, PrivateRedis


def _cli(env: dict[str, str], *args: str) -> None:
    res = subprocess.run([PYTHON, "pep.py", *args], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def _timed_login(url: str, name: str) -> tuple[int | None, float, list]:
    started = time.monotonic()
    result = BanchoClient(url, timeout=60).login(name)
    return result.user_id, time.monotonic() - started, result.packets


def test_frozen_mysql_fails_logins_fast_and_polls_go_on(tmp_path):
    maria = PrivateMariaDB(tmp_path / "mysql")
    if not maria.available:
        pytest.skip("mariadbd / mariadb-install-db not installed")
    maria.init()
    maria.start()
    env = _env(PEP_DB_PORT=maria.port, PEP_DB_DATABASE="pep_hung", PEP_DB_CONNECT_TIMEOUT="1",
               PEP_DB_READ_TIMEOUT="1", PEP_DB_WRITE_TIMEOUT="1", PEP_SERVER_LOGIN_TIMEOUT="3")
    server = ServerProcess(env, tmp_path / "server.log")
    frozen = False
    try:
        _cli(env, "init-db")
        for name in ("hung_a", "hung_b", "hung_c"):
            _cli(env, "adduser", name, "password")
        server.start()
        alice = _login(server, "hung_a")
        os.kill(maria.proc.pid, signal.SIGSTOP)
        frozen = True
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
        os.kill(maria.proc.pid, signal.SIGCONT)
        frozen = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if BanchoClient(server.url).login("hung_c").user_id not in (None, -5):
                break
            time.sleep(0.5)
        else:
            pytest.fail("logins did not work again after MySQL was thawed")
        assert server.alive()
    finally:
        if frozen:
            os.kill(maria.proc.pid, signal.SIGCONT)
        server.stop()
        maria.stop(kill=True)
        _clean_redis(env)


def test_frozen_redis_does_not_hold_logins(tmp_path, local_database):  # noqa: F811
    redis_server = PrivateRedis(tmp_path)
    if not redis_server.available:
        pytest.skip("redis-server not installed")
    redis_server.start()
    env = _env(PEP_REDIS_PORT=redis_server.port, PEP_DB_DATABASE=local_database, PEP_REDIS_KEY_PREFIX="",
               PEP_REDIS_TIMEOUT="1", PEP_REDIS_CONNECT_TIMEOUT="1")
    server = ServerProcess(env, tmp_path / "server.log")
    frozen = False
    try:
        _cli(env, "init-db")
        for name in ("rhung_a", "rhung_b", "rhung_c"):
            _cli(env, "adduser", name, "password")
        server.start()
        alice = _login(server, "rhung_a")
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        frozen = True
        reply, seconds, packets = _timed_login(server.url, "rhung_b")
        print(f"login with Redis frozen: reply {reply} after {seconds:.2f} s")
        assert reply is not None and reply > 0, packets
        assert seconds < 2.5
        time.sleep(2.5)  # the health check has noticed by now: no wait at all
        reply, seconds, _ = _timed_login(server.url, "rhung_c")
        print(f"login with Redis frozen, noticed: reply {reply} after {seconds:.2f} s")
        assert reply is not None and reply > 0 and seconds < 1.0
        poll_started = time.monotonic()
        alice.poll()
        assert time.monotonic() - poll_started < 1.0
        assert server.alive()
    finally:
        if frozen:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        server.stop()
        _clean_redis(env)
        redis_server.stop()
