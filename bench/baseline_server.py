#!/usr/bin/env python3
"""The baseline of the poll benchmark: a bare Tornado handler on the same core as pep.py.

``POST /`` reads the ``osu-token`` header and answers 200 with an empty body; ``GET /`` answers
200 (readiness probe). No gzip transform, no logging of requests. ``--uvloop`` runs it on uvloop
(bench/.deps must be on PYTHONPATH). Stops on SIGTERM/SIGINT.

Attribution options (``bench/poll.py --profile`` uses them to split the gap between this
baseline and pep.py into its Tornado-level parts; each adds one thing pep.py's handler has):

* ``--gzip``:   the application has Tornado's GZipContentEncoding transform (level 6, min 512);
* ``--header``: ``set_default_headers`` sets ``cho-protocol: 19`` (as ``handlers/main.py``);
* ``--async``:  ``post`` is an ``async def`` (a coroutine per request, as ``handlers/main.py``);
* ``--lookup``: the token is looked up in a dict of 1,000 entries and an object attribute set.

And the second baseline of the poll targets, which removes something: ``--delegate`` answers
from a bare ``tornado.httputil.HTTPServerConnectionDelegate`` / ``HTTPMessageDelegate`` pair on
Tornado's HTTP server (no Application, routing, RequestHandler, transforms): it reads the
``osu-token`` header and answers 200 with an empty body through ``write_headers``, the floor of
what a request costs on Tornado's HTTP layer (pep.py's ``POST /`` runs on that layer too,
``handlers/bancho.py``).

Usage: ``python bench/baseline_server.py --port 5099 [--uvloop] [--gzip] [--header] [--async] [--lookup]
[--delegate]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import tornado.httpserver
import tornado.httputil
import tornado.web


class PollHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")

    def post(self) -> None:
        self.request.headers.get("osu-token")


class _Session:
    __slots__ = ("last_seen",)

    def __init__(self) -> None:
        self.last_seen = 0.0


def make_handler(header: bool, is_async: bool, lookup: bool) -> type:
    import time

    sessions = {f"00000000-0000-4000-8000-{i:012d}": _Session() for i in range(1000)}

    def body(self) -> None:
        token = self.request.headers.get("osu-token")
        if lookup:
            session = sessions.get(token)
            if session is not None:
                session.last_seen = time.monotonic()

    namespace: dict = {"get": PollHandler.get}
    if header:
        namespace["set_default_headers"] = lambda self: self.set_header("cho-protocol", str(19))
    if is_async:
        async def post(self) -> None:
            body(self)
        namespace["post"] = post
    else:
        namespace["post"] = body
    return type("VariantHandler", (tornado.web.RequestHandler,), namespace)


class _Delegate(tornado.httputil.HTTPMessageDelegate):
    """One request on the bare HTTP layer: read the header, answer 200 with an empty body."""

    def __init__(self, connection) -> None:
        self.connection = connection

    def headers_received(self, start_line, headers) -> None:
        headers.get("osu-token")

    def data_received(self, chunk) -> None:
        pass

    def finish(self) -> None:
        self.connection.write_headers(tornado.httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
                                      tornado.httputil.HTTPHeaders({"Content-Length": "0"}))
        self.connection.finish()


class _DelegateApp(tornado.httputil.HTTPServerConnectionDelegate):
    def start_request(self, server_conn, request_conn):
        return _Delegate(request_conn)


async def serve(port: int, gzip: bool = False, header: bool = False, is_async: bool = False,
                lookup: bool = False, delegate: bool = False) -> None:
    if delegate:
        server = tornado.httpserver.HTTPServer(_DelegateApp())
        server.listen(port, address="127.0.0.1")
        await _wait_for_signal()
        server.stop()
        return
    handler = make_handler(header, is_async, lookup) if (header or is_async or lookup) else PollHandler
    transforms = []
    if gzip:
        class GZip(tornado.web.GZipContentEncoding):
            GZIP_LEVEL = 6
            MIN_LENGTH = 512

        transforms.append(GZip)
    app = tornado.web.Application([(r"/", handler)], transforms=transforms or None)
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, address="127.0.0.1")
    await _wait_for_signal()
    server.stop()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--header", action="store_true")
    parser.add_argument("--async", dest="is_async", action="store_true")
    parser.add_argument("--lookup", action="store_true")
    parser.add_argument("--delegate", action="store_true")
    args = parser.parse_args()
    logging.getLogger("tornado.access").disabled = True
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(serve(args.port, args.gzip, args.header, args.is_async, args.lookup, args.delegate))


if __name__ == "__main__":
    main()
