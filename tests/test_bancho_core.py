"""The Bancho endpoint in-process (handlers/main.py; docs/architecture.md "The path of a poll"):
frame processing through ``process_frames`` and polls through the real Tornado application
served on a loopback port, on a real :class:`State` with in-memory fakes (polls never touch
MySQL or Redis). Replies are decoded by chio.

These are the tests ``scripts/mutation.sh`` runs against the mutants of ``handlers/main.py``
(docs/testing.md).
"""

from __future__ import annotations

import pytest

import asyncio
import logging
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from handlers.app import make_app
from helpers import codec
from handlers.bancho import RECONNECT_REPLY, UNKNOWN_TOKEN_NOTICE, BanchoServer, client_ip, process_frames
from services import commands, session  # noqa: F401 (commands: the bot answers, as in pep.py)
from tests import client as C
from tests.fakes import NoOpHooks, LoginRepo, PASSWORD, World, messages, received, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")


def test_frames_run_in_order_and_are_counted():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    body = C.public_message("#osu", "one") + C.public_message("#osu", "two") + C.ping()
    assert process_frames(world.state, a, body) == 3
    assert [m.content for m in messages(b)] == ["one", "two"]


def test_unknown_ids_skipped_and_not_counted(caplog):
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    with caplog.at_level(logging.DEBUG, logger="pep.bancho"):
        handled = process_frames(world.state, a, C.frame(9999, b"x") + C.public_message("#osu", "after"))
    assert handled == 1 and [m.content for m in messages(b)] == ["after"]
    assert f"poll user={a.user_id}: unknown packet 9999 (1 bytes)" in [r.getMessage() for r in caplog.records]


def test_malformed_payload_logged_and_next_frame_runs(caplog):
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    with caplog.at_level(logging.INFO, logger="pep.bancho"):
        handled = process_frames(world.state, a, C.frame(C.C_PUBLIC_MESSAGE, b"\x0b\x7f") + C.public_message("#osu", "ok"))
    assert handled == 2 and [m.content for m in messages(b)] == ["ok"]
    assert f"poll user={a.user_id}: malformed packet 1: string length 127 exceeds the remaining 0 bytes" in [
        r.getMessage() for r in caplog.records]


def test_restricted_user_only_allowed_packets(caplog):
    world = World()
    r, b = world.user("Rex", restricted=True), world.user("Bob")
    with caplog.at_level(logging.DEBUG, logger="pep.bancho"):
        handled = process_frames(world.state, r, C.public_message("#osu", "hi") + C.private_message("Bob", "psst")
                                 + C.channel_join("#announce") + C.stats_request([b.user_id]))
    assert f"poll user={r.user_id}: packet 25 refused (restricted)" in [x.getMessage() for x in caplog.records]
    assert handled == 2  # channel join and the stats request
    assert messages(b) == []
    assert "#announce" in r.channels


def test_nothing_runs_after_a_logout_frame():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    a.login_time -= 600
    handled = process_frames(world.state, a, C.logout() + C.public_message("#osu", "ghost"))
    assert handled == 1 and a.logged_out
    assert "ghost" not in [m.content for m in messages(b)]


def test_dropped_bytes_are_logged_and_limits_apply(caplog):
    world = World({"PEP_LIMITS_MAX_FRAMES": "16", "PEP_LIMITS_MAX_PAYLOAD": "1024", "PEP_CHAT_SPAM_LIMIT": "100"})
    a, b = world.user("Alice"), world.user("Bob")
    body = b"".join(C.public_message("#osu", f"m{i}") for i in range(17)) + b"\x01\x02"
    with caplog.at_level(logging.INFO, logger="pep.bancho"):
        assert process_frames(world.state, a, body) == 16
    assert len(messages(b)) == 16
    assert f"poll user={a.user_id}: dropped 3 malformed/truncated byte(s) or frame(s)" in [
        r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pep.bancho"):
        assert process_frames(world.state, a, C.public_message("#osu", "x" * 1100)) == 0
        assert process_frames(world.state, a, C.ping()) == 1
    assert [r.getMessage() for r in caplog.records].count(
        f"poll user={a.user_id}: dropped 1 malformed/truncated byte(s) or frame(s)") == 1


# ------------------------------------------------------------------------------ HTTP
class Server:
    """The real application on a loopback port, driven with Tornado's HTTP client."""

    def __init__(self, world: World) -> None:
        self.world = world
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.http = tornado.httpserver.HTTPServer(BanchoServer(world.state, make_app(world.state)))
        self.http.add_sockets(sockets)
        self.client = tornado.httpclient.AsyncHTTPClient()

    async def post(self, body: bytes = b"", token: str | None = None, headers=None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["osu-token"] = token
        return await self.client.fetch(f"http://127.0.0.1:{self.port}/", method="POST", body=body,
                                       headers=all_headers, decompress_response=True)

    async def get(self, path: str = "/"):
        return await self.client.fetch(f"http://127.0.0.1:{self.port}{path}")

    async def metric(self, name: str, label: str) -> float:
        """A value of the /metrics page, e.g. ``metric("pep_requests_total", 'kind="poll"')``."""
        text = (await self.get("/metrics")).body.decode()
        for line in text.splitlines():
            if line.startswith(f"{name}{{{label}}} " if label else f"{name} "):
                return float(line.split()[-1])
        return 0.0

    async def connections_closed(self) -> None:
        """Until the server has seen every client connection close (5 s at most)."""
        for _ in range(500):
            if not self.http._connections:
                break
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.http.stop()


def serve(world: World, scenario) -> None:
    async def main():
        server = Server(world)
        try:
            await scenario(server)
        finally:
            server.close()

    asyncio.run(main())


def test_poll_runs_frames_and_returns_the_queue():
    world = World({"PEP_SERVER_GZIP": "0"})
    a, b = world.user("Alice"), world.user("Bob")

    async def scenario(server):
        reply = await server.post(C.public_message("#osu", "hi"), a.token)
        assert reply.code == 200 and reply.headers["cho-protocol"] == "19"
        assert reply.body == b""
        reply = await server.post(b"", b.token)
        assert [m.content for m in C.values(C.decode_packets(reply.body), C.SEND_MESSAGE)] == ["hi"]
        before = a.last_seen
        await asyncio.sleep(0.01)
        await server.post(b"", a.token)
        assert a.last_seen > before

    serve(world, scenario)


def test_unknown_token_gets_the_reconnect_reply():
    world = World()

    async def scenario(server):
        reply = await server.post(C.ping(), "no-such-token")
        packets = C.decode_packets(reply.body)
        assert reply.body == RECONNECT_REPLY
        assert C.values(packets, C.NOTIFICATION) == [UNKNOWN_TOKEN_NOTICE] and C.values(packets, C.RESTART) == [0]

    serve(world, scenario)


def test_kicked_token_gets_its_final_packets_once():
    world = World()
    a = world.user("Alice")

    async def scenario(server):
        session.kick(world.state, a, "bye")
        reply = await server.post(b"", a.token)
        packets = C.decode_packets(reply.body)
        assert C.values(packets, C.NOTIFICATION) == ["bye"] and C.values(packets, C.LOGIN_REPLY) == [-1]
        assert a.token not in world.state.kicked
        again = await server.post(b"", a.token)
        assert again.body == RECONNECT_REPLY

    serve(world, scenario)


def test_overflowed_token_is_logged_out():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    a.overflowed = True

    async def scenario(server):
        reply = await server.post(C.public_message("#osu", "lost"), a.token)
        assert reply.body == RECONNECT_REPLY and a.logged_out
        assert messages(b) == []

    serve(world, scenario)


def test_unread_broadcasts_past_the_cap_end_the_session_at_its_poll():
    """The world's broadcasts a session has not read (objects/stream.py BroadcastLog) come
    before what its frames queue, and count against its queue cap when it polls: past it, the
    poll is the overflow's reconnect and its frames do not run."""
    world = World({"PEP_SERVER_GZIP": "0"})
    a, b = world.user("Alice", max_queue=200), world.user("Bob", max_queue=200)
    world.state.tokens.broadcast(codec.notification("first"))

    async def scenario(server):
        reply = await server.post(C.stats_request([a.user_id]), b.token)
        packets = C.decode_packets(reply.body)
        assert [p.id for p in packets] == [C.NOTIFICATION, C.USER_STATS]
        world.state.tokens.broadcast(codec.notification("x" * 300))
        reply = await server.post(C.public_message("#osu", "lost"), a.token)
        assert reply.body == RECONNECT_REPLY and a.logged_out
        assert messages(b) == []

    serve(world, scenario)


def test_login_over_http():
    world = World({"PEP_SERVER_GZIP": "0"})
    repo = LoginRepo()
    world.state.repo = repo
    repo.add(1000, "Alice")

    async def scenario(server):
        before = await server.metric("pep_requests_total", 'kind="login"')
        reply = await server.post(C.login_body("Alice", PASSWORD), headers={"X-Real-IP": "10.1.2.3"})
        token = world.state.tokens.user(1000)
        assert token is not None and reply.headers["cho-token"] == token.token and token.ip == "10.1.2.3"
        packets = C.decode_packets(reply.body)
        assert C.values(packets, C.LOGIN_REPLY) == [1000] and C.values(packets, C.USER_PRESENCE)
        failed = await server.post(C.login_body("Alice", "wrong"))
        assert failed.headers["cho-token"] == "login-failed"
        assert C.values(C.decode_packets(failed.body), C.LOGIN_REPLY) == [-1]
        assert await server.metric("pep_requests_total", 'kind="login"') == before + 2

    serve(world, scenario)


def test_kicked_during_its_own_poll():
    """An admin who kicks himself gets the final packets in the answer to that very poll."""
    world = World()
    commands.install(world.state)
    admin = world.user("Boss", privileges=3 | 524288)  # ADMIN_KICK_USERS

    async def scenario(server):
        reply = await server.post(C.private_message(world.bot.username, "!kick Boss"), admin.token)
        packets = C.decode_packets(reply.body)
        assert C.values(packets, C.LOGIN_REPLY) == [-1] and admin.kicked
        assert admin.token not in world.state.kicked  # delivered: not kept for a later poll
        again = await server.post(b"", admin.token)
        assert again.body == RECONNECT_REPLY

    serve(world, scenario)


def test_poll_durations_are_observed():
    world = World()
    a = world.user("Alice")

    async def scenario(server):
        count = await server.metric("pep_poll_seconds_count", "")
        total = await server.metric("pep_poll_seconds_sum", "")
        await server.post(C.ping(), a.token)
        assert await server.metric("pep_poll_seconds_count", "") == count + 1
        assert 0 <= await server.metric("pep_poll_seconds_sum", "") - total < 5

    serve(world, scenario)


def test_status_page():
    world = World()
    world.user("Alice")
    world.state.started -= 100

    async def scenario(server):
        before = await server.metric("pep_requests_total", 'kind="status"')
        reply = await server.get()
        text = reply.body.decode()
        assert reply.code == 200 and text.startswith("<!doctype html><html><head><title>pep.py</title></head><body>")
        assert "Online users: 2" in text and ("Uptime: 100 s" in text or "Uptime: 101 s" in text)
        assert await server.metric("pep_requests_total", 'kind="status"') == before + 1

    serve(world, scenario)


def test_requests_and_packets_are_counted():
    world = World()
    a = world.user("Alice")

    async def scenario(server):
        async def counts():
            return [await server.metric("pep_requests_total", 'kind="poll"'),
                    await server.metric("pep_requests_total", 'kind="unknown_token"'),
                    await server.metric("pep_packets_total", 'packet="1"'),
                    await server.metric("pep_packets_total", 'packet="unknown"')]

        before = await counts()
        await server.post(C.public_message("#osu", "x") + C.frame(9999), a.token)
        await server.post(b"", "nobody")
        assert await counts() == [before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1]

    serve(world, scenario)


def test_client_ip_from_the_proxy_header():
    import logging as logging_module

    from tornado.httputil import HTTPHeaders

    world = World()

    def ip(headers, remote="9.9.9.9", state=None):
        return client_ip(state or world.state, HTTPHeaders(headers), remote)

    assert ip({"X-Real-IP": "1.2.3.4"}) == "1.2.3.4"
    assert ip({"X-Real-IP": "5.5.5.5, 1.2.3.4"}) == "1.2.3.4"
    assert ip({"X-Real-IP": "not an ip"}) == "9.9.9.9"
    assert ip({}) == "9.9.9.9"
    assert ip({"X-Real-IP": "::1"}) == "::1"
    assert ip({}, remote=None) == ""
    records = []
    handler = logging_module.Handler(logging_module.DEBUG)
    handler.emit = records.append
    logger = logging_module.getLogger("pep.bancho")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging_module.DEBUG)
    try:
        ip({})  # no header: nothing to complain about
        assert records == []
        ip({"X-Real-IP": "garbage"})
        assert [r.getMessage() for r in records] == ["ignoring malformed X-Real-IP header"]
        no_header = World({"PEP_SERVER_IP_HEADER": ""}).state
        records.clear()
        assert ip({"X-Real-IP": "5.6.7.8"}, state=no_header) == "9.9.9.9"  # no proxy header configured
        assert records == []
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# ------------------------------------------------------------------------------ raw HTTP
# Tornado's HTTP client always sends "Connection: close" and hides the header block; these
# tests speak HTTP over a plain socket to see the exact reply.
import contextlib  # noqa: E402
import email.utils  # noqa: E402
import gzip  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

from handlers.bancho import GZIP_MIN_LENGTH, OTHER_BODY, UNKNOWN_TOKEN_BODY, body_limit, login  # noqa: E402
from objects.token import Token  # noqa: E402
from services import login as login_service  # noqa: E402


class Raw:
    """One client connection to :class:`Server` (``await Raw.open(server)``, or
    ``async with Raw.to(server) as conn``)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    async def request(self, body=b"", token=None, version="HTTP/1.1", headers=(), path="/", method="POST"):
        """Send ``POST /`` (or ``method path``) and return (status line, [header lines], body)."""
        lines = [f"{method} {path} {version}", "Host: localhost", f"Content-Length: {len(body)}"]
        if token is not None:
            lines.append(f"osu-token: {token}")
        lines += [f"{k}: {v}" for k, v in headers]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
        length = int(next(line.split(": ", 1)[1] for line in head if line.lower().startswith("content-length:")))
        return head[0], head[1:], await self.reader.readexactly(length)

    def close(self):
        self.writer.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def to(cls, server):
        """``async with Raw.to(server) as conn``: a connection, closed at the end."""
        conn = await cls.open(server)
        try:
            yield conn
        finally:
            conn.close()


def expected_head(world, date_line, extra=()):
    """The fixed header lines of a ``POST /`` reply (what tornado.web sent before)."""
    lines = [f"Server: TornadoServer/{tornado.version}", "Content-Type: text/html; charset=UTF-8", "cho-protocol: 19"]
    if world.state.cfg.server.gzip:
        lines.append("Vary: Accept-Encoding")
    return lines + [date_line, *extra]


def check_date(line, before, after):
    """``Date: <RFC 1123 date in GMT>`` of a second between ``before`` and ``after``."""
    assert line.startswith("Date: ") and line.endswith(" GMT"), line
    when = email.utils.parsedate_to_datetime(line[len("Date: "):]).timestamp()
    assert int(before) <= when <= after, (line, before, after)


def test_reply_head_and_keep_alive():
    world = World()
    a = world.user("Alice")

    async def scenario(server):
        async with Raw.to(server) as conn:
            a.enqueue(b"\x01\x02\x03")
            before = time.time()
            status, head, body = await conn.request(b"", a.token)
            after = time.time()
            assert status == "HTTP/1.1 200 OK" and body == b"\x01\x02\x03"
            check_date(head[-2], before, after)
            assert head == expected_head(world, head[-2], ["Content-Length: 3"])
            # HTTP/1.1 without "Connection: close": the connection stays open for the next poll
            status, head, body = await conn.request(b"", a.token)
            assert status == "HTTP/1.1 200 OK" and body == b"" and head[-1] == "Content-Length: 0"
            assert not any(line.lower().startswith("connection:") for line in head)
            status, head, _ = await conn.request(b"", a.token, headers=[("Connection", "Close")])
            assert head[-2:] == ["Connection: close", "Content-Length: 0"]
        async with Raw.to(server) as conn:  # HTTP/1.0 keeps the connection only when asked, and is told so
            status, head, _ = await conn.request(b"", a.token, "HTTP/1.0", [("Connection", "keep-Alive")])
            assert head[-2:] == ["Connection: Keep-Alive", "Content-Length: 0"]
            status, head, _ = await conn.request(b"", a.token, "HTTP/1.0", [("Connection", "keep-alive")])
            assert head[-2:] == ["Connection: Keep-Alive", "Content-Length: 0"]
        async with Raw.to(server) as conn:
            status, head, _ = await conn.request(b"", a.token, "HTTP/1.0")
            assert not any(line.lower().startswith("connection:") for line in head)

    serve(world, scenario)


def test_gzip_from_the_minimum_length_when_accepted():
    world = World({"PEP_SERVER_GZIP_LEVEL": "9"})
    a = world.user("Alice")
    big = (bytes(range(256)) * 8)[:GZIP_MIN_LENGTH]  # GZIP_MIN_LENGTH bytes
    assert len(big) == GZIP_MIN_LENGTH == 1200

    async def scenario(server):
        async with Raw.to(server) as conn:
            a.enqueue(big[:-1])
            _, head, body = await conn.request(b"", a.token, headers=[("Accept-Encoding", "gzip, deflate")])
            assert body == big[:-1] and "Content-Encoding: gzip" not in head  # one byte short
            a.enqueue(big)
            _, head, body = await conn.request(b"", a.token, headers=[("Accept-Encoding", "gzip, deflate")])
            assert body == zlib.compress(big, 9, 31) and gzip.decompress(body) == big
            assert head[-2:] == ["Content-Encoding: gzip", f"Content-Length: {len(body)}"]
            a.enqueue(big)
            _, head, body = await conn.request(b"", a.token)  # not accepted
            assert body == big and "Content-Encoding: gzip" not in head
            a.enqueue(big)
            _, head, body = await conn.request(b"", a.token, headers=[("Accept-Encoding", "identity")])
            assert body == big
            a.enqueue(big)
            _, head, body = await conn.request(b"", a.token, headers=[("Accept-Encoding", "gzip"), ("Connection", "close")])
            assert gzip.decompress(body) == big
            assert head[-3:] == ["Connection: close", "Content-Encoding: gzip", f"Content-Length: {len(body)}"]

    serve(world, scenario)


def test_no_gzip_when_turned_off():
    world = World({"PEP_SERVER_GZIP": "0"})
    a = world.user("Alice")

    async def scenario(server):
        async with Raw.to(server) as conn:
            a.enqueue(b"z" * 4000)
            before = time.time()
            _, head, body = await conn.request(b"", a.token, headers=[("Accept-Encoding", "gzip")])
            assert body == b"z" * 4000
            check_date(head[-2], before, time.time())
            assert head == expected_head(world, head[-2], ["Content-Length: 4000"])  # no Vary either

    serve(world, scenario)


class SlowDrain(Token):
    """A session whose queue takes 50 ms to read (the request then lasts at least that long)."""

    def drain(self):
        time.sleep(0.05)
        return super().drain()


class BrokenDrain(Token):
    """A session whose queue cannot be read: the poll fails with a bug, not a client error."""

    def drain(self):
        raise RuntimeError("queue broken")


def world_with(session: Token) -> World:
    """A world with ``session`` (a :class:`Token` of a test subclass) online."""
    world = World()
    world.state.tokens.add(session)
    return world


def access_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tornado.access"]


async def timed_poll(conn: Raw, token: str, caplog) -> float:
    """One poll with the access log at DEBUG; how long it took (ms) as the client saw it."""
    with caplog.at_level(logging.DEBUG, logger="tornado.access"):
        started = time.perf_counter()
        await conn.request(b"", token)
        return 1000.0 * (time.perf_counter() - started)


def logged_ms(caplog, status: int, level: int) -> float:
    """The duration (ms) of the one access-log line, ``<status> POST / (127.0.0.1) <ms>ms`` at ``level``."""
    records = access_log(caplog)
    assert len(records) == 1 and records[0].levelno == level
    return float(re.fullmatch(rf"{status} POST / \(127\.0\.0\.1\) (\d+\.\d\d)ms", records[0].getMessage()).group(1))


def test_access_log_of_polls(caplog):
    slow = SlowDrain(4001, "Slow", "slow", 3)

    async def scenario(server):
        async with Raw.to(server) as conn:
            with caplog.at_level(logging.INFO, logger="tornado.access"):
                await conn.request(b"", slow.token)  # not logged below DEBUG
            assert access_log(caplog) == []
            took = await timed_poll(conn, slow.token, caplog)
        assert 50.0 <= logged_ms(caplog, 200, logging.DEBUG) <= took + 0.01

    serve(world_with(slow), scenario)


def test_a_failing_poll_gets_500(caplog, no_errors):
    broken = BrokenDrain(4002, "Broken", "broken", 3)

    async def scenario(server):
        async with Raw.to(server) as conn:
            with caplog.at_level(logging.ERROR, logger="tornado.access"):
                status, head, body = await conn.request(b"", broken.token)
            assert status == "HTTP/1.1 500 Internal Server Error" and head == ["Content-Length: 0"] and body == b""
            async with Raw.to(server) as conn2:
                status, head, _ = await conn2.request(b"", broken.token, headers=[("Connection", "close")])
                assert status == "HTTP/1.1 500 Internal Server Error"
                assert head == ["Content-Length: 0", "Connection: close"]

    serve(world_with(broken), scenario)
    access = [(r.levelno, r.getMessage()) for r in access_log(caplog)]
    assert access[0] == (logging.ERROR, "500 POST / (127.0.0.1) 0.00ms")  # not timed below DEBUG
    assert [r.getMessage() for r in no_errors if r.name == "pep.bancho"] == ["poll failed", "poll failed"]
    assert all(r.exc_info[1].args == ("queue broken",) for r in no_errors if r.name == "pep.bancho")
    no_errors.clear()


def test_a_failing_poll_is_timed_at_debug(caplog, no_errors):
    broken = BrokenDrain(4003, "Broken", "broken", 3)

    async def scenario(server):
        async with Raw.to(server) as conn:
            took = await timed_poll(conn, broken.token, caplog)
        assert 0.0 < logged_ms(caplog, 500, logging.ERROR) <= took + 0.01

    serve(world_with(broken), scenario)
    no_errors.clear()


def test_body_limits_per_request_kind():
    from tornado.httputil import HTTPHeaders, RequestStartLine

    world = World({"PEP_SERVER_MAX_BODY": "12345"})
    a = world.user("Alice")
    limit = body_limit(world.state)

    def of(method, path, headers=None):
        return limit(RequestStartLine(method, path, "HTTP/1.1"), HTTPHeaders(headers or {}))

    assert of("POST", "/", {"osu-token": a.token}) == 12345
    assert of("POST", "/?x=1", {"osu-token": a.token}) == 12345
    assert of("POST", "/", {"osu-token": "gone"}) == UNKNOWN_TOKEN_BODY
    assert of("POST", "/") == login_service.MAX_BODY
    assert of("POST", "/?a?b") == login_service.MAX_BODY
    assert of("GET", "/", {"osu-token": a.token}) == OTHER_BODY
    assert of("POST", "/api/v1/ciTrigger") == OTHER_BODY
    assert of("POST", "/x?/") == OTHER_BODY
    assert of("post", "/") == OTHER_BODY


def test_presence_request_all_is_answered_once_per_poll():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    for _ in range(2):  # each poll answers once, however many frames ask
        assert process_frames(world.state, a, C.presence_request_all() + C.presence_request_all()) == 2
        ids = [p.user_id for p in C.values(received(a), C.USER_PRESENCE)]
        assert sorted(ids) == sorted([world.bot.user_id, a.user_id, b.user_id])


def test_failing_handler_is_logged_and_the_next_frame_runs(no_errors):
    world = World()

    class Unreachable(Token):
        def enqueue(self, data):
            raise RuntimeError("queue gone")

    u = Unreachable(4004, "Gone", "gone", 3)
    world.state.tokens.add(u)
    b = world.user("Bob")
    world.state.channels.get("#osu").members.add(u)
    u.channels.add("#osu")
    body = C.presence_request_all() + C.public_message("#osu", "still here")
    assert process_frames(world.state, u, body) == 2
    assert [m.content for m in messages(b)] == ["still here"]
    assert [r.getMessage() for r in no_errors] == ["poll user=4004: packet 98 handler failed"]
    assert no_errors[0].exc_info[1].args == ("queue gone",)
    no_errors.clear()


def test_logins_in_flight_are_counted():
    world = World()
    repo = GatedLoginRepo()
    world.state.repo = repo
    repo.add(1000, "Alice")
    repo.add(1001, "Bob")

    async def scenario():
        task = asyncio.ensure_future(login(world.state, C.login_body("Alice", PASSWORD), "10.0.0.9"))
        await repo.reached.wait()
        assert world.state.logins_in_flight == 1
        other = asyncio.ensure_future(login(world.state, C.login_body("Bob", PASSWORD), "10.0.0.8"))
        await asyncio.sleep(0)
        assert world.state.logins_in_flight == 2
        repo.go.set()
        token_string, reply = await task
        await other
        assert world.state.logins_in_flight == 0
        assert token_string == world.state.tokens.user(1000).token
        failed, _ = await login(world.state, b"garbage", "10.0.0.9")
        assert failed == "login-failed" and world.state.logins_in_flight == 0
        await world.state.drain_tasks()

    asyncio.run(scenario())


class GatedLoginRepo(LoginRepo):
    """A login repository whose user lookup waits until ``go`` is set (``reached`` is set when a
    login gets there)."""

    def __init__(self):
        super().__init__()
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def user_by_safe_name(self, safe_name):
        self.reached.set()
        await self.go.wait()
        return await super().user_by_safe_name(safe_name)


def test_login_over_http_from_the_peer_address_and_a_client_that_left(caplog, no_errors):
    world = World()
    repo = GatedLoginRepo()
    world.state.repo = repo
    repo.add(1000, "Alice")
    repo.add(1001, "Bob")

    async def scenario(server):
        repo.go.set()
        async with Raw.to(server) as conn:
            status, head, body = await conn.request(C.login_body("Alice", PASSWORD))
        token = world.state.tokens.user(1000)
        assert token.ip == "127.0.0.1" and f"cho-token: {token.token}" in head
        # a client that leaves while its login runs: the login completes, nothing is written
        repo.go.clear()
        repo.reached.clear()
        conn = await Raw.open(server)
        body = C.login_body("Bob", PASSWORD)
        conn.writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await conn.writer.drain()
        await repo.reached.wait()
        conn.close()
        await server.connections_closed()
        repo.go.set()
        await world.state.drain_tasks()
        assert world.state.tokens.user(1001) is not None

    with caplog.at_level(logging.DEBUG, logger="tornado.access"):
        serve(world, scenario)
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert len(lines) == 1 and lines[0].startswith("200 POST / ")  # Alice's login only


def test_bodies_in_several_chunks_and_query_strings():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")

    async def scenario(server):
        async with Raw.to(server) as conn:
            first, second = C.public_message("#osu", "one"), C.public_message("#osu", "two")
            # a body that arrives in two pieces: Tornado hands each piece it reads to
            # data_received (chunks of a chunked body, coalesced while more data is waiting)
            conn.writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nosu-token: %s\r\n\r\n"
                              % a.token.encode())
            for part in (first, second):
                conn.writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await conn.writer.drain()
                await asyncio.sleep(0.05)  # let the server read this piece on its own
            conn.writer.write(b"0\r\n\r\n")
            await conn.writer.drain()
            head = await conn.reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert [m.content for m in messages(b)] == ["one", "two"]
            # a query string is still the Bancho endpoint, with its own reply head
            a.enqueue(b"\x07")
            before = time.time()
            status, head, body = await conn.request(b"", a.token, path="/?osu=1")
            check_date(head[-2], before, time.time())
            assert status == "HTTP/1.1 200 OK" and body == b"\x07"
            assert head == expected_head(world, head[-2], ["Content-Length: 1"])

    serve(world, scenario)


def test_other_requests_go_to_the_application_with_their_body(caplog):
    world = World()

    async def scenario(server):
        async with Raw.to(server) as conn:
            with caplog.at_level(logging.ERROR):
                status, head, body = await conn.request(b"some body", path="/no/such/page")
            assert status == "HTTP/1.1 404 Not Found"
            status, _, body = await conn.request(b"", method="GET", path="/")
            assert status == "HTTP/1.1 200 OK" and body.startswith(b"<!doctype html>")

    serve(world, scenario)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_client_leaving_in_the_middle_of_its_body(caplog):
    world = World()
    a, b = world.user("Alice"), world.user("Bob")

    async def scenario(server):
        for path in ("/", "/no/such/page"):
            conn = await Raw.open(server)
            frame = C.public_message("#osu", "half")
            conn.writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nosu-token: %s\r\nContent-Length: %d\r\n\r\n%s"
                              % (path.encode(), a.token.encode(), len(frame) + 10, frame))
            await conn.writer.drain()
            await asyncio.sleep(0.05)
            conn.close()
            await server.connections_closed()

    with caplog.at_level(logging.ERROR):
        serve(world, scenario)
    assert messages(b) == []  # an incomplete body is never processed
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ------------------------------------------------------------------------------ login replies, cluster
def test_login_reply_head_and_gzip():
    world = World({"PEP_SERVER_GZIP_LEVEL": "9"})
    repo = LoginRepo()
    world.state.repo = repo
    repo.add(1000, "Alice")
    for i in range(40):  # enough presences for a reply past GZIP_MIN_LENGTH
        world.user(f"player{i}")

    async def scenario(server):
        async with Raw.to(server) as conn:
            before = time.time()
            status, head, plain = await conn.request(C.login_body("Alice", PASSWORD))
            token = world.state.tokens.user(1000)
            check_date(head[-3], before, time.time())
            assert status == "HTTP/1.1 200 OK" and len(plain) >= GZIP_MIN_LENGTH
            assert head == expected_head(world, head[-3], [f"cho-token: {token.token}", f"Content-Length: {len(plain)}"])
            status, head, body = await conn.request(C.login_body("Alice", PASSWORD),
                                                    headers=[("Accept-Encoding", "gzip"), ("Connection", "close")])
            token = world.state.tokens.user(1000)
            assert head[-4:] == [f"cho-token: {token.token}", "Connection: close", "Content-Encoding: gzip",
                                 f"Content-Length: {len(body)}"]
            unzipped = gzip.decompress(body)
            assert len(unzipped) == len(plain) and C.values(C.decode_packets(unzipped), C.LOGIN_REPLY) == [1000]
            assert len(body) < len(plain)

    serve(world, scenario)


def test_small_login_replies_and_gzip_off_are_not_compressed():
    for env, players in (({}, 0), ({"PEP_SERVER_GZIP": "0"}, 40)):
        world = World(env)
        repo = LoginRepo()
        world.state.repo = repo
        repo.add(1000, "Alice")
        for i in range(players):
            world.user(f"player{i}")

        async def scenario(server):
            async with Raw.to(server) as conn:
                _, head, body = await conn.request(C.login_body("Alice", "wrong"), headers=[("Accept-Encoding", "gzip")])
                assert "Content-Encoding: gzip" not in head and len(body) < GZIP_MIN_LENGTH
                assert C.values(C.decode_packets(body), C.LOGIN_REPLY) == [-1]
                _, head, body = await conn.request(C.login_body("Alice", PASSWORD), headers=[("Accept-Encoding", "gzip")])
                assert "Content-Encoding: gzip" not in head
                assert C.values(C.decode_packets(body), C.LOGIN_REPLY) == [1000]

        serve(world, scenario)


class FakeCluster(NoOpHooks):
    """The parts of services.cluster.Cluster the endpoint uses: which node owns a token, and
    which packets go to another node (recorded in ``routed_calls``)."""

    def __init__(self, owners=None, routed=(), takes=True):
        self.owners = owners or {}
        self.routed = frozenset(routed)
        self.takes = takes
        self.routed_calls = []

    def owner_address(self, token_string):
        return self.owners.get(token_string)

    def route(self, token, packet_id, payload):
        self.routed_calls.append((token.user_id, packet_id, payload))
        return self.takes


def test_packets_routed_to_another_node_are_counted_and_not_run():
    world = World()
    a, b = world.user("Alice"), world.user("Bob")
    world.state.cluster = FakeCluster(routed={C.C_PUBLIC_MESSAGE})
    body = C.public_message("#osu", "elsewhere") + C.frame(9999) + C.ping()
    assert process_frames(world.state, a, body) == 2
    assert messages(b) == [] and world.state.cluster.routed_calls == [(a.user_id, 1, C.public_message("#osu", "elsewhere")[7:])]
    world.state.cluster.takes = False  # not taken: it runs here
    assert process_frames(world.state, a, C.public_message("#osu", "here")) == 1
    assert [m.content for m in messages(b)] == ["here"]


def test_polls_of_another_nodes_session_are_forwarded(caplog):
    home = World()  # the node that holds the session
    a, b = home.user("Alice"), home.user("Bob")
    front = World()  # the node the client reached

    async def scenario():
        home_server, front_server = Server(home), Server(front)
        try:
            front.state.cluster = FakeCluster({a.token: f"127.0.0.1:{home_server.port}",
                                               "dead": "127.0.0.1:1"})
            home.state.cluster = FakeCluster({a.token: f"127.0.0.1:{front_server.port}"})  # never asked back
            a.enqueue(b"\x05\x06")
            async with Raw.to(front_server) as conn:
                with caplog.at_level(logging.DEBUG, logger="pep.bancho"):
                    status, head, body = await conn.request(C.public_message("#osu", "via front"), a.token,
                                                            headers=[("Connection", "close")])
            assert status == "HTTP/1.1 200 OK" and body == b"\x05\x06"
            assert head[-2:] == ["Connection: close", "Content-Length: 2"]
            assert [m.content for m in messages(b)] == ["via front"]
            assert f"poll forwarded to 127.0.0.1:{home_server.port}" in [r.getMessage() for r in caplog.records]
            # the node is gone, or does not know the token either: the reconnect reply
            for token in ("dead", "unknown"):
                async with Raw.to(front_server) as conn:
                    _, _, body = await conn.request(b"", token)
                assert body == RECONNECT_REPLY
            # a forwarded poll is never forwarded again
            async with Raw.to(home_server) as conn:
                _, _, body = await conn.request(b"", "dead", headers=[("pep-forwarded", "1")])
            assert body == RECONNECT_REPLY
            await front.state.drain_tasks()
        finally:
            home_server.close()
            front_server.close()

    asyncio.run(scenario())
