"""The server side of an HTTP/1.x connection: Tornado's request loop, shorter for the common case.

Tornado's ``HTTP1ServerConnection`` serves a keep-alive connection one request at a time. For
each one it runs a coroutine that reads the head, then awaits two more coroutines for a body of
a few bytes (``_read_body`` -> ``_read_fixed_body`` -> ``_deliver_body``), turns Nagle's
algorithm off and on again around the reply (two ``setsockopt`` calls) and then sleeps one
round of the event loop before reading the next request. At a few thousand polls a second that
machinery was about 43 % of an idle poll's samples (bench/README.md, fifth pass, "Where the
time of a poll goes now").

:class:`ServerConnection` and :class:`RequestConnection` are those two classes with the same
contract and these changes, all on the server side:

* a body with a plain ``Content-Length`` (ASCII digits, no ``Transfer-Encoding``) is read and
  handed to the delegate in the request's own coroutine, in pieces of at most ``chunk_size``
  bytes as Tornado does; every other framing (chunked, several or malformed lengths, none) goes
  to Tornado's own ``_read_body``, which accepts or refuses it exactly as before;
* ``TCP_NODELAY`` is set once per connection and stays on (a reply is written in one piece, so
  there is nothing for Nagle's algorithm to merge).

The reply of :func:`write_reply` is written straight to the stream when the connection stays
open (no futures of ``HTTP1Connection.write``); a connection about to close waits for its write
as before. Request heads are read by :func:`helpers.httphead.parse_head`. Every limit of
:class:`helpers.netlimits.GuardedHTTPServer` (header size, body size, deadlines, bytes held)
applies unchanged; tests/test_http1.py and tests/integration/test_http_edges.py hold both
paths to it. Source of the contract: Tornado 6 ``tornado/http1connection.py`` (``HTTP1Connection`` and
``HTTP1ServerConnection``, read, not copied), RFC 9112 §6 (message body length).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import tornado.http1connection
import tornado.httputil
import tornado.iostream

from helpers import httphead

log = logging.getLogger("tornado.application")
gen_log = logging.getLogger("tornado.general")

#: the end of a request head: an empty line, CRLF or bare LF (what Tornado accepts)
HEAD_END = re.compile(rb"\r?\n\r?\n")
#: body bytes read in one go before the coroutine yields to other connections (Tornado's value)
YIELD_AFTER = 256 * 1024


class _DelegateFailed(Exception):
    """A delegate hook raised; it was logged, the connection is closed quietly."""


def _call(hook: Any, *args: Any) -> Any:
    """Call a delegate hook; log what it raises (as Tornado does) and raise
    :class:`_DelegateFailed` in its place."""
    try:
        return hook(*args)
    except Exception as exc:
        log.error("Uncaught exception", exc_info=True)
        raise _DelegateFailed() from exc


def _keep_nodelay(value: bool) -> None:
    """Stands in for ``IOStream.set_nodelay`` once the connection has ``TCP_NODELAY`` set."""


class RequestConnection(tornado.http1connection.HTTP1Connection):
    """One request of a server connection (``HTTP1Connection`` with ``is_client=False``): the
    head read by :func:`helpers.httphead.parse_head`, a plain ``Content-Length`` body read in
    this coroutine, no ``TCP_NODELAY`` toggling after the reply (the module's docstring)."""

    #: the :class:`ServerConnection` serving this request (None when made by other code)
    server: ServerConnection | None = None

    def _parse_headers(self, data: bytes) -> tuple[str, tornado.httputil.HTTPHeaders]:
        return httphead.parse_head(data)

    async def _read_message(self, delegate: tornado.httputil.HTTPMessageDelegate) -> bool:
        """Read one request and give it to ``delegate``; True when the connection may serve
        another one. Raises what the stream raises when the client goes away
        (``StreamClosedError``); a malformed request is answered ``400`` and closed, a delegate
        that raises is logged and closed."""
        stream = self.stream
        params = self.params
        delegate_open = False
        try:
            head = await stream.read_until_regex(HEAD_END, max_bytes=params.max_header_size)
            line, headers = self._parse_headers(head)
            server = self.server
            if server is not None and line == server.last_line:  # a client repeats its start line
                start_line = server.last_start
            else:
                start_line = tornado.httputil.parse_request_start_line(line)
                if server is not None:
                    server.last_line, server.last_start = line, start_line
            self._request_start_line = start_line
            self._request_headers = headers
            self._disconnect_on_finish = not self._can_keep_alive(start_line, headers)
            delegate_open = True
            waiting = _call(delegate.headers_received, start_line, headers)
            if waiting is not None:
                await waiting
            if self.stream is None:  # detached (a websocket)
                delegate_open = False
                return False
            if headers.get("Expect") == "100-continue" and not self._write_finished:
                stream.write(b"HTTP/1.1 100 (Continue)\r\n\r\n")
            size = httphead.plain_length(headers)
            if size is not None:
                if size > self._max_body_size:
                    raise tornado.httputil.HTTPInputError("Content-Length too long")
                if size:
                    await self._read_plain_body(size, delegate)
            else:
                reading = self._read_body(0, headers, delegate)  # Tornado's checks and readers
                if reading is not None:
                    await reading
            self._read_finished = True
            if not self._write_finished:
                _call(delegate.finish)
                # a delegate that raised in finish, or that answered before its body was read,
                # is told that the connection closed (as Tornado does)
                delegate_open = False
            if not self._finish_future.done() and self.stream is not None and not self.stream.closed():
                self.stream.set_close_callback(self._on_connection_close)
                await self._finish_future
            if self.stream is None:
                return False
        except tornado.httputil.HTTPInputError as exc:
            gen_log.info("Malformed HTTP message from %s: %s", self.context, exc)
            await stream.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.close()
            return False
        except _DelegateFailed:
            self.close()
            return False
        finally:
            if delegate_open:
                try:
                    delegate.on_connection_close()
                except Exception:
                    log.error("Uncaught exception", exc_info=True)
            self._clear_callbacks()
        return True

    async def _read_plain_body(self, size: int, delegate: tornado.httputil.HTTPMessageDelegate) -> None:
        """Read ``size`` bytes of body (``size`` > 0) and hand them to the delegate as they come,
        at most ``chunk_size`` bytes a piece."""
        stream = self.stream
        chunk_size = self.params.chunk_size
        work = 0
        while size > 0:
            chunk = await stream.read_bytes(min(chunk_size, size), partial=True)
            size -= len(chunk)
            if not self._write_finished:
                waiting = _call(delegate.data_received, chunk)
                if waiting is not None:
                    await waiting
            work += len(chunk)
            if work >= YIELD_AFTER and size:
                work = 0
                await asyncio.sleep(0)

    def _finish_request(self, future: Any) -> None:
        """The reply is written: close the connection or let the next request be read (without
        turning Nagle's algorithm back on, unlike Tornado)."""
        self._clear_callbacks()
        if self._disconnect_on_finish:
            self.close()
            return
        if not self._finish_future.done():
            self._finish_future.set_result(None)


def write_reply(conn: Any, data: bytes) -> None:
    """Write ``data`` (a whole response: status line, headers, body) on the request connection
    ``conn`` and finish the request. On a :class:`RequestConnection` that stays open after it,
    the bytes go straight to the stream (the request is finished at once; the stream keeps the
    order of writes); otherwise, and on any other ``HTTPConnection``, through ``write`` and
    ``finish`` (a connection that closes after the reply closes once it is written)."""
    if (type(conn) is RequestConnection and conn._read_finished and not conn._disconnect_on_finish
            and conn.stream is not None and not conn.stream.closed()):
        conn._write_finished = True
        conn.stream.write(data)
        conn._finish_request(None)
        return
    conn.write(data)
    conn.finish()


class ServerConnection(tornado.http1connection.HTTP1ServerConnection):
    """A server connection whose requests are :class:`RequestConnection` objects, with
    ``TCP_NODELAY`` set once. It keeps the last request's start line and its reading (an
    immutable ``RequestStartLine``): a client sends the same one again and again."""

    last_line: str | None = None  # never equal to a start line before the first one
    last_start: tornado.httputil.RequestStartLine | None = None

    def start_serving(self, delegate: tornado.httputil.HTTPServerConnectionDelegate) -> None:
        """Set ``TCP_NODELAY`` once, then serve requests (Tornado's contract)."""
        stream = self.stream
        stream.set_nodelay(True)
        stream.set_nodelay = _keep_nodelay  # type: ignore[method-assign]
        super().start_serving(delegate)

    async def _server_request_loop(self, delegate: tornado.httputil.HTTPServerConnectionDelegate) -> None:
        stream = self.stream
        try:
            while True:
                conn = RequestConnection(stream, False, self.params, self.context)
                conn.server = self
                request_delegate = delegate.start_request(self, conn)
                try:
                    more = await conn.read_response(request_delegate)
                except (tornado.iostream.StreamClosedError, tornado.iostream.UnsatisfiableReadError,
                        asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not more:
                    return
                # one round of the loop before the next read, as Tornado does: fair to the other
                # connections, and the client's next request has often arrived by then, so it is
                # read at once instead of after a failed read and a new wait (measured: leaving
                # this out cost 10 % more CPU per poll and doubled the p99, bench/README.md)
                await asyncio.sleep(0)
        finally:
            delegate.on_close(self)
