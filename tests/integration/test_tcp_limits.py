"""Bad input on the TCP listener (handlers/tcp.py; docs/security.md "The TCP listener"): garbage
logins, oversized packets, slow clients, too many connections, idle sessions. Each test checks
that the server stays up and that the other sessions (TCP and HTTP) are intact.
"""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests import client as hc
from tests.client import frame
from tests.conftest import ServerProcess, _server_env
from tests.services import free_port
from tests.tcp_client import NEWEST, OLDEST, TcpClient, tcp_server_factory  # noqa: F401 (fixture)
from tests.waiting import wait_until

PER_ADDRESS = 4
TOTAL = 6
IDLE = 4.0  # [sessions] timeout of this server, seconds


LIMITS = {
    "PEP_SERVER_CONNECTION_LIMIT_EXEMPT": "",
    "PEP_SERVER_MAX_CONNECTIONS_PER_IP": str(PER_ADDRESS),
    "PEP_SERVER_TCP_MAX_CONNECTIONS": str(TOTAL),
    "PEP_SERVER_BODY_TIMEOUT": "1",
    "PEP_SERVER_MAX_BODY": "65536",
    "PEP_LIMITS_MAX_PAYLOAD": "1024",
}


@pytest.fixture(scope="module")
def srv(tcp_server_factory):
    """Small limits; sessions never time out (the tests' clients do not answer pings)."""
    return tcp_server_factory(LIMITS)


@pytest.fixture(scope="module")
def idle_srv(tcp_server_factory):
    """The same limits and a [sessions] timeout of IDLE seconds."""
    return tcp_server_factory({**LIMITS, "PEP_SESSIONS_TIMEOUT": str(IDLE), "PEP_SESSIONS_TIMEOUT_CHECK": "0.5"})


def connect(srv, build=OLDEST, source=None) -> TcpClient:
    return TcpClient("127.0.0.1", srv.tcp_port, build, source=source)


def logged_in(srv, build=OLDEST, source=None) -> TcpClient:
    user = srv.new_user()
    c = connect(srv, build, source)
    assert c.login(user.name, user.password) == user.id
    c.user = user
    c.drain()
    return c


def answers(c: TcpClient) -> bool:
    """The session still works: a stats request for the bot (always online) is answered."""
    c.send(hc.stats_request([hc.BOT_ID]))
    c.wait_for(lambda p: p.id == hc.USER_STATS and p.value.user_id == hc.BOT_ID, timeout=10,
               description="the bot's stats")
    return True


def server_up(srv) -> bool:
    return requests.get(srv.url, timeout=5).status_code == 200


def closed_at_once(sock: socket.socket, wait: float = 5.0) -> bool:
    """The server closed ``sock`` without sending anything."""
    sock.settimeout(wait)
    try:
        return sock.recv(16) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# ---------------------------------------------------------------------------------------------
def test_garbage_login_lines_are_refused(srv):
    with logged_in(srv) as other:
        for junk in (b"\x00\xff\x10garbage\n\n\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"a\nb\nc\n"):
            c = connect(srv)
            c.send(junk)
            assert c.wait_closed(), f"{junk!r}: the connection stays open"
            assert [p.value for p in c.received if p.id == hc.LOGIN_REPLY] == [-1], (junk, c.received)
            c.close()
        # 5000 bytes without a line end: more than a login may be
        c = connect(srv)
        c.send(b"x" * 5000)
        assert c.wait_closed()
        assert [p.value for p in c.received if p.id == hc.LOGIN_REPLY] == [-1]
        c.close()
        assert answers(other) and server_up(srv)


def test_oversized_packets(srv):
    with logged_in(srv, NEWEST) as other, logged_in(srv) as c:
        # above [limits] max_payload but below [server] max_body: skipped, the session goes on
        c.send(frame(hc.C_USER_STATS_REQUEST, b"\x01" * 3000))
        assert answers(c)
        # a header announcing more than [server] max_body: the connection is closed
        c.send(frame(hc.C_PING)[:3] + (10 << 20).to_bytes(4, "little"))
        assert c.wait_closed()
        assert answers(other) and server_up(srv)


def test_slow_login_is_closed(srv):
    with logged_in(srv) as other:
        c = connect(srv)
        user = srv.new_user()
        lines = c.login_lines(user.name, user.password)
        started = time.monotonic()
        # a byte every 0.2 s: the whole login is due within [server] body_timeout (1 s)
        for byte in lines[:20]:
            try:
                c.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
            c.read(0.01)
            if c.eof:
                break
        assert c.wait_closed(), "a trickled login keeps the connection"
        assert time.monotonic() - started < 10
        assert not any(p.id == hc.LOGIN_REPLY and p.value > 0 for p in c.received)
        c.close()
        assert answers(other) and server_up(srv)


def test_trickled_packet_after_login_times_out(idle_srv):
    srv = idle_srv
    with logged_in(srv) as c:
        data = frame(hc.C_PING) * 3
        started = time.monotonic()
        closed = False
        # one byte every 0.5 s never completes a packet in time: only whole packets are activity
        for i in range(4):
            c.send(data[i:i + 1])
            time.sleep(0.5)
        for byte in data[4:]:
            c.read(0.5)
            if c.eof:
                closed = True
                break
            try:
                c.send(bytes([byte]))
            except OSError:
                closed = True
                break
        assert closed or c.wait_closed(IDLE * 3), "a session that never completes a packet is kept"
        assert time.monotonic() - started >= IDLE - 1


def test_idle_session_is_pinged_then_timed_out(idle_srv):
    srv = idle_srv
    with logged_in(srv) as c:
        c.wait_for(lambda p: p.id == hc.PING, timeout=IDLE * 2, description="a ping from the server")
        assert c.wait_closed(IDLE * 4), "an idle session keeps its connection"
        # the session is gone for everyone: a player logging in now is not told about it
        modern = srv.login(srv.new_user(), drain=False)
        online = [p.value.user_id for p in modern.login_result.packets if p.id == hc.USER_PRESENCE]
        assert modern.user_id in online and c.user_id not in online
        modern.close()


def test_a_session_that_answers_pings_stays(idle_srv):
    srv = idle_srv
    with logged_in(srv) as c:
        deadline = time.monotonic() + IDLE * 2
        while time.monotonic() < deadline:
            c.read(0.2)
            for p in [p for p in c.inbox if p.id == hc.PING]:
                c.inbox.remove(p)
                c.send(hc.ping())  # the client's answer to 8 is 4
        assert not c.eof and answers(c)


def test_too_many_connections(srv):
    held: list[TcpClient] = []
    try:
        for _ in range(PER_ADDRESS):
            held.append(logged_in(srv))
        # one address: the next connection is closed at once
        extra = socket.create_connection(("127.0.0.1", srv.tcp_port), timeout=5)
        assert closed_at_once(extra), "a connection past [server] max_connections_per_ip was served"
        extra.close()
        # other addresses, up to the total
        for i in range(TOTAL - PER_ADDRESS):
            held.append(logged_in(srv, source=f"127.0.0.{2 + i}"))
        extra = socket.create_connection(("127.0.0.1", srv.tcp_port), timeout=5,
                                         source_address=("127.0.0.9", 0))
        assert closed_at_once(extra), "a connection past [server] tcp_max_connections was served"
        extra.close()
        # everyone already in is intact, and a place that frees up can be taken again
        for c in held:
            assert answers(c)
        held.pop(0).close()

        def fresh_login():
            try:
                held.append(logged_in(srv))
                return True
            except (AssertionError, OSError):
                return False

        wait_until(fresh_login, timeout=15, interval=0.3, what="a login after a place freed up")
        assert server_up(srv)
    finally:
        for c in held:
            c.close()


def test_failed_logins_are_limited_per_address_as_over_http(srv):
    """The login limits of [limits] (services/login.py) apply to TCP logins: past
    login_failures_ip failures from one address even the right password is refused, while
    other addresses log in."""
    user = srv.new_user()
    address = "127.0.0.50"
    limit = 20  # [limits] login_failures_ip
    for _ in range(limit):
        c = connect(srv, source=address)
        assert c.login(user.name, "wrong") == -1
        c.close()
    with connect(srv, source=address) as c:
        assert c.login(user.name, user.password) == -1
        assert any(p.id == hc.NOTIFICATION and "failed login" in p.value for p in c.received), c.received
    with logged_in(srv, source="127.0.0.51") as other:
        assert answers(other) and server_up(srv)


def test_a_busy_tcp_port_leaves_the_server_running_without_it(_test_world, tmp_path):
    """A TCP port that cannot be bound is an ERROR in the log, not a failed start (like the IRC
    gateway); the test harness then retries on another port (tests/conftest.py)."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", free_port()))
    busy.listen()
    taken = busy.getsockname()[1]
    w = _test_world
    env = _server_env(w["db_name"], f"{w['prefix']}busy{taken}:", free_port(), {"PEP_SERVER_TCP_PORT": str(taken)})
    proc = ServerProcess(env, tmp_path / "server.log")
    proc.PORT_RETRIES = 0
    try:
        proc.start()
        assert "TCP listener: cannot listen on" in proc.log_text()
        assert requests.get(proc.url, timeout=5).status_code == 200
    finally:
        proc.stop()
    retried = ServerProcess(dict(env, PEP_SERVER_PORT=str(free_port())), tmp_path / "server2.log")
    try:
        retried.start()
        port = int(retried.env["PEP_SERVER_TCP_PORT"])
        assert port != taken
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        retried.stop()
        busy.close()
