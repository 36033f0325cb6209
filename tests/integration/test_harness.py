"""The test harness itself: a test server whose port was taken between choosing and binding
still starts (tests/conftest.py ``ServerProcess.start`` retries on new ports), and
``tests/services.free_port`` keeps out of the range of outgoing connections."""

from __future__ import annotations

import secrets
import socket

import pytest
import requests

from tests.conftest import PrefixedRedis, ServerProcess, _server_env
from tests.services import PrivateRedis, _ephemeral_range, free_port


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", free_port()))
    sock.listen()
    return sock


def test_a_start_on_a_port_taken_meanwhile_is_retried_on_another(_test_world, server, tmp_path):
    busy, busy_irc = _listening(), _listening()
    taken, taken_irc = busy.getsockname()[1], busy_irc.getsockname()[1]
    prefix = f"{_test_world['prefix']}h{secrets.token_hex(2)}:"
    env = _server_env(server.db_name, prefix, taken, {"PEP_IRC_PORT": str(taken_irc)})
    proc = ServerProcess(env, tmp_path / "server.log")
    try:
        proc.start()
        log = proc.log_text()
        assert "start-up failed: cannot listen on" in log  # the first try met the busy port
        assert proc.port != taken and proc.irc_port != taken_irc
        assert requests.get(proc.url, timeout=5).status_code == 200
        with socket.create_connection(("127.0.0.1", proc.irc_port), timeout=5):
            pass  # the IRC gateway listens on its new port
    finally:
        proc.stop()
        busy.close()
        busy_irc.close()
        redis = PrefixedRedis(prefix)
        try:
            redis.delete_all()
        finally:
            redis.close()


def test_free_ports_are_below_the_ephemeral_range_and_not_repeated():
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    if low - 10000 >= 1000:
        assert all(10000 <= port < low for port in ports), ports


def test_a_private_redis_whose_port_was_taken_starts_on_another(tmp_path):
    redis_server = PrivateRedis(tmp_path)
    if not redis_server.available:
        pytest.skip("redis-server not installed")
    busy = _listening()
    redis_server.port = taken = busy.getsockname()[1]
    try:
        redis_server.start()
        assert redis_server.port != taken and redis_server._ours()
        restart_port = redis_server.port
        redis_server.stop()
        redis_server.start()  # a restart keeps its port (the server under test knows it)
        assert redis_server.port == restart_port
    finally:
        redis_server.stop()
        busy.close()
