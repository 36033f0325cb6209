"""Outages and crashes: MySQL or Redis going away under a running server, and kill -9.

Each test starts its own pep.py against private services (tests/services.py) or its own
database, so stopping them never disturbs the machine's services or the other tests.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time

import pytest

from tests import client as C
from tests.client import BanchoClient
from tests.conftest import PYTHON, REPO, ServerProcess, _mysql_connect
from tests.services import PrivateMariaDB, PrivateRedis, free_port


def _env(**overrides) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PEP_SERVER_HOST": "127.0.0.1", "PEP_SERVER_PORT": str(free_port()), "PEP_LOG_LEVEL": "DEBUG",
        "PEP_SESSIONS_LOGOUT_GRACE": "1", "PEP_SESSIONS_TIMEOUT": "600",
        "PEP_REDIS_KEY_PREFIX": f"pep_outage_{secrets.token_hex(4)}:",
    })
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def _clean_redis(env: dict[str, str]) -> None:
    """Delete the keys the server wrote under its prefix on the machine's Redis."""
    import redis as redis_lib

    prefix = env.get("PEP_REDIS_KEY_PREFIX")
    if not prefix or env.get("PEP_REDIS_PORT"):  # private Redis servers vanish with the test
        return
    r = redis_lib.Redis(host="127.0.0.1", port=6379)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


def _cli(env: dict[str, str], *args: str) -> str:
    res = subprocess.run([PYTHON, "pep.py", *args], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _private_mariadb(tmp_path) -> PrivateMariaDB:
    """A private MariaDB under ``tmp_path``, initialised and started; the test is skipped where
    MariaDB is not installed."""
    maria = PrivateMariaDB(tmp_path / "mysql")
    if not maria.available:
        pytest.skip("mariadbd / mariadb-install-db not installed")
    maria.init()
    maria.start()
    return maria


def _private_redis(tmp_path) -> PrivateRedis:
    """A private Redis under ``tmp_path``, started; the test is skipped where Redis is not
    installed."""
    redis_server = PrivateRedis(tmp_path)
    if not redis_server.available:
        pytest.skip("redis-server not installed")
    redis_server.start()
    return redis_server


def _start(env: dict[str, str], server: ServerProcess, *names: str) -> None:
    """``init-db``, an account for each of ``names`` (password "password"), then ``server`` started."""
    _cli(env, "init-db")
    for name in names:
        _cli(env, "adduser", name, "password")
    server.start()


def _login(server: ServerProcess, name: str) -> BanchoClient:
    client = BanchoClient(server.url)
    result = client.login(name)
    assert result.user_id is not None and result.user_id > 0, result.packets
    return client


def _messages(packets, content: str):
    return [p for p in packets if p.id == 7 and p.value.content == content]


def _wait(predicate, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.fixture
def local_database():
    """A fresh database on the machine's MariaDB, dropped afterwards."""
    name = f"pep_test_{secrets.token_hex(4)}"
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    yield name
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def test_mysql_outage_keeps_sessions_refuses_logins_and_persisted_actions(tmp_path):
    maria = _private_mariadb(tmp_path)
    env = _env(PEP_DB_PORT=maria.port, PEP_DB_DATABASE="pep_outage")
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        _start(env, server, "alice", "bob", "carol")
        alice, bob = _login(server, "alice"), _login(server, "bob")
        bob_id = bob.user_id

        maria.stop(kill=True)
        # sessions keep working from memory: chat and presence
        alice.send(C.public_message("#osu", "still here"))
        assert _wait(lambda: _messages(bob.poll(), "still here"))
        packets = bob.send(C.presence_request([alice.user_id]))
        assert any(p.id == 83 and p.value.user_id == alice.user_id for p in packets)
        # a login fails with a clear notice and the server-error code
        refused = BanchoClient(server.url).login("carol")
        assert refused.user_id == -5
        assert any(p.id == 24 for p in refused.packets)
        # an action that must be persisted is refused with a notice
        alice.send(C.friend_add(bob_id))
        notice = _wait(lambda: [p for p in alice.poll() if p.id == 24 and "could not save" in p.value])
        assert notice

        maria.start()
        # the server reconnects by itself
        carol = _wait(lambda: (lambda r: r if r.user_id and r.user_id > 0 else None)(BanchoClient(server.url).login("carol")),
                      timeout=20, step=0.5)
        assert carol and carol.user_id > 0
        conn = __import__("MySQLdb").connect(host="127.0.0.1", port=maria.port, user="root", db="pep_outage")
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM users_relationships WHERE user1 = %s", (alice.user_id,))
        assert cur.fetchone()[0] == 0  # the refused friend add left nothing behind
        conn.close()
        assert server.alive()
    finally:
        server.stop()
        maria.stop(kill=True)
        _clean_redis(env)


def test_redis_outage_keeps_serving_and_rewrites_keys_when_back(tmp_path, local_database):
    redis_server = _private_redis(tmp_path)
    env = _env(PEP_REDIS_PORT=redis_server.port, PEP_DB_DATABASE=local_database, PEP_REDIS_KEY_PREFIX="")
    server = ServerProcess(env, tmp_path / "server.log")
    import redis as redis_lib

    try:
        _start(env, server, "dave", "erin", "frank")
        dave, erin = _login(server, "dave"), _login(server, "erin")
        redis_server.stop()
        dave.send(C.public_message("#osu", "no redis"))
        assert _wait(lambda: _messages(erin.poll(), "no redis"))
        frank = _login(server, "frank")  # logins do not need Redis
        redis_server.start()  # empty: everything the server keeps there must be rewritten
        r = redis_lib.Redis(port=redis_server.port, decode_responses=True)
        assert _wait(lambda: r.get("ripple:online_users") == "4", timeout=30), r.get("ripple:online_users")
        for user in (dave, erin, frank):
            assert _wait(lambda: r.sismember(f"peppy:sessions:{user.user_id}", "127.0.0.1"), timeout=10)
        dave.send(C.public_message("#osu", "redis back"))
        assert _wait(lambda: _messages(erin.poll(), "redis back"))
        assert server.alive()
    finally:
        server.stop()
        _clean_redis(env)
        redis_server.stop()


def test_kill_9_then_restart_every_client_logs_in_again_without_duplicates(tmp_path, local_database):
    env = _env(PEP_DB_DATABASE=local_database)
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        names = [f"crash{i}" for i in range(4)]
        _start(env, server, *names)
        clients = [_login(server, name) for name in names]
        for c in clients:  # some load: chat and status changes in flight
            c.send(C.public_message("#osu", "load"), C.change_action(2, "playing", "a" * 32, 0, 0, 1))
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        server.stop()
        server = ServerProcess(env, tmp_path / "server2.log").start()
        for c in clients:
            packets = c.poll()
            assert any(p.id == 86 for p in packets), "the old token must get the restart packet"
            again = c.login(c.username)
            assert again.user_id == c.user_id
        conn = _mysql_connect(local_database)
        with conn.cursor() as cur:
            for c in clients:
                cur.execute("SELECT COUNT(*) AS n FROM ip_user WHERE userid = %s", (c.user_id,))
                assert list(cur.fetchone().values())[0] == 1
                cur.execute("SELECT COUNT(*) AS n FROM hw_user WHERE userid = %s", (c.user_id,))
                assert list(cur.fetchone().values())[0] == 1
        conn.close()
        packets = clients[0].send(C.presence_request([c.user_id for c in clients]))
        assert {p.value.user_id for p in packets if p.id == 83} == {c.user_id for c in clients}
    finally:
        server.stop()
        _clean_redis(env)
