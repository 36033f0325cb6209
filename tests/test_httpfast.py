"""Tests of helpers/httpfast.py on real sockets: the fast side of GuardedHTTPServer answers the
requests its delegate takes (here every path under /fast) and hands any other connection over to
Tornado with the bytes already read, keeping the server's limits, deadlines and counts.

tests/test_http1.py runs its Tornado-side tests a second time with the fast side on (every
request there is handed over); these are the fast side's own."""

from __future__ import annotations

import asyncio
import logging

import pytest
import tornado.httputil
import tornado.netutil

from helpers import httpfast, netlimits
from tests.http_apps import BIG, App, reply


async def _serve(test, options):
    app = App()
    server = netlimits.GuardedHTTPServer(app, fast=app, **options)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    try:
        return await test(app, server, sockets[0].getsockname()[1])
    finally:
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), 5)
        assert not server._connections and not server.waiting and not server.in_body
        assert server.pending_bytes == 0


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """``run(test, **server options)``: the test against a fresh server, on asyncio's own loop
    and on uvloop (pep.py runs on uvloop when it is installed, [server] uvloop)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return lambda test, **options: uvloop.run(_serve(test, options))
    return lambda test, **options: asyncio.run(_serve(test, options))


def _post(path: bytes, body: bytes = b"", extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST %s %s\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (path, version, extra, len(body), body)


def _kinds(server) -> list[str]:
    return sorted(type(c).__name__ for c in server._connections)


def test_pipelined_and_split_requests_are_answered_in_order_on_the_fast_side(run):
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # three in one write, the middle one answered later: the third waits for it
        writer.write(_post(b"/fast/a", b"1") + _post(b"/fast/later", b"2") + _post(b"/fast/c", b"3"))
        replies = [(await reply(reader))[1] for _ in range(3)]
        # one request in pieces: half a head, the rest of the head, the body in two
        whole = _post(b"/fast/split", b"0123456789")
        for piece in (whole[:10], whole[10:-10], whole[-10:-4], whole[-4:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        replies.append((await reply(reader))[1])
        kinds = _kinds(server)
        writer.close()
        return replies, kinds, app.calls

    replies, kinds, calls = run(test)
    assert replies == [b"fast /fast/a 1", b"fast /fast/later 2", b"fast /fast/c 3", b"fast /fast/split 0123456789"]
    assert kinds == ["FastConnection"]  # never handed over
    assert [c[0] for c in calls] == ["fast"] * 4


def test_keep_alive_follows_the_http_version_and_the_connection_header(run):
    async def test(app, server, port):
        out = []
        for request in (_post(b"/fast", b"a", b"Connection: close\r\n"),
                        _post(b"/fast", b"b", version=b"HTTP/1.0"),
                        _post(b"/fast", b"c", b"Connection: keep-alive\r\n", version=b"HTTP/1.0")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head, body = await reply(reader)
            try:
                rest = await asyncio.wait_for(reader.read(), 0.3)  # b"" once closed
            except asyncio.TimeoutError:
                rest = None  # still open
            writer.close()
            out.append((head, body, rest))
        return out

    closed11, closed10, kept10 = run(test)
    assert b"Connection: close\r\n" in closed11[0] and closed11[2] == b""
    assert b"Connection" not in closed10[0] and closed10[2] == b""
    assert b"Connection: Keep-Alive\r\n" in kept10[0] and kept10[2] is None


@pytest.mark.parametrize("request_bytes, answer", [
    (b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /page "),  # another path
    (b"POST /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     b"POST /fast ab"),  # a chunked body
    (b"POST /fast HTTP/1.1\nHost: x\nContent-Length: 2\n\nab", b"POST /fast ab"),  # bare LF
    (b"POST /fast HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\nab",
     b"POST /fast ab"),  # a repeated header
    (b"POST /fast HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /fast "),  # no Content-Length: no body
    (b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", b"POST /fast ab"),
])
def test_other_requests_hand_the_connection_over_with_what_was_read(request_bytes, answer, run):
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post(b"/fast/first", b"1"))  # answered on the fast side
        first = (await reply(reader))[1]
        writer.write(request_bytes + _post(b"/fast/after", b"2"))  # both in one write
        second = (await reply(reader))[1]
        third = (await reply(reader))[1]
        kinds = _kinds(server)
        writer.close()
        return first, second, third, kinds

    first, second, third, kinds = run(test)
    assert first == b"fast /fast/first 1" and second == answer
    # a handed-over connection stays Tornado's, also for the requests the fast side would take
    assert third == b"POST /fast/after 2" and kinds == ["ServerConnection"]


def test_oversized_requests_are_refused_by_tornado_after_the_hand_over(run):
    async def test(app, server, port):
        out = []
        for request in (_post(b"/fast", b"x" * 200),  # past max_body_size: 400 and closed
                        b"POST /fast HTTP/1.1\r\nX: " + b"y" * 5000,  # a head past max_header_size
                        _post(b"/fast", b"z", b"X: " + b"y" * 2000 + b"\r\n")):  # the same, complete
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            out.append(await asyncio.wait_for(reader.read(), 5))
            writer.close()
        return out, app.calls

    (too_long, too_large, too_large_whole), calls = run(test, max_body_size=100, max_header_size=1024)
    assert too_long == b"HTTP/1.1 400 Bad Request\r\n\r\n"
    assert too_large == too_large_whole == b""  # closed without an answer, as Tornado does
    assert ("headers", "/fast") in calls and not [c for c in calls if c[0] in ("fast", "finish")]


def test_deadlines_and_the_cap_on_incomplete_bodies_hold_on_the_fast_side(run):
    async def test(app, server, port):
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        idle_w.write(b"POST /fast HTT")  # half a head, then nothing: waits for headers
        body_r, body_w = await asyncio.open_connection("127.0.0.1", port)
        body_w.write(_post(b"/fast", b"0123456789")[:-6])  # the head and 4 of 10 body bytes
        await asyncio.sleep(0.1)
        held = server.pending_bytes
        big_r, big_w = await asyncio.open_connection("127.0.0.1", port)
        big_w.write(_post(b"/fast", b"z" * 900)[:-100])  # 800 bytes held: past max_pending
        closed = [await asyncio.wait_for(r.read(), 5) for r in (big_r, idle_r, body_r)]
        for w in (idle_w, body_w, big_w):
            w.close()
        return held, closed, server.timed_out, app.calls

    held, closed, timed_out, calls = run(test, idle_connection_timeout=0.3, body_timeout=0.3,
                                          max_pending=500)
    assert held == 4 and closed == [b"", b"", b""] and timed_out == 2 and calls == []


def test_connections_per_address_are_counted_across_the_hand_over(run):
    async def test(app, server, port):
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        second[1].write(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n")  # handed over, still counted
        await reply(second[0])
        third = await asyncio.open_connection("127.0.0.1", port)
        refused = await asyncio.wait_for(third[0].read(), 5)  # closed at once: the third
        counts = dict(server.addresses.open)
        for _, w in (first, second, third):
            w.close()
        await asyncio.sleep(0.2)
        return refused, counts, dict(server.addresses.open)

    refused, counts, after = run(test, max_per_address=2)
    assert refused == b"" and counts == {"127.0.0.1": 2} and after == {}


def test_a_reply_not_yet_written_holds_the_next_request_back(run):
    async def test(app, server, port):
        # a small read buffer: the client stops reading from the socket once it holds 8 KB
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
        writer.write(_post(b"/fast/big", b"1") + _post(b"/fast/small", b"2"))
        await asyncio.sleep(0.3)  # the client reads nothing: 8 MB do not fit the socket buffers
        before = list(app.calls)
        first = await reply(reader)
        second = await reply(reader)
        writer.close()
        return before, len(first[1]), second[1]

    before, big, small = run(test)
    assert before == [("fast", "/fast/big", b"1")]  # the second waited for the first to be written
    assert big == BIG and small == b"fast /fast/small 2"


def test_quiesced_server_answers_with_connection_close_and_closes(run):
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post(b"/fast", b"a"))
        await reply(reader)
        server.conn_params.no_keep_alive = True  # what services/handover.py quiesce does
        writer.write(_post(b"/fast", b"b"))
        head, body = await reply(reader)
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return head, body, rest

    head, body, rest = run(test)
    assert b"Connection: close\r\n" in head and body == b"fast /fast b" and rest == b""


def test_a_client_leaving_mid_request_and_a_failing_delegate_leave_nothing_behind(caplog, run):
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post(b"/fast/later", b"1"))  # leaves before its answer
        await asyncio.sleep(0.01)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post(b"/fast", b"0123456789")[:-5])  # leaves in the middle of the body
        await asyncio.sleep(0.05)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_post(b"/fast/raise", b"1"))
        raised = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.sleep(0.2)
        return raised, len(server._connections), server.pending_bytes

    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        raised, left, pending = run(test)
    assert raised == b"" and left == 0 and pending == 0
    assert sum("Uncaught exception" in r.getMessage() for r in caplog.records) == 1


def test_close_all_connections_closes_idle_and_busy_fast_connections(run):
    async def test(app, server, port):
        idle = await asyncio.open_connection("127.0.0.1", port)
        busy = await asyncio.open_connection("127.0.0.1", port)
        busy[1].write(_post(b"/fast/later", b"1"))
        await asyncio.sleep(0.01)
        kinds = _kinds(server)
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), 5)
        ends = [await asyncio.wait_for(r.read(), 5) for r, _ in (idle, busy)]
        await asyncio.sleep(0.1)  # the late answer finds its connection gone
        for _, w in (idle, busy):
            w.close()
        return kinds, ends

    kinds, ends = run(test)
    assert kinds == ["FastConnection", "FastConnection"] and ends == [b"", b""]


@pytest.mark.parametrize("line, expected", [
    (b"POST / HTTP/1.1", ("POST", "/", "HTTP/1.1")),
    (b"POST /?a=1 HTTP/1.0", ("POST", "/?a=1", "HTTP/1.0")),
    (b"POST  HTTP/1.1", None), (b"POST / HTTP/2", None), (b"POST * HTTP/1.1", None),
    (b"PO\xffST / HTTP/1.1", None), (b"POST /\x01 HTTP/1.1", None), (b"", None),
])
def test_start_lines_taken_by_the_fast_side(line, expected):
    assert httpfast.start_line_of(line) == (None if expected is None else tornado.httputil.RequestStartLine(*expected))


@pytest.mark.parametrize("length", [b"1, 2", b"+2", b"9" * 19, b"\xb2", b"-1"])
def test_a_wrong_content_length_is_refused_by_tornado_after_the_hand_over(length, run):
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\nxy")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer, app.calls

    answer, calls = run(test)
    assert answer == b"HTTP/1.1 400 Bad Request\r\n\r\n"
    assert not [c for c in calls if c[0] in ("fast", "finish")]


def test_a_request_sent_byte_by_byte_is_read_once_and_answered(run):
    """A head and a body arriving in many small pieces are appended in place and searched from
    where the last search stopped (no copy of the whole buffer per piece)."""
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = _post(b"/fast/slow", b"b" * 3000, b"X-Pad: " + b"p" * 500 + b"\r\n")
        for i in range(0, len(request), 7):
            writer.write(request[i:i + 7])
            await writer.drain()
            if i % 700 == 0:
                await asyncio.sleep(0.001)  # let the server read what has come
        answer = (await reply(reader))[1]
        kinds = _kinds(server)
        writer.close()
        return answer, kinds

    answer, kinds = run(test)
    assert answer == b"fast /fast/slow " + b"b" * 3000 and kinds == ["FastConnection"]


def test_a_long_pipeline_is_answered_in_batches_that_let_other_connections_in(run):
    """200 requests in one write are all answered in order, PIPELINE_BATCH at a time: another
    connection's request is answered before the last of them."""
    async def test(app, server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        other_r, other_w = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(_post(b"/fast/p", b"%d" % i) for i in range(200)))
        await writer.drain()
        await asyncio.sleep(0)
        other_w.write(_post(b"/fast/other", b"o"))
        answers = [(await reply(reader))[1] for _ in range(200)]
        other = (await reply(other_r))[1]
        writer.close()
        other_w.close()
        return answers, other, [c[1:] for c in app.calls]

    answers, other, calls = run(test)
    assert answers == [b"fast /fast/p %d" % i for i in range(200)] and other == b"fast /fast/other o"
    assert calls.index(("/fast/other", b"o")) < calls.index(("/fast/p", b"199"))
