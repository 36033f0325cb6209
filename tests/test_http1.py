"""Tests of helpers/http1.py on real sockets: the connection class of GuardedHTTPServer serves
what Tornado's serves, with the same calls to the request delegate, and keeps TCP_NODELAY on.

A recording delegate (tests/http_apps.py) stands for the Bancho endpoint; raw requests are written with asyncio
streams, so every framing (plain length, chunked, pipelined, Expect, close) is the test's own."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
import tornado.httputil
import tornado.netutil

from helpers import http1, netlimits
from tests.http_apps import App, reply


@pytest.fixture(params=[False, True], ids=["tornado", "handed-over"])
def fast(request):
    """Whether the server has a fast side (helpers/httpfast.py) that hands these requests over."""
    return request.param


async def _serve(test, fast=False, **options):
    delegate = App()
    server = netlimits.GuardedHTTPServer(delegate, fast=delegate if fast else None, **options)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        return await test(delegate, port)
    finally:
        server.stop()
        await server.close_all_connections()


def _run(test, fast=False, **options):
    return asyncio.run(_serve(test, fast, **options))


def test_a_plain_length_body_is_delivered_in_pieces_of_chunk_size(fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
        head, body = await reply(reader)
        writer.close()
        return head, body, delegate.calls

    head, body, calls = _run(test, fast, chunk_size=4)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"POST /p 0123456789"
    assert calls == [("headers", "/p"), ("data", 4), ("data", 4), ("data", 2), ("finish", b"0123456789")]


def test_framings_other_than_a_plain_length_go_to_tornado(fast):
    async def test(delegate, port):
        out = []
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        out.append(await reply(reader))
        writer.write(b"POST /same HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nxy")  # equal repeats
        out.append(await reply(reader))
        writer.close()
        for bad in (b"Content-Length: 1, 2", b"Content-Length: +2", b"Content-Length: " + b"9" * 19,
                    b"Content-Length: \xb2",
                    b"Content-Length: 2000000"):  # past max_body_size
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /bad HTTP/1.1\r\nHost: x\r\n" + bad + b"\r\n\r\nxy")
            out.append(await asyncio.wait_for(reader.read(), 5))  # answered, then closed
            writer.close()
        return out

    chunked, same, *refused = _run(test, fast, max_body_size=1 << 20)
    assert chunked[1] == b"POST /chunked abcde" and same[1] == b"POST /same xy"
    assert refused == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] * 5


@pytest.mark.parametrize("first", [b"\r\n\r\n", b"POST  HTTP/1.1\r\nHost: x\r\n\r\n", b"POST / HTTP/2\r\n\r\n"])
def test_a_malformed_start_line_is_answered_400_even_as_the_first_request(first, fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(first)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer, delegate.calls

    answer, calls = _run(test, fast)
    assert answer == b"HTTP/1.1 400 Bad Request\r\n\r\n" and calls == []


def test_pipelined_requests_are_answered_in_order_and_connection_close_is_honoured(fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # each start line twice in a row (the connection reuses its reading), then another
        writer.write(b"".join(b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i // 2, i)
                              for i in range(5))
                     + b"POST /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz")
        replies = [(await reply(reader))[1] for _ in range(6)]
        rest = await asyncio.wait_for(reader.read(), 5)  # EOF: closed after the last reply
        writer.close()
        return replies, rest

    replies, rest = _run(test, fast)
    assert replies == [b"POST /%d %d" % (i // 2, i) for i in range(5)] + [b"POST /last z"]
    assert rest == b""


@pytest.mark.parametrize("path", [b"/e", b"/fast"])  # with the fast side on, /fast is its path
def test_expect_100_continue_gets_the_interim_reply_before_the_body(path, fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"abc")
        answer = await reply(reader)
        writer.close()
        return interim, answer

    interim, (_, body) = _run(test, fast)
    assert interim == b"HTTP/1.1 100 (Continue)\r\n\r\n" and body == b"POST " + path + b" abc"


def test_nodelay_is_set_once_and_stays_on(fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        values = []
        for _ in range(3):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            await reply(reader)
            server_conn = delegate.connections[-1][0]
            sock = server_conn.stream.socket
            values.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return values, type(delegate.connections[-1][1])

    values, conn_type = _run(test, fast)
    assert conn_type is http1.RequestConnection
    assert all(values) and len(values) == 3


def test_a_delegate_that_raises_is_logged_told_and_closed(caplog, fast):
    async def test(delegate, port):
        out = []
        for path in (b"/raise-in-headers", b"/raise-in-finish"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nq")
            out.append(await asyncio.wait_for(reader.read(), 5))
            writer.close()
        return out, delegate.calls

    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        out, calls = _run(test, fast)
    assert out == [b"", b""]  # closed without a reply
    assert ("closed", "/raise-in-headers") in calls and ("closed", "/raise-in-finish") in calls
    assert ("data", 1) not in calls[:2]  # the body of the first was never read
    assert sum("Uncaught exception" in r.getMessage() for r in caplog.records) == 2


def test_an_answer_before_the_body_closes_the_connection_after_it(fast):
    async def test(delegate, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        answer = await reply(reader)
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer, rest, delegate.calls

    (_, body), rest, calls = _run(test, fast)
    assert body == b"early" and rest == b""
    assert ("finish", b"abc") not in calls  # the body after the answer is not handed on
    assert calls[-1] == ("closed", "/early")


def test_write_reply_on_a_plain_tornado_connection_writes_and_finishes():
    class Conn:
        def __init__(self):
            self.done = []

        def write(self, data):
            self.done.append(("write", data))

        def finish(self):
            self.done.append(("finish",))

    conn = Conn()
    http1.write_reply(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert conn.done == [("write", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ("finish",)]


@pytest.mark.parametrize("head", [b"POST / HTTP/1.1\r\nHost: x\r\nosu-token: t\r\nContent-Length: 0\r\n\r\n",
                                  b"POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n"])
def test_request_connection_reads_heads_like_tornado(head):
    from helpers import httphead
    conn = http1.RequestConnection.__new__(http1.RequestConnection)
    start, headers = conn._parse_headers(head)
    expected_start, expected = httphead.tornado_parse(head)
    assert start == expected_start and dict(headers.get_all()) == dict(expected.get_all())
