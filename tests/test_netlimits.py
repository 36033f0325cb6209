"""Unit tests of helpers/netlimits.py: address keys, the per-address counts, throttled warnings,
the open-file limit."""

from __future__ import annotations

import asyncio
import logging
import resource
import time

import tornado.netutil
import tornado.web

from helpers import netlimits


def test_address_key_groups_ipv6_by_64():
    assert netlimits.address_key("192.0.2.1") == "192.0.2.1"
    assert netlimits.address_key("2001:db8::1") == netlimits.address_key("2001:db8::ffff") == "2001:db8::/64"
    assert netlimits.address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert netlimits.address_key("not an address") == "not an address"


def test_parse_networks():
    nets = netlimits.parse_networks("127.0.0.1, ::1, 10.0.0.0/8")
    assert [str(n) for n in nets] == ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]


def test_address_counts_cap_exemptions_and_release():
    counts = netlimits.AddressCounts(2, netlimits.parse_networks("127.0.0.1, 10.0.0.0/8"))
    assert counts.limited("192.0.2.1")
    assert not counts.limited("127.0.0.1") and not counts.limited("10.1.2.3")
    assert not counts.limited("")  # no address known: never limited
    assert not counts.exempted("not an address") and counts.limited("not an address")
    assert not netlimits.AddressCounts(0).limited("192.0.2.1")  # 0 = no limit
    assert not netlimits.AddressCounts(2).exempted("127.0.0.1")  # nothing exempt
    assert not counts.at_limit("192.0.2.1")
    counts.add("192.0.2.1")
    assert not counts.at_limit("192.0.2.1") and counts.open == {"192.0.2.1": 1}
    counts.add("192.0.2.1")
    assert counts.at_limit("192.0.2.1") and not counts.at_limit("192.0.2.2")
    counts.release("192.0.2.1")
    assert counts.open == {"192.0.2.1": 1} and not counts.at_limit("192.0.2.1")
    counts.release("192.0.2.1")
    counts.release("192.0.2.9")  # never counted: stays absent
    assert counts.open == {}


def test_throttle_logs_once_per_interval_with_the_count(caplog):
    throttle = netlimits.Throttle("refused %d (last %s)", interval=3600)
    with caplog.at_level(logging.WARNING, logger="pep.net"):
        for i in range(500):
            throttle.hit(f"x{i}")
    assert [r.getMessage() for r in caplog.records] == ["refused 1 (last x0)"]
    assert throttle.total == 500 and throttle.count == 499


def test_log_throttle_filter_suppresses_repeats():
    filt = netlimits.LogThrottle(interval=3600)
    records = [logging.LogRecord("tornado.general", logging.INFO, "", 0, "Malformed HTTP message from %s", ("a",), None)
               for _ in range(100)]
    assert sum(filt.filter(r) for r in records) == 1
    other = logging.LogRecord("tornado.general", logging.INFO, "", 0, "Timeout reading body from %s", ("a",), None)
    assert filt.filter(other)


def test_raise_nofile_limit_reaches_the_hard_limit():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        soft, hard = netlimits.raise_nofile_limit()
        assert soft == hard or hard == resource.RLIM_INFINITY
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_sweep_interval_is_a_quarter_of_the_shortest_timeout_within_bounds():
    assert netlimits.sweep_interval(60.0, 10.0) == 1.0  # 2.5 s capped at SWEEP_MAX
    assert netlimits.sweep_interval(2.0, None) == 0.5
    assert netlimits.sweep_interval(0.2, 10.0) == netlimits.SWEEP_MIN  # 0.05 s raised to SWEEP_MIN
    assert netlimits.sweep_interval(None, None) == netlimits.SWEEP_MAX
    assert netlimits.sweep_interval(0, None) == netlimits.SWEEP_MAX  # 0 = no timeout


class _Stream:
    def __init__(self) -> None:
        self.is_closed = False

    def closed(self) -> bool:
        return self.is_closed

    def close(self) -> None:
        self.is_closed = True


class _Conn:
    def __init__(self) -> None:
        self.stream = _Stream()


def _server(header_timeout, body_timeout) -> netlimits.GuardedHTTPServer:
    return netlimits.GuardedHTTPServer(lambda request: None, idle_connection_timeout=header_timeout,
                                       body_timeout=body_timeout)


def test_guarded_server_takes_the_timeouts_from_tornado_and_sweeps_them_itself():
    server = _server(60.0, 10.0)
    # Tornado arms no timer per request (HTTP1Connection reads without gen.with_timeout)
    assert server.conn_params.header_timeout is None and server.conn_params.body_timeout is None
    assert (server.header_timeout, server.body_timeout) == (60.0, 10.0)


def test_sweep_closes_only_connections_past_their_deadline_oldest_first():
    server = _server(60.0, 10.0)
    idle_old, idle_new, already_closed = _Conn(), _Conn(), _Conn()
    body_old, body_new = _Conn(), _Conn()
    already_closed.stream.is_closed = True
    server.waiting.update({already_closed: 0.0, idle_old: 100.0, idle_new: 150.0})
    server.in_body.update({body_old: 195.0, body_new: 205.0})
    # at 200 s: idle_old waited 100 s (> 60), idle_new 50 s; body_old 5 s (< 10): nothing due
    assert server.sweep(now=200.0) == 1
    assert idle_old.stream.is_closed and not idle_new.stream.is_closed
    assert list(server.waiting) == [idle_new]  # the closed one left too, without counting
    assert list(server.in_body) == [body_old, body_new]
    # at 205 s body_old has waited exactly 10 s: due (>= timeout); idle_new (55 s) not yet
    assert server.sweep(now=205.0) == 1
    assert body_old.stream.is_closed and not body_new.stream.is_closed
    assert server.timed_out == 2
    assert server.sweep(now=205.0) == 0  # nothing more due
    assert list(server.waiting) == [idle_new] and list(server.in_body) == [body_new]


def test_sweep_without_timeouts_closes_nothing():
    server = _server(None, None)
    conn = _Conn()
    server.waiting[conn] = 0.0
    server.in_body[conn] = 0.0
    assert server.sweep(now=1e9) == 0 and not conn.stream.is_closed


# ------------------------------------------------------------------ the sweep on real sockets
class _Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")

    def post(self) -> None:
        self.write("ok")


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection (EOF) within ``seconds``."""
    try:
        return await asyncio.wait_for(reader.read(), seconds) == b""
    except asyncio.TimeoutError:
        return False


async def _timeouts_on_real_sockets() -> dict[str, float | bool]:
    server = netlimits.GuardedHTTPServer(tornado.web.Application([("/", _Hello)]),
                                         idle_connection_timeout=0.6, body_timeout=0.6)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server.add_sockets(sockets)
    out: dict[str, float | bool] = {}
    try:
        async def idle() -> None:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            out["idle closed"] = await _closed_within(reader, 3.0)
            out["idle seconds"] = time.monotonic() - started
            writer.close()

        async def trickle(head: bytes, key: str) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            started = time.monotonic()
            while time.monotonic() - started < 3.0 and not reader.at_eof():
                writer.write(b"x")  # one more byte of a header or body that never ends
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                if await _closed_within(reader, 0.1):
                    break
            out[key] = time.monotonic() - started
            writer.close()

        async def polling() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answered = 0
            started = time.monotonic()
            while time.monotonic() - started < 1.8:  # three times the idle timeout, in 0.2 s steps
                writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                answered += 1
                await asyncio.sleep(0.2)
            out["polls answered"] = answered
            out["polling closed"] = reader.at_eof()
            writer.close()

        await asyncio.gather(
            idle(),
            trickle(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ", "slow header seconds"),
            trickle(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "slow body seconds"),
            polling())
        out["timed out"] = server.timed_out
    finally:
        server.stop()
        await server.close_all_connections()
    return out


def test_idle_slow_header_and_slow_body_connections_are_closed_by_the_sweep_and_pollers_kept():
    out = asyncio.run(_timeouts_on_real_sockets())
    print(out)
    # closed after the 0.6 s timeout, at most one sweep interval (0.15 s) later, plus scheduling
    assert out["idle closed"] and 0.5 <= out["idle seconds"] < 1.5
    assert 0.5 <= out["slow header seconds"] < 1.5
    assert 0.5 <= out["slow body seconds"] < 1.5
    assert out["timed out"] == 3
    # a client that sends a request every 0.2 s is never idle for 0.6 s: kept open throughout
    assert out["polls answered"] >= 6 and not out["polling closed"]
