"""The TCP listener in process (handlers/tcp.py): a real :class:`State` with the fakes of
``tests/fakes.py``, the listener on a free loopback port, clients on real sockets, packets
decoded with chio (``tests/tcp_client.py`` / ``tests/client.py``).

What the integration tests cannot reach cheaply: a client that stops reading (the output
bound), the final packets of a kick, the stop of the listener, the ping timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from handlers.tcp import TcpListener
from helpers import metrics
from services import login as login_service, session
from tests import client as C
from tests.fakes import PASSWORD, LoginRepo, World, no_errors  # noqa: F401 (fixture)
from tests.tcp_client import OLDEST, TcpClient

pytestmark = pytest.mark.usefixtures("no_errors")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make(env: dict[str, str] | None = None):
    world = World({"PEP_SERVER_TCP_PORT": str(free_port()), "PEP_SERVER_HOST": "127.0.0.1", **(env or {})},
                  redis=True)
    repo = LoginRepo("kawata")
    world.state.repo = repo
    repo.add(1000, "Alice")
    repo.add(1001, "Bob")
    return world


async def wait(predicate, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{predicate} still false after {timeout} s")
        await asyncio.sleep(0.02)


def start_login(listener: TcpListener, name: str) -> TcpClient:
    """A TCP client that has sent its login lines as ``name`` (the reply not awaited)."""
    c = TcpClient("127.0.0.1", listener.port, OLDEST)
    c.sock.sendall(c.login_lines(name, PASSWORD))
    return c


async def client_login(listener: TcpListener, name: str) -> TcpClient:
    """A TCP client (blocking socket, read from a thread) logged in as ``name``."""
    c = start_login(listener, name)
    await asyncio.to_thread(c.wait_for, lambda p: p.id == C.LOGIN_REPLY, 10.0, False, "login reply")
    return c


@contextlib.asynccontextmanager
async def listening(env: dict[str, str] | None = None):
    """(world, listener): a started listener on a fresh :func:`make` world; at the end the
    listener is stopped (a no-op when the test stopped it) and the world's tasks drained."""
    world = make(env)
    listener = TcpListener(world.state)
    await listener.start()
    try:
        yield world, listener
    finally:
        await listener.stop()
        await world.state.drain_tasks()


def hold_user_lookups(world: World) -> asyncio.Event:
    """Every user lookup of the world's repo waits for the returned event: a login stays in
    flight until it is set."""
    repo = world.state.repo
    gate = asyncio.Event()
    lookup = repo.user_by_safe_name

    async def slow_lookup(safe_name):
        await gate.wait()
        return await lookup(safe_name)

    repo.user_by_safe_name = slow_lookup
    return gate


def run(coro):
    return asyncio.run(coro)


def test_login_and_the_session_is_an_ordinary_token():
    async def main():
        async with listening() as (world, listener):
            assert listener.running and world.state.tcp is listener and listener in world.state.chat_listeners
            c = await client_login(listener, "Alice")
            reply = [p.value for p in c.received if p.id == C.LOGIN_REPLY]
            assert reply == [1000]
            token = world.state.tokens.user(1000)
            assert token is not None and token.version == OLDEST
            assert listener.by_token[token].token is token
            # a packet queued by someone else reaches the socket without any poll
            token.enqueue(C.frame(C.NOTIFICATION, b"\x0b\x05hello"))
            await asyncio.to_thread(c.wait_for, lambda p: p.id == C.NOTIFICATION and p.value == "hello", 5.0)
            c.close()
            await wait(lambda: world.state.tokens.user(1000) is None)
            assert not listener.connections and not listener.addresses.open and listener.pending == 0

    run(main())


def test_kick_delivers_the_final_packets_then_closes():
    async def main():
        async with listening() as (world, listener):
            c = await client_login(listener, "Alice")
            token = world.state.tokens.user(1000)
            session.kick(world.state, token, "bye now")
            assert await asyncio.to_thread(c.wait_closed, 10.0)
            notices = [p.value for p in c.received if p.id == C.NOTIFICATION]
            replies = [p.value for p in c.received if p.id == C.LOGIN_REPLY]
            assert "bye now" in notices and replies[-1] == -1
            await wait(lambda: token.token not in world.state.kicked)  # nobody will poll for them
            assert not listener.connections
            c.close()

    run(main())


def test_a_client_that_stops_reading_is_closed_and_logged_out():
    async def main():
        async with listening({"PEP_LIMITS_MAX_QUEUE": "65536"}) as (world, listener):
            c = await client_login(listener, "Alice")
            other = await client_login(listener, "Bob")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            token = world.state.tokens.user(1000)
            chunk = C.frame(C.NOTIFICATION, b"\x0b\x80\x80\x01" + b"x" * 16384)
            # the world keeps sending, the client never reads: past [limits] max_queue bytes
            # waiting (the kernel's buffers first) the session ends
            for _ in range(4000):
                if token.logged_out:
                    break
                token.enqueue(chunk)
                await asyncio.sleep(0.002)
            await wait(lambda: token.logged_out)
            await wait(lambda: token not in listener.by_token)
            stream_buffers = sum(len(conn.stream._write_buffer) for conn in listener.connections)
            assert stream_buffers <= 65536 + len(chunk)
            # the other session is intact
            assert world.state.tokens.user(1001) is not None and not other.eof
            other.close()
            c.close()

    run(main())


def test_stop_tells_sessions_to_reconnect_and_logs_them_out():
    async def main():
        async with listening({"PEP_SERVER_RECONNECT_DELAY": "7"}) as (world, listener):
            c = await client_login(listener, "Alice")
            await listener.stop()
            assert await asyncio.to_thread(c.wait_closed, 10.0)
            assert [p.value for p in c.received if p.id == C.RESTART] == [7000]
            assert world.state.tokens.user(1000) is None and not listener.running
            assert listener not in world.state.chat_listeners and world.state.tcp is None
            c.close()
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", listener.port), timeout=2).recv(1)

    run(main())


def test_housekeeping_pings_a_silent_session_once_per_interval():
    async def main():
        async with listening({"PEP_SESSIONS_TIMEOUT": "40"}) as (world, listener):
            c = await client_login(listener, "Alice")
            token = world.state.tokens.user(1000)
            conn = listener.by_token[token]
            start = conn.last_frame
            listener.housekeeping(start + 5)  # a quarter of 40 s is 10 s
            assert not token.queue
            listener.housekeeping(start + 10)
            assert token.queue == [C.frame(C.PING)]
            token.drain()
            listener.housekeeping(start + 15)
            assert not token.queue
            listener.housekeeping(start + 20)
            assert token.queue == [C.frame(C.PING)]
            c.close()

    run(main())


def test_port_zero_means_off():
    async def main():
        world = World({}, redis=True)
        listener = TcpListener(world.state)
        await listener.start()
        assert not listener.running and world.state.tcp is None
        await listener.stop()

    run(main())


def test_a_client_that_leaves_during_its_login_leaves_nothing_behind():
    async def main():
        async with listening() as (world, listener):
            gate = hold_user_lookups(world)
            c = start_login(listener, "Alice")
            await wait(lambda: world.state.logins_in_flight == 1)
            c.close()
            await asyncio.sleep(0.05)
            gate.set()
            await wait(lambda: world.state.logins_in_flight == 0)
            await wait(lambda: not listener.connections)
            assert world.state.tokens.user(1000) is None
            assert not listener.by_token and not listener.addresses.open and listener.pending == 0

    run(main())


def test_a_stop_during_a_login_leaves_nothing_behind():
    async def main():
        async with listening() as (world, listener):
            gate = hold_user_lookups(world)
            c = start_login(listener, "Alice")
            await wait(lambda: world.state.logins_in_flight == 1)
            await listener.stop()
            gate.set()
            await wait(lambda: world.state.logins_in_flight == 0)
            assert await asyncio.to_thread(c.wait_closed, 10.0)
            assert world.state.tokens.user(1000) is None and not listener.connections
            c.close()

    run(main())


def test_a_session_that_ended_before_the_login_returned_closes_the_connection(monkeypatch):
    """Between the login building the session and the connection taking it, other work may run
    (a newer login of the same user, a kick): the connection is closed and forgotten."""
    real = login_service.login

    async def login_then_ended(state, body, ip, builds=login_service.HTTP_BUILDS):
        token, reply = await real(state, body, ip, builds)
        if token is not None:
            session.logout(state, token)
        return token, reply

    monkeypatch.setattr(login_service, "login", login_then_ended)

    async def main():
        async with listening() as (world, listener):
            c = start_login(listener, "Alice")
            assert await asyncio.to_thread(c.wait_closed, 10.0)
            await wait(lambda: not listener.connections)
            assert not listener.addresses.open and not listener.by_token
            c.close()

    run(main())


def test_metrics_gauges_of_the_listener():
    async def main():
        async with listening() as (world, listener):
            c = await client_login(listener, "Alice")
            metrics.update_state_gauges(world.state)
            assert metrics.TCP_CONNECTIONS._value.get() == 1 and metrics.TCP_SESSIONS._value.get() == 1
            c.close()
            await wait(lambda: not listener.connections)
            metrics.update_state_gauges(world.state)
            assert metrics.TCP_CONNECTIONS._value.get() == 0 and metrics.TCP_SESSIONS._value.get() == 0

    run(main())
