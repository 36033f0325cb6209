"""Connections served below Tornado's ``IOStream`` while their requests are the common kind.

Every connection of :class:`helpers.netlimits.GuardedHTTPServer` starts as a
:class:`FastConnection`: an ``asyncio.Protocol`` that reads requests from the bytes the event
loop hands it, with no future per read and no epoll registration per wait (Tornado's
``IOStream`` costs both per request: most of an idle poll's CPU after the sixth pass,
bench/README.md "seventh pass"). It answers itself only the requests its delegate takes
(:meth:`FastDelegate.fast_accepts`: for pep.py, ``POST /``) and only in the strict common
form:

* HTTP/1.0 or HTTP/1.1, the head in the strict form of :func:`helpers.httphead.strict_head`
  (CRLF line ends, each name once, no control characters);
* a body framed by one plain ``Content-Length`` (:func:`helpers.httphead.plain_length`) within
  the request's body limit, no ``Expect``.

Anything else, at any point of a connection (another path, a chunked body, a malformed head, a
head larger than ``max_header_size``, a body over its limit), **hands the connection over** to
Tornado with the bytes already read: the socket is duplicated, the protocol's transport
closed, and the duplicate served by :class:`helpers.http1.ServerConnection` exactly as a
connection Tornado accepted itself (:meth:`GuardedHTTPServer.serve_handed`). From then on that
connection is Tornado's; every answer Tornado gives (400s, 100-continue, chunked bodies, the
``tornado.web`` application) is unchanged.

What stays the same on the fast side (tests/test_httpfast.py, tests/integration/test_http_edges.py):
keep-alive as Tornado decides it (HTTP/1.1 unless ``Connection: close``, HTTP/1.0 only with
``Connection: keep-alive``; none while the server is quiesced, ``conn_params.no_keep_alive``);
pipelined requests answered one at a time in order (reading pauses while an answer is pending
or a reply is not yet written, as Tornado waits for both); the server's deadlines (waiting for
headers, incomplete bodies), its cap on the bytes of incomplete bodies, its per-address counts
and its connection set, so sweeps, shedding, metrics and ``close_all_connections`` see fast
connections like the others. Sources: RFC 9112 §6 and §9.3 (message length, persistence),
Tornado 6 ``http1connection.py`` (``_can_keep_alive``, ``write_headers``; read, not copied).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any, Protocol

import tornado.httputil

from helpers import httphead

log = logging.getLogger("tornado.application")

#: requests answered in one go from one connection's buffer before the other connections get a
#: turn of the loop (a client pipelining thousands of polls in one write must not stall the rest)
PIPELINE_BATCH = 16
#: Tornado's ``IOStream`` buffer size when the server sets none (bytes): its body limit then
DEFAULT_MAX_BUFFER = 104857600
_HEAD_END = b"\r\n\r\n"


class FastDelegate(Protocol):
    """What a :class:`FastConnection` asks of the application (``handlers.bancho.BanchoServer``)."""

    def fast_accepts(self, start_line: tornado.httputil.RequestStartLine) -> bool:
        """Whether requests with this start line are answered on the fast side."""

    def fast_request(self, conn: "FastConnection", start_line: tornado.httputil.RequestStartLine,
                     headers: tornado.httputil.HTTPHeaders, body: bytes, extra: bytes) -> None:
        """Answer one request: call ``conn.reply(response)`` exactly once, now or later, with the
        whole response (status line, headers, body); ``extra`` is the ``Connection`` header
        line the response must carry (``b""`` for none)."""


class _Handle:
    """What the server's sweeps and shedding close (they call ``server_conn.stream.close()``)."""

    __slots__ = ("conn",)

    def __init__(self, conn: "FastConnection") -> None:
        self.conn = conn

    def closed(self) -> bool:
        """Whether the connection is closed (or handed over to Tornado)."""
        return self.conn.closed or self.conn.handed

    def close(self) -> None:
        """Close the connection at once (unsent bytes are dropped)."""
        self.conn.abort()


def start_line_of(line: bytes) -> tornado.httputil.RequestStartLine | None:
    """The request start line ``line`` (without CRLF) when it is ``METHOD SP target SP
    HTTP/1.x`` with a target in origin form; None for anything else (handed over)."""
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].startswith(b"/"):
        return None
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    method, path, version = text.split(" ")
    if not method.isalpha() or not path.isprintable():
        return None
    return tornado.httputil.RequestStartLine(method, path, version)


class FastConnection(asyncio.Protocol):
    """One client connection of a :class:`helpers.netlimits.GuardedHTTPServer` (the module's
    docstring). ``server`` is that server, ``address`` the peer address (a tuple, the ip first),
    ``delegate`` a :class:`FastDelegate`. ``remote_ip`` is the peer address as text."""

    __slots__ = ("server", "delegate", "address", "remote_ip", "stream", "transport", "buf", "held",
                 "head", "busy", "keep", "closed", "handed", "paused", "draining", "in_process",
                 "scanned", "last_line", "last_start", "last_fast", "done", "connecting")

    def __init__(self, server: Any, address: Any, delegate: FastDelegate) -> None:
        self.server = server
        self.delegate = delegate
        self.address = address
        self.remote_ip = address[0] if isinstance(address, tuple) and address else ""
        self.stream = _Handle(self)
        self.transport: asyncio.Transport | None = None
        self.buf: bytes | bytearray = b""
        self.scanned = 0  # bytes of buf known to hold no complete head end
        self.held = 0  # bytes of an incomplete body counted in server.pending_bytes
        # (start line, headers, extra, keep-alive, body start, request end) of a request whose
        # body is still coming
        self.head: tuple | None = None
        self.busy = False  # a request is being answered
        self.keep = True
        self.closed = False
        self.handed = False
        self.paused = False  # reading paused by this class
        self.draining = False  # a reply is not all written yet (the transport said so)
        self.in_process = False
        self.last_line: bytes | None = None
        self.last_start: tornado.httputil.RequestStartLine | None = None
        self.last_fast = False
        self.done: asyncio.Future | None = None
        self.connecting: asyncio.Future | None = None  # asyncio's set-up of the transport

    # ------------------------------------------------------------------ asyncio's hooks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: the transport exists; a reply left in its buffer pauses the reading."""
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=0)  # type: ignore[attr-defined]
        if self.closed:  # closed before the transport was made
            transport.abort()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        """asyncio: bytes from the client."""
        if self.closed or self.handed:
            return
        buf = self.buf
        if not buf:
            self.buf = data  # the common case: a whole request in one piece, never copied
        elif type(buf) is bytes:
            self.buf = bytearray(buf) + data  # a request in pieces: appended in place from now on
        else:
            buf += data
        if self.busy or self.draining:
            self._pause()
            return
        self._process()

    def eof_received(self) -> bool:
        """asyncio: the client shut its side down; close (a half-closed request is not answered)."""
        return False

    def pause_writing(self) -> None:
        """asyncio: a reply is not all written; no further request is read until it is."""
        self.draining = True
        self._pause()

    def resume_writing(self) -> None:
        """asyncio: the reply is written; go on with the next request."""
        self.draining = False
        if not self.busy and not self.in_process:
            self._go_on()

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: the connection is closed (by either side)."""
        if self.handed:
            return
        self._lost()

    # ------------------------------------------------------------------ the server's side
    def reply(self, data: bytes) -> None:
        """Write the whole response ``data`` to the request being answered; then close the
        connection when it does not stay open, else read the next request. Ignored when the
        connection is gone (a client that left during a login)."""
        transport = self.transport
        if not self.busy or self.closed or self.handed or transport is None:
            return  # gone, or a second answer to one request (dropped: it would corrupt the stream)
        self.busy = False
        transport.write(data)
        if not self.keep:
            self.closed = True  # nothing more is read; connection_lost follows the last write
            transport.close()
            return
        server = self.server
        server.waiting[self] = time.monotonic()  # waiting for the next request's head
        if not self.in_process and not self.draining:
            self._go_on()

    def abort(self) -> None:
        """Close the connection now, dropping unread and unsent bytes."""
        if self.handed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        # else: connection_made aborts the transport as soon as it exists

    async def close(self) -> None:
        """Close the connection and wait until it is closed (``HTTPServer.close_all_connections``)."""
        if self.handed or self not in self.server._connections:
            return
        if self.done is None:
            self.done = asyncio.get_running_loop().create_future()
        self.abort()
        if self.transport is None:  # never connected: nothing will call connection_lost
            self._lost()
            return
        await self.done

    # ------------------------------------------------------------------ reading requests
    def _pause(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def _go_on(self) -> None:
        """After an answer (or a turn of the loop): read again and answer what came meanwhile."""
        if self.busy or self.draining or self.closed or self.handed:
            return  # the answer, the write or the end of the connection comes back here
        if self.paused:
            self.paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        if self.buf:
            self._process()

    def _process(self) -> None:
        """Answer the complete requests in the buffer, one at a time, until one is pending;
        after :data:`PIPELINE_BATCH` of them the rest waits for the next turn of the loop."""
        server = self.server
        answered = 0
        while self.buf and not (self.busy or self.draining or self.closed or self.handed):
            if answered == PIPELINE_BATCH:
                self._pause()
                asyncio.get_running_loop().call_soon(self._go_on)
                return
            head = self.head
            buf = self.buf
            if head is None:
                head = self._read_head(buf)
                if head is None:
                    return
            start, headers, extra, keep, body_start, total = head
            if len(buf) < total:  # the body is still coming: counted against the server's cap
                if self.head is None:
                    self.head = head
                    server.waiting.pop(self, None)
                    server.in_body[self] = time.monotonic()
                held = len(buf) - body_start
                server.pending_bytes += held - self.held
                self.held = held
                if server.pending_bytes > server.max_pending:
                    server.pending_refused.hit(server.max_pending)
                    self.abort()
                return
            if self.head is not None:
                self.head = None
                server.in_body.pop(self, None)
            if self.held:
                server.pending_bytes -= self.held
                self.held = 0
            server.waiting.pop(self, None)
            body = bytes(buf[body_start:total])
            self.buf = buf[total:]
            self.scanned = 0
            self.keep = keep
            self.busy = True
            self.in_process = True
            try:
                self.delegate.fast_request(self, start, headers, body, extra)
            except Exception:
                log.error("Uncaught exception", exc_info=True)
                self.abort()
                return
            finally:
                self.in_process = False
            answered += 1
        if self.busy:
            self._pause()

    def _read_head(self, buf: bytes | bytearray) -> tuple | None:
        """The reading of the request head at the start of ``buf``: ``(start line, headers,
        extra, keep-alive, body start, request end)`` (offsets in ``buf``); None when the head is not
        complete yet, or when the request is not one for this side (the connection is then
        handed over)."""
        server = self.server
        end = buf.find(_HEAD_END, self.scanned)
        if end < 0:
            if len(buf) > server.conn_params.max_header_size:
                self._hand_off()
            else:  # a head in pieces: the next search starts where this one could not match
                self.scanned = max(0, len(buf) - len(_HEAD_END) + 1)
            return None
        if end + len(_HEAD_END) > server.conn_params.max_header_size:
            self._hand_off()  # Tornado refuses it
            return None
        eol = buf.find(b"\r\n")
        line = bytes(buf[:eol])
        if line == self.last_line:
            start = self.last_start
            fast = self.last_fast
        else:
            start = start_line_of(line)
            fast = start is not None and self.delegate.fast_accepts(start)
            self.last_line, self.last_start, self.last_fast = line, start, fast
        if not fast or start is None:
            self._hand_off()
            return None
        parsed = httphead.strict_head(buf[:end + 4])
        if parsed is None:
            self._hand_off()
            return None
        headers = parsed[1]
        size = httphead.plain_length(headers)
        if size is None or "Expect" in headers:
            self._hand_off()
            return None
        limit_of = server.body_limit
        limit = limit_of(start, headers) if limit_of is not None else None
        if limit is None:  # Tornado's rule: the server's max_body_size, else the stream's buffer
            limit = server.conn_params.max_body_size or server.max_buffer_size or DEFAULT_MAX_BUFFER
        if size > limit:
            self._hand_off()
            return None
        keep, extra = httphead.keep_alive(start.version, headers)
        if keep and server.conn_params.no_keep_alive:  # quiesced: this is the last request
            keep = False
            extra = b"Connection: close\r\n" if start.version == "HTTP/1.1" else b""
        return start, headers, extra, keep, end + 4, end + 4 + size

    # ------------------------------------------------------------------ hand-over and end
    def _hand_off(self) -> None:
        """Give the connection, with the bytes read so far, to Tornado's side of the server."""
        transport = self.transport
        server = self.server
        if transport is None or self.closed or self.handed:
            return
        data, self.buf, self.head = bytes(self.buf), b"", None
        if self.held:
            server.pending_bytes -= self.held
            self.held = 0
        try:
            sock = transport.get_extra_info("socket")
            fd = os.dup(sock.fileno())
        except (OSError, AttributeError):  # already gone
            self.abort()
            return
        transport.pause_reading()
        key = server._address_of.pop(self.stream, None)
        self.handed = True
        server.on_close(self)  # leaves the server's lists; the address count moves with ``key``
        transport.abort()  # closes this descriptor only: the duplicate keeps the connection open
        try:
            handed = socket.socket(fileno=fd)
            handed.setblocking(False)
        except OSError:
            os.close(fd)
            if key is not None:
                server.addresses.release(key)
            return
        server.serve_handed(handed, self.address, data, key)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _lost(self) -> None:
        server = self.server
        self.closed = True
        self.busy = False
        self.buf = b""
        if self.held:
            server.pending_bytes -= self.held
            self.held = 0
        if self in server._connections:
            server.on_close(self)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def connect(conn: FastConnection, sock: socket.socket) -> None:
    """Serve the accepted ``sock`` with ``conn`` on the running loop (asyncio's
    ``connect_accepted_socket``; the connection is already in the server's lists)."""
    loop = asyncio.get_running_loop()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a reply is one write
    except OSError:
        pass

    def made(future: asyncio.Future) -> None:
        conn.connecting = None
        if future.cancelled() or future.exception() is not None:
            try:
                sock.close()
            except OSError:
                pass
            conn._lost()

    conn.connecting = asyncio.ensure_future(loop.connect_accepted_socket(lambda: conn, sock))
    conn.connecting.add_done_callback(made)
