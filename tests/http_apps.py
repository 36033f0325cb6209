"""A recording HTTP application for the tests of helpers/http1.py and helpers/httpfast.py, on
both sides of a connection of helpers.netlimits.GuardedHTTPServer.

Tornado's side (``start_request``) answers ``<method> <path> <body>`` with ``write_reply`` and
records every delegate call; ``/raise-in-headers`` and ``/raise-in-finish`` raise there and
``/early`` answers before its body is read. The fast side (``fast_accepts`` /
``fast_request``, helpers/httpfast.py) takes the paths under ``/fast`` and answers
``fast <path> <body>``; ``/fast/later`` 50 ms later, ``/fast/big`` with 8 MiB and
``/fast/raise`` raises."""

from __future__ import annotations

import asyncio

import tornado.httputil

from helpers import http1

BIG = 8 << 20


class Recorder(tornado.httputil.HTTPMessageDelegate):
    """One request on Tornado's side (the module's docstring)."""

    def __init__(self, app: "App", conn: tornado.httputil.HTTPConnection) -> None:
        self.app = app
        self.conn = conn
        self.chunks: list[bytes] = []
        self.start_line = None

    def headers_received(self, start_line, headers):
        self.start_line = start_line
        self.app.calls.append(("headers", start_line.path))
        if start_line.path == "/raise-in-headers":
            raise RuntimeError("a bug in headers_received")
        if start_line.path == "/early":  # answers before its body is read
            http1.write_reply(self.conn, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
        return None

    def data_received(self, chunk):
        self.chunks.append(chunk)
        self.app.calls.append(("data", len(chunk)))
        return None

    def finish(self):
        self.app.calls.append(("finish", b"".join(self.chunks)))
        if self.start_line.path == "/raise-in-finish":
            raise RuntimeError("a bug in finish")
        body = b"%s %s %s" % (self.start_line.method.encode(), self.start_line.path.encode(), b"".join(self.chunks))
        http1.write_reply(self.conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def on_connection_close(self):
        self.app.calls.append(("closed", self.start_line.path if self.start_line else None))


class App(tornado.httputil.HTTPServerConnectionDelegate):
    """Both sides (the module's docstring); ``calls`` records them in order, ``connections``
    the ``(server connection, request connection)`` of each request on Tornado's side."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.connections: list = []

    def start_request(self, server_conn, request_conn):
        self.connections.append((server_conn, request_conn))
        return Recorder(self, request_conn)

    @staticmethod
    def fast_accepts(start_line):
        return start_line.path.startswith("/fast")

    def fast_request(self, conn, start_line, headers, body, extra):
        path = start_line.path
        self.calls.append(("fast", path, body))
        if path == "/fast/raise":
            raise RuntimeError("a bug in the fast delegate")
        answer = b"x" * BIG if path == "/fast/big" else b"fast %s %s" % (path.encode(), body)
        reply = b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(answer), answer)
        if path == "/fast/later":
            asyncio.get_running_loop().call_later(0.05, conn.reply, reply)
        else:
            conn.reply(reply)


async def reply(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next response on ``reader``: (head, body by its ``Content-Length``), 5 s at most."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await asyncio.wait_for(reader.readexactly(length), 5)
