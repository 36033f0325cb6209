"""The Bancho endpoint ``POST /`` below ``tornado.web`` (docs/architecture.md, "The path of a poll").

A connection of the HTTP server starts on its fast side (helpers/httpfast.py): a ``POST /`` in
the strict common form is read there and given to :meth:`BanchoServer.fast_request`, with no
``IOStream``, no routing, no ``RequestHandler`` and no output transforms. Any other request hands
the connection over to Tornado's HTTP server (``HTTP1Connection`` with helpers/http1.py), which
reads and checks it as before (chunked bodies, ``Expect: 100-continue``, malformed heads, size
limits): there :class:`BanchoServer` is the connection delegate, answering ``POST /`` from a
:class:`BanchoRequest` and handing every other request (``GET /``, the API, ``/metrics``) to the
``tornado.web.Application`` unchanged. Both sides answer through :meth:`BanchoServer.answer`
(an :class:`Exchange`): a prebuilt header block, gzip done here.

The login and poll semantics live in the body-level functions :func:`poll` and :func:`login`,
used by this delegate and by ``handlers.main.MainHandler.post`` alike.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import time
from typing import Any, Awaitable

import tornado
import tornado.httpclient
import tornado.httputil
import tornado.web

from constants import game
from events import HANDLERS, RESTRICTED_ALLOWED
from helpers import codec, gzparts, http1, httphead
from helpers.gzparts import PartsGzip
from objects.state import State
from objects.token import Token
from services import login as login_service, session

log = logging.getLogger("pep.bancho")
access_log = logging.getLogger("tornado.access")

UNKNOWN_TOKEN_NOTICE = "You don't seem to be logged in anymore. This is common after a server restart; reconnecting..."
# the answer to an unknown token (docs/protocol.md §1.5), encoded once: after a restart every client
# polls with a token this process does not know
RECONNECT_REPLY = codec.notification(UNKNOWN_TOKEN_NOTICE) + codec.restart(0)

#: the header of a poll forwarded by another node of a cluster (never forwarded again)
FORWARDED = "pep-forwarded"
#: seconds a forwarded poll may take
FORWARD_TIMEOUT = 10.0

#: replies shorter than this (bytes) are sent uncompressed: under one TCP segment of an Ethernet
#: path (MSS 1460 bytes less the reply's headers) a reply takes one packet either way, and
#: compressing it cost about 11 us per poll (a poll of a busy #osu, docs/decisions.md)
GZIP_MIN_LENGTH = 1200


def process_frames(state: State, token: Token, body: bytes) -> int:
    """Run every frame of ``body`` for ``token``; returns how many frames were handled.

    Malformed payloads, unknown ids and failures of a handler are logged and skipped; the
    remaining frames are still processed (spec README, decision 4).
    """
    limits = state.cfg.limits
    frames, problems = codec.read_frames(body, limits.max_frames, limits.max_payload)
    if problems:
        log.info("poll user=%d: dropped %d malformed/truncated byte(s) or frame(s)", token.user_id, problems)
    handled = 0
    counters = state.poll_counters
    token.poll_flags = 0  # what a poll answers at most once (docs/security.md)
    cluster = state.cluster
    for packet_id, payload in frames:
        if token.logged_out:
            break
        handler = HANDLERS.get(packet_id)
        counters.count_packet(packet_id, handler is not None)
        if handler is None:
            log.debug("poll user=%d: unknown packet %d (%d bytes)", token.user_id, packet_id, len(payload))
            continue
        if token.restricted and packet_id not in RESTRICTED_ALLOWED:
            log.debug("poll user=%d: packet %d refused (restricted)", token.user_id, packet_id)
            continue
        # a cluster: a packet about a match of another node goes to that node (docs/cluster.md)
        if cluster is not None and packet_id in cluster.routed and cluster.route(token, packet_id, payload):
            handled += 1
            continue
        try:
            handler(state, token, payload)
        except codec.PacketError as exc:
            log.info("poll user=%d: malformed packet %d: %s", token.user_id, packet_id, exc)
        except Exception:
            log.exception("poll user=%d: packet %d handler failed", token.user_id, packet_id)
        handled += 1
    return handled


def poll(state: State, token_string: str, body: bytes) -> bytes:
    """One poll of the session ``token_string`` (the ``osu-token`` header) with request ``body``.

    Returns the reply body (possibly empty): the session's queued packets after every frame of
    ``body`` ran; for an unknown token the reconnect notice and ``86 Restart``; for a token that
    was kicked since its last poll its final packets, once (docs/protocol.md §1.5). Never raises for
    anything a client sends (handler failures are logged by :func:`process_frames`).
    """
    started = time.perf_counter()
    token = state.tokens.get(token_string)
    if token is None:
        state.poll_counters.count_request("unknown_token")
        kicked = state.kicked.pop(token_string, None)
        if kicked is not None:
            return kicked[0].drain()
        return RECONNECT_REPLY
    token.last_seen = time.monotonic()
    token.catch_up()  # the world's broadcasts first (objects/stream.py BroadcastLog); may overflow
    if token.overflowed:  # its queue grew past [limits] max_queue: it lost packets, start over
        session.logout(state, token)
        return RECONNECT_REPLY
    state.poll_counters.count_request("poll")
    process_frames(state, token, body)
    data = token.drain()
    if token.kicked:  # kicked during its own poll: its final packets go out now
        state.kicked.pop(token.token, None)
    state.poll_counters.observe_poll(time.perf_counter() - started)
    return data


async def login(state: State, body: bytes, ip: str) -> tuple[str, list[bytes]]:
    """A login request (``POST /`` without ``osu-token``) from address ``ip``.

    Returns ``(cho-token header value, reply body as its parts)``; the header is
    ``login-failed`` when the login was refused (the reply then carries the negative code).
    The parts are shared ``bytes`` (``b"".join`` them; a gzip reply compresses the large shared
    ones once: helpers/gzparts.py). Never raises (``services.login.login_parts``).
    """
    state.poll_counters.count_request("login")
    state.logins_in_flight += 1  # a hand-over waits for these (services/handover.py)
    try:
        token, reply = await login_service.login_parts(state, body, ip)
    finally:
        state.logins_in_flight -= 1
    return (token.token if token is not None else "login-failed"), reply


def client_ip(state: State, headers: tornado.httputil.HTTPHeaders, remote_ip: str | None) -> str:
    """The client's address: the configured proxy header (``[server] ip_header``, its last
    comma-separated element) when it holds a valid address, else the peer address ``remote_ip``."""
    header = state.cfg.server.ip_header
    value = headers.get(header, "") if header else ""
    value = value.split(",")[-1].strip()
    if value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            log.debug("ignoring malformed %s header", header)
    return remote_ip or ""


#: largest body of a poll whose token is unknown (its answer is the restart packet whatever it
#: holds; a client back after a restart sends what it queued, which is small)
UNKNOWN_TOKEN_BODY = 64 * 1024
#: largest body of any other request (the API and /metrics are GET only)
OTHER_BODY = 4096


def body_limit(state: State):
    """The per-request body limit for :class:`helpers.netlimits.GuardedHTTPServer`
    (docs/security.md, Hardening II): ``f(start_line, headers) -> bytes``.

    ``POST /`` with the token of an online session: ``[server] max_body`` (a poll); with an
    unknown token: :data:`UNKNOWN_TOKEN_BODY`; without a token (a login):
    ``services.login.MAX_BODY``; anything else: :data:`OTHER_BODY`. A dict lookup per request.
    """
    poll_limit = state.cfg.server.max_body
    by_token = state.tokens.by_token
    login_limit = login_service.MAX_BODY

    def limit(start_line, headers) -> int:
        if start_line.method == "POST" and start_line.path.partition("?")[0] == "/":
            token = headers.get("osu-token")
            if token is None:
                return login_limit
            return poll_limit if token in by_token else UNKNOWN_TOKEN_BODY
        return OTHER_BODY

    return limit


class BanchoServer(tornado.httputil.HTTPServerConnectionDelegate):
    """The server's connection delegate: ``POST /`` here, everything else to ``app``.

    ``state`` is the server's :class:`State`, ``app`` the ``tornado.web.Application`` of
    ``handlers.app.make_app``. Pass it to :class:`helpers.netlimits.GuardedHTTPServer` both as
    the delegate and as ``fast=``: ``POST /`` in the common form is then answered on the
    connection's fast side (:meth:`fast_request`, helpers/httpfast.py), anything else through
    Tornado's HTTP/1 layer (:meth:`start_request`), where ``POST /`` still comes here
    (:class:`BanchoRequest`); the server's limits (body sizes, header size, deadlines) apply to
    both. The reply header block is built once per second (its ``Date``); replies of at least
    ``GZIP_MIN_LENGTH`` bytes are gzipped at ``[server] gzip_level`` when ``[server] gzip`` is on
    and the client sends ``Accept-Encoding: gzip``.
    """

    def __init__(self, state: State, app: tornado.web.Application) -> None:
        self.state = state
        self.app = app
        server = state.cfg.server
        self.gzip_level = server.gzip_level if server.gzip else 0
        self.gzip_parts = PartsGzip(self.gzip_level or 1)  # login replies (respond_parts)
        fixed = (
            "HTTP/1.1 200 OK\r\n"
            f"Server: TornadoServer/{tornado.version}\r\n"
            "Content-Type: text/html; charset=UTF-8\r\n"
            f"cho-protocol: {game.PROTOCOL_VERSION}\r\n"
            + ("Vary: Accept-Encoding\r\n" if server.gzip else "")
        ).encode("latin-1")
        self._fixed = fixed
        self._second = -1
        self.head = b""  # fixed + Date, rebuilt by head_now() once a second

    def head_now(self) -> bytes:
        """The header block up to (not including) the per-reply headers, with a current ``Date``."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self.head = self._fixed + b"Date: " + email.utils.formatdate(second, usegmt=True).encode() + b"\r\n"
        return self.head

    # ---------------------------------------------------------------- the two sides
    def start_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection) -> "BanchoRequest":
        """Tornado hook: one delegate per request of a connection."""
        return BanchoRequest(self, server_conn, request_conn)

    @staticmethod
    def fast_accepts(start_line: tornado.httputil.RequestStartLine) -> bool:
        """helpers/httpfast.py hook: ``POST /`` (any query string) is answered on the fast side."""
        path = start_line.path
        return start_line.method == "POST" and (path == "/" or path.startswith("/?"))

    def fast_request(self, conn: Any, start_line: tornado.httputil.RequestStartLine,
                     headers: tornado.httputil.HTTPHeaders, body: bytes, extra: bytes) -> None:
        """helpers/httpfast.py hook: one ``POST /`` of a fast connection ``conn``."""
        exchange = FastExchange(conn, headers, extra)
        if access_log.isEnabledFor(logging.DEBUG):
            exchange.started = time.perf_counter()
        self.answer(exchange, body)

    # ---------------------------------------------------------------- answering
    def answer(self, exchange: "Exchange", body: bytes) -> None:
        """Answer one complete ``POST /``: a poll now, a login when its checks are done."""
        state = self.state
        headers = exchange.headers
        token_string = headers.get("osu-token")
        if token_string is None:
            state.spawn(self._login(exchange, body), "login")
            return
        try:
            reply = poll(state, token_string, body)
        except Exception:
            log.exception("poll failed")
            self.fail(exchange)
            return
        if reply is RECONNECT_REPLY and state.cluster is not None and FORWARDED not in headers:
            # a cluster: the token may be another live node's (docs/cluster.md, "Routing")
            address = state.cluster.owner_address(token_string)
            if address is not None:
                log.debug("poll forwarded to %s", address)
                state.spawn(self._forward(exchange, address, token_string, body), "forwarded poll")
                return
        if state.cluster is not None and state.cluster.outgoing():
            # the events this poll queued for the other nodes leave first: the idle writer task
            # was woken before this callback is scheduled, so the answer (whose write wakes the
            # client, which may take the core) cannot delay their publication (docs/cluster.md,
            # "Latency")
            asyncio.get_running_loop().call_soon(self.respond, exchange, reply)
            return
        self.respond(exchange, reply)

    async def _forward(self, exchange: "Exchange", address: str, token_string: str, body: bytes) -> None:
        """Answer a poll whose session lives on the node at ``address`` (``host:port``) with
        that node's answer (the same body, the ``osu-token`` and :data:`FORWARDED` headers);
        the reconnect reply when that node does not answer 200 within
        :data:`FORWARD_TIMEOUT` seconds."""
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(
                f"http://{address}/", method="POST", body=body, raise_error=False,
                headers={"osu-token": token_string, FORWARDED: "1"},
                connect_timeout=FORWARD_TIMEOUT, request_timeout=FORWARD_TIMEOUT)
            reply = response.body if response.code == 200 else RECONNECT_REPLY
        except Exception as exc:  # the node is gone: the client logs in again
            log.info("forwarded poll to %s failed: %s", address, exc)
            reply = RECONNECT_REPLY
        self.respond(exchange, reply)

    async def _login(self, exchange: "Exchange", body: bytes) -> None:
        try:
            ip = client_ip(self.state, exchange.headers, exchange.peer_ip())
            cho_token, reply = await login(self.state, body, ip)
        except Exception:
            log.exception("login failed")
            self.fail(exchange)
            return
        self.respond_parts(exchange, reply, b"cho-token: " + cho_token.encode("latin-1") + b"\r\n")

    def respond(self, exchange: "Exchange", reply: bytes) -> None:
        """Send ``200`` with the prebuilt header block, the exchange's extra header lines and
        ``reply`` (gzipped when large enough and accepted)."""
        if not exchange.alive():  # the client left during a login
            return
        extra = exchange.extra
        if (len(reply) >= GZIP_MIN_LENGTH and self.gzip_level
                and "gzip" in exchange.headers.get("Accept-Encoding", "")):
            reply = gzparts.gzip(reply, self.gzip_level)
            extra += b"Content-Encoding: gzip\r\n"
        exchange.send(b"%s%sContent-Length: %d\r\n\r\n%s" % (self.head_now(), extra, len(reply), reply))
        if exchange.started:
            self.log(exchange, 200)

    def respond_parts(self, exchange: "Exchange", parts: list[bytes], extra: bytes) -> None:
        """:meth:`respond` for a reply given as its parts (a login) with the header lines
        ``extra`` first: gzipped by the server's :class:`helpers.gzparts.PartsGzip`, which
        compresses the shared presence chunks once."""
        if not exchange.alive():  # the client left during a login
            return
        extra += exchange.extra
        size = sum(map(len, parts))
        if (size >= GZIP_MIN_LENGTH and self.gzip_level
                and "gzip" in exchange.headers.get("Accept-Encoding", "")):
            reply = self.gzip_parts.compress(parts)
            extra += b"Content-Encoding: gzip\r\n"
        else:
            reply = b"".join(parts)
        exchange.send(b"%s%sContent-Length: %d\r\n\r\n%s" % (self.head_now(), extra, len(reply), reply))
        if exchange.started:
            self.log(exchange, 200)

    def fail(self, exchange: "Exchange") -> None:
        """A bug, not a client error: answer 500 (empty) like ``tornado.web`` would."""
        if not exchange.alive():
            return
        exchange.send(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n" + exchange.extra + b"\r\n")
        self.log(exchange, 500)

    @staticmethod
    def log(exchange: "Exchange", status: int) -> None:
        """The access log line of ``handlers.app.log_request`` (no query string)."""
        level = logging.DEBUG if status < 400 else logging.ERROR
        if access_log.isEnabledFor(level):
            elapsed = 1000.0 * (time.perf_counter() - exchange.started) if exchange.started else 0.0
            access_log.log(level, "%d POST / (%s) %.2fms", status, exchange.peer_ip() or "", elapsed)


class Exchange:
    """One ``POST /`` being answered, whichever side of the connection read it: ``headers``
    (Tornado's ``HTTPHeaders``), ``extra`` (the ``Connection`` header line the reply carries,
    ``b""`` for none), ``started`` (``perf_counter`` seconds when the access log is on, else 0),
    and how to reach the client (:meth:`send`, :meth:`alive`, :meth:`peer_ip`)."""

    __slots__ = ()
    headers: tornado.httputil.HTTPHeaders
    extra: bytes
    started: float

    def send(self, data: bytes) -> None:
        """Write the whole response ``data`` and finish the request."""
        raise NotImplementedError

    def alive(self) -> bool:
        """Whether the client is still connected."""
        raise NotImplementedError

    def peer_ip(self) -> str | None:
        """The peer address of the connection (before any proxy header)."""
        raise NotImplementedError


class FastExchange(Exchange):
    """A ``POST /`` read by a :class:`helpers.httpfast.FastConnection` ``conn``."""

    __slots__ = ("conn", "headers", "extra", "started")

    def __init__(self, conn: Any, headers: tornado.httputil.HTTPHeaders, extra: bytes) -> None:
        self.conn = conn
        self.headers = headers
        self.extra = extra
        self.started = 0.0

    def send(self, data: bytes) -> None:
        self.conn.reply(data)

    def alive(self) -> bool:
        conn = self.conn
        return not (conn.closed or conn.handed)

    def peer_ip(self) -> str | None:
        return self.conn.remote_ip


class BanchoRequest(tornado.httputil.HTTPMessageDelegate, Exchange):
    """One request on a Tornado-served connection of :class:`BanchoServer` (Tornado calls the
    hooks in order: ``headers_received``, ``data_received`` per body chunk, then ``finish``, or
    ``on_connection_close`` when the client goes away first)."""

    __slots__ = ("server", "server_conn", "conn", "other", "headers", "chunks", "extra", "started")

    def __init__(self, server: BanchoServer, server_conn: object, conn: Any) -> None:
        self.server = server
        self.server_conn = server_conn
        self.conn = conn
        self.other: tornado.httputil.HTTPMessageDelegate | None = None
        self.headers: tornado.httputil.HTTPHeaders | None = None  # type: ignore[assignment]
        self.chunks: list[bytes] = []
        self.extra = b""
        self.started = 0.0

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        """Keep ``POST /`` (any query string); hand anything else to the application."""
        if not BanchoServer.fast_accepts(start_line):
            other = self.other = self.server.app.start_request(self.server_conn, self.conn)
            return other.headers_received(start_line, headers)
        self.headers = headers
        # what Tornado's write_headers would add: tell the client whether the connection stays
        # open after this reply (Tornado itself decides whether it does)
        self.extra = httphead.keep_alive(start_line.version, headers)[1]
        if access_log.isEnabledFor(logging.DEBUG):
            self.started = time.perf_counter()
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """A piece of the body (Tornado has already checked it against the body size limit)."""
        if self.other is not None:
            return self.other.data_received(chunk)
        self.chunks.append(chunk)
        return None

    def on_connection_close(self) -> None:
        """The client went away before the request was complete: drop what was read."""
        if self.other is not None:
            self.other.on_connection_close()
            return
        self.chunks = []

    def finish(self) -> None:
        """The request is complete: :meth:`BanchoServer.answer` (or the application's)."""
        if self.other is not None:
            self.other.finish()
            return
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.server.answer(self, body)

    def send(self, data: bytes) -> None:
        http1.write_reply(self.conn, data)

    def alive(self) -> bool:
        stream = self.conn.stream
        return stream is not None and not stream.closed()

    def peer_ip(self) -> str | None:
        return getattr(self.conn.context, "remote_ip", None)
