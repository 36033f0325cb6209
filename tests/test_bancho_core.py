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
from handlers.bancho import RECONNECT_REPLY, UNKNOWN_TOKEN_NOTICE, BanchoServer, client_ip, process_frames
from services import commands, session  # noqa: F401 (commands: the bot answers, as in pep.py)
from tests import client as C
from tests.fakes import LoginRepo, PASSWORD, World, messages, received, no_errors  # noqa: F401 (fixture)

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
