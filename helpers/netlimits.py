"""Connection-level limits of the HTTP server (docs/security.md, "Hardening II: network and services").

:class:`GuardedHTTPServer` is Tornado's ``HTTPServer`` with what an outsider must not be able to
exhaust bounded, below any handler (so a custom connection delegate can use it unchanged):

* **descriptors**: when the process runs out of descriptors (EMFILE, ENFILE, ENOBUFS,
  ENOMEM) the accept loop first closes up to :data:`SHED_BATCH` of the connections that have
  waited longest (at least :data:`SHED_MIN_AGE` seconds) for a request's headers (idle
  keep-alive or slowloris: a client that is polling is never waiting long) and accepts again;
  with nothing to close it backs off for :data:`ACCEPT_BACKOFF` seconds instead of being woken
  again at once for the same waiting connection (13,000 failed accepts a second were seen).
  One warning per :data:`WARN_INTERVAL` seconds carries the counts. :func:`raise_nofile_limit`
  raises the soft ``RLIMIT_NOFILE`` to the hard one at start-up;
* **connections per address**: at most ``max_per_address`` open connections per client
  address (IPv6 by /64, :func:`address_key`); past it a new connection is closed at once.
  Addresses in ``exempt`` (the reverse proxy) are not limited;
* **request bodies**: ``body_limit(start_line, headers)`` chooses the largest body of each
  request from its headers (Tornado's ``HTTP1Connection.set_max_body_size``; a larger
  ``Content-Length`` is answered 400 and the connection closed), and the bytes held by bodies
  not yet complete are capped in total by ``max_pending``: past it the connection that
  receives more is closed;
* **idle connections, slow headers and slow bodies**: a connection waiting for a request's
  headers longer than ``idle_connection_timeout`` seconds (idle keep-alive, slowloris) and a
  request whose body is not complete ``body_timeout`` seconds after its headers are closed by
  one sweep every :func:`sweep_interval` seconds over two lists kept in arrival order (each
  sweep stops at the first connection not yet due). Tornado would arm two timers per request
  for the same rules (``gen.with_timeout`` around the header and body reads), which cost about
  a fifth of an idle poll's CPU (bench/README.md, "Performance II"); it is told that there is
  no timeout, so a deadline is late by at most one sweep interval.

With a fast delegate (``fast=``), a connection starts as a :class:`helpers.httpfast.FastConnection`
(requests in the common form answered below Tornado's ``IOStream``), which uses the lists and
counts above like any connection and hands itself over to :meth:`GuardedHTTPServer.serve_handed`
for anything else. Tornado's connections are served by :class:`helpers.http1.ServerConnection`
(Tornado's request loop, shorter for the common case, which reads request heads with
:mod:`helpers.httphead`). Only the standard library, Tornado and those modules are used;
nothing here knows the Bancho protocol.
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import resource
import socket
import time
from typing import Any, Awaitable, Callable, Iterable

import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.iostream

from helpers import http1, httpfast

log = logging.getLogger("pep.net")

#: seconds the accept loop pauses when the process has no descriptor left
ACCEPT_BACKOFF = 0.1
#: connections accepted per readiness event at most (the others wait for the next turn)
ACCEPT_BATCH = 128
#: connections waiting for headers closed at most per descriptor shortage
SHED_BATCH = 16
#: seconds a connection must have waited for headers before it may be closed for a newcomer
SHED_MIN_AGE = 1.0
#: seconds between two warnings about the same kind of refusal
WARN_INTERVAL = 10.0
#: a soft RLIMIT_NOFILE below this many descriptors gets a warning at start-up
MIN_OPEN_FILES = 4096
#: bounds of the seconds between two deadline sweeps (:func:`sweep_interval`)
SWEEP_MIN, SWEEP_MAX = 0.1, 1.0

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

BodyLimit = Callable[[tornado.httputil.RequestStartLine, tornado.httputil.HTTPHeaders], "int | None"]


def address_key(ip: str) -> str:
    """The key under which per-address limits count ``ip``: an IPv4 address as is, an IPv6
    address by its /64 (a line or a host usually owns a whole /64), an IPv4-mapped IPv6 address
    as the IPv4 one; anything else (a Unix socket, '') unchanged. Source: ``ipaddress``."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or networks -> networks; raises ValueError for a bad one."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


class AddressCounts:
    """Open connections per client address against one cap: the per-address rule of the HTTP
    server (:class:`GuardedHTTPServer`) and of the TCP listener (``handlers/tcp.py``), one
    instance each (docs/security.md, "Hardening II: network and services").

    * ``limit`` (int, 0 = no limit): open connections per address, ``[server]
      max_connections_per_ip``;
    * ``exempt`` (iterable of ``ip_network``): addresses the cap never applies to, ``[server]
      connection_limit_exempt`` (:func:`parse_networks`);
    * ``open``: :func:`address_key` -> open connections counted under it (a key leaves the
      dict with its last connection, so an empty dict means none is counted).

    The owner decides which connections it counts (:meth:`add` / :meth:`release`) and asks
    :meth:`limited` and :meth:`at_limit` before it counts a new one.
    """

    __slots__ = ("limit", "exempt", "open")

    def __init__(self, limit: int = 0, exempt: Iterable[Any] = ()) -> None:
        self.limit = limit
        self.exempt = list(exempt)
        self.open: dict[str, int] = {}

    def exempted(self, ip: str) -> bool:
        """Whether ``ip`` (an address string) is in one of the exempt networks; an address that
        does not parse (a Unix socket, '') is not."""
        if not self.exempt:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.exempt)

    def limited(self, ip: str) -> bool:
        """Whether the cap applies to a connection from ``ip``: a limit is set, the address is
        known (not '') and not exempt."""
        return bool(self.limit and ip and not self.exempted(ip))

    def at_limit(self, key: str) -> bool:
        """Whether ``limit`` connections are already open under ``key`` (a new one is refused)."""
        return self.open.get(key, 0) >= self.limit

    def add(self, key: str) -> None:
        """Count one more open connection under ``key``."""
        self.open[key] = self.open.get(key, 0) + 1

    def release(self, key: str) -> None:
        """Count one connection under ``key`` less (a key not counted stays absent)."""
        left = self.open.get(key, 1) - 1
        if left > 0:
            self.open[key] = left
        else:
            self.open.pop(key, None)


def sweep_interval(*timeouts: float | None) -> float:
    """Seconds between two deadline sweeps for the given timeouts (seconds, None = none): a
    quarter of the shortest, within [:data:`SWEEP_MIN`, :data:`SWEEP_MAX`], so a connection is
    closed at most that long after its deadline; :data:`SWEEP_MAX` when no timeout is set."""
    given = [t for t in timeouts if t is not None and t > 0]
    if not given:
        return SWEEP_MAX
    return min(SWEEP_MAX, max(SWEEP_MIN, min(given) / 4))


def raise_nofile_limit(minimum: int = MIN_OPEN_FILES) -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` (open descriptors) to the hard limit; warn when the
    result is below ``minimum``. Returns (soft, hard) after the change; never raises (a
    platform without ``resource`` limits gives (-1, -1)). Source: getrlimit(2)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as exc:
                log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    except (ValueError, OSError, AttributeError) as exc:
        log.warning("cannot read the open-file limit: %s", exc)
        return -1, -1
    if soft != resource.RLIM_INFINITY and soft < minimum:
        log.warning("open-file limit is %d (hard limit %d): each connection takes one; raise it to at "
                    "least %d (LimitNOFILE= in the systemd unit, docs/security.md)", soft, hard, minimum)
    return soft, hard


class Throttle:
    """Counts events and logs one warning per ``interval`` seconds with how many happened.

    ``Throttle("refused %d connection(s) ...")``: the message gets the count as its first
    argument, then the arguments of the call that logs.
    """

    def __init__(self, message: str, interval: float = WARN_INTERVAL, logger: logging.Logger = log) -> None:
        self.message = message
        self.interval = interval
        self.logger = logger
        self.count = 0  # events since the last warning
        self.total = 0  # events ever
        self._last = float("-inf")

    def hit(self, *args: Any) -> None:
        """Count one event; log when ``interval`` seconds passed since the last warning."""
        self.count += 1
        self.total += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.logger.warning(self.message, self.count, *args)
            self.count = 0


class LogThrottle(logging.Filter):
    """A logging filter that lets through one record per message template per ``interval``
    seconds and notes how many were suppressed in the next one it lets through. Used on Tornado's
    ``tornado.general`` logger, which logs one line per malformed request or slow body (an
    attacker could otherwise fill the disk). Memory: one entry per distinct template."""

    def __init__(self, interval: float = WARN_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[Any, list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        entry = self._seen.get(record.msg)
        now = time.monotonic()
        if entry is None:
            if len(self._seen) < 1000:
                self._seen[record.msg] = [now, 0]
            return True
        if now - entry[0] < self.interval:
            entry[1] += 1
            return False
        suppressed = int(entry[1])
        entry[0], entry[1] = now, 0
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar message(s) suppressed]"
        return True


def install_log_throttle(names: Iterable[str] = ("tornado.general",), interval: float = WARN_INTERVAL) -> None:
    """Put a :class:`LogThrottle` on each named logger."""
    for name in names:
        logging.getLogger(name).addFilter(LogThrottle(interval))


class _BodyGuard(tornado.httputil.HTTPMessageDelegate):
    """Wraps the request delegate: sets the body limit from the headers and counts the bytes
    of the incomplete body against the server's total."""

    __slots__ = ("server", "inner", "conn", "held", "server_conn")

    def __init__(self, server: "GuardedHTTPServer", inner: tornado.httputil.HTTPMessageDelegate,
                 conn: tornado.httputil.HTTPConnection, server_conn: object) -> None:
        self.server = server
        self.inner = inner
        self.conn = conn
        self.held = 0
        self.server_conn = server_conn

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        server = self.server
        server_conn = self.server_conn
        server.waiting.pop(server_conn, None)  # a request is under way: not idle
        server.in_body[server_conn] = time.monotonic()  # its body is due within body_timeout
        limit_of = server.body_limit
        if limit_of is not None:
            limit = limit_of(start_line, headers)
            if limit is not None:
                self.conn.set_max_body_size(limit)  # type: ignore[attr-defined]
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        server = self.server
        size = len(chunk)
        self.held += size
        server.pending_bytes += size
        if server.pending_bytes > server.max_pending:
            server.pending_refused.hit(server.max_pending)
            self._release()
            self.conn.close()  # the next read fails quietly; the delegate hears on_connection_close
            return None
        return self.inner.data_received(chunk)

    def _release(self) -> None:
        if self.held:
            self.server.pending_bytes -= self.held
            self.held = 0

    def finish(self) -> None:
        self.server.in_body.pop(self.server_conn, None)
        self._release()
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.server.in_body.pop(self.server_conn, None)
        self._release()
        self.inner.on_connection_close()


class GuardedHTTPServer(tornado.httpserver.HTTPServer):
    """``HTTPServer`` with the limits of this module. Keyword arguments on top of Tornado's:

    * ``max_per_address`` (int, 0 = no limit): open connections per client address;
    * ``exempt`` (iterable of ``ip_network``): addresses never limited per address;
    * ``body_limit`` (callable or None): largest body in bytes for a request, from its start
      line and headers; None = Tornado's ``max_body_size`` for every request;
    * ``max_pending`` (int bytes): total of incomplete request bodies held at once.

    Tornado's ``idle_connection_timeout`` and ``body_timeout`` (seconds, None = none) keep their
    meaning but are enforced by :meth:`sweep`, not by Tornado's timers (the module's docstring).

    Counters for tests and metrics: ``addresses`` (:class:`AddressCounts`, only the connections
    the cap applies to), ``refused_connections.total``, ``accept_pauses.total``, ``pending_bytes``,
    ``timed_out`` (connections closed by a deadline).
    """

    def initialize(self, request_callback: Any, max_per_address: int = 0, exempt: Iterable[Any] = (),
                   body_limit: BodyLimit | None = None, max_pending: int = 1 << 62,
                   idle_connection_timeout: float | None = None, body_timeout: float | None = None,
                   fast: httpfast.FastDelegate | None = None, **kwargs: Any) -> None:
        super().initialize(request_callback, **kwargs)
        # the delegate of the requests served below IOStream (helpers/httpfast.py); None: every
        # connection is Tornado's
        self.fast = fast
        # what HTTPServer.start_request calls for a connection delegate without X-Forwarded-For
        # reading, chosen once instead of by an isinstance check per request
        self._start = (request_callback.start_request
                       if isinstance(request_callback, tornado.httputil.HTTPServerConnectionDelegate)
                       and not self.xheaders else None)
        # Tornado arms no timer per request; the sweep enforces both deadlines
        self.conn_params.header_timeout = None
        self.conn_params.body_timeout = None
        self.header_timeout = idle_connection_timeout
        self.body_timeout = body_timeout
        # connections whose request body is not complete yet -> since when (monotonic), oldest first
        self.in_body: dict[Any, float] = {}
        self.timed_out = 0
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        self.addresses = AddressCounts(max_per_address, exempt)
        self.body_limit = body_limit
        self.max_pending = max_pending
        self.pending_bytes = 0
        # connections waiting for a request's headers -> since when (monotonic), oldest first
        self.waiting: collections.OrderedDict[Any, float] = collections.OrderedDict()
        self._address_of: dict[Any, str] = {}  # stream -> counted address key
        self.refused_connections = Throttle(
            "refused %d connection(s) in the last interval: more than %d open from one address (last: %s)")
        self.accept_pauses = Throttle(
            "out of file descriptors %d time(s) in the last interval (open connections: %d, idle ones "
            "closed for newcomers so far: %d): accepting paused for %.1f s when none could be closed; "
            "raise the open-file limit or lower [server] idle_timeout")
        self.shed_total = 0
        self.pending_refused = Throttle(
            "closed %d connection(s) in the last interval: incomplete request bodies hold more than %d bytes")

    # ---------------------------------------------------------------- accepting
    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Accept on ``sockets`` with the backing-off accept loop (replaces Tornado's handler);
        the first call also starts the deadline sweep."""
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)
        if self._sweeper is None and (self.header_timeout or self.body_timeout):
            interval = sweep_interval(self.header_timeout, self.body_timeout)
            self._sweeper = tornado.ioloop.PeriodicCallback(self.sweep, interval * 1000)
            self._sweeper.start()

    def stop(self) -> None:
        """Stop accepting and stop the deadline sweep (open connections keep going)."""
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        super().stop()

    # ---------------------------------------------------------------- deadlines
    def sweep(self, now: float | None = None) -> int:
        """Close every connection past a deadline: waiting for headers ``idle_connection_timeout``
        seconds or more, or with a body incomplete ``body_timeout`` seconds after its headers.
        ``now`` is ``time.monotonic()`` unless given. Both lists are in arrival order, so the
        work is one look per connection closed plus one; returns how many were closed."""
        if now is None:
            now = time.monotonic()
        closed = 0
        for pending, timeout in ((self.waiting, self.header_timeout), (self.in_body, self.body_timeout)):
            if not timeout:
                continue
            due = now - timeout
            while pending:
                server_conn = next(iter(pending))
                if pending[server_conn] > due:
                    break
                del pending[server_conn]
                stream = getattr(server_conn, "stream", None)
                if stream is not None and not stream.closed():
                    stream.close()  # the read under way fails quietly; Tornado calls on_close
                    closed += 1
        if closed:
            self.timed_out += closed
        return closed

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Start accepting on ``sock``; returns the function that stops it (for ``stop()``)."""
        io_loop = tornado.ioloop.IOLoop.current()
        state = {"reading": True, "stopped": False, "timer": None}

        def resume() -> None:
            state["timer"] = None
            if not state["stopped"] and not state["reading"]:
                state["reading"] = True
                io_loop.add_handler(sock, on_readable, tornado.ioloop.IOLoop.READ)

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(ACCEPT_BATCH):
                if state["stopped"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_DESCRIPTORS:
                        raise
                    self.accept_pauses.hit(len(self._connections), self.shed_total, ACCEPT_BACKOFF)
                    if self._shed_idle():
                        continue  # descriptors were freed: accept the newcomer now
                    # the waiting connection stays in the backlog; wake up later, not at once
                    io_loop.remove_handler(sock)
                    state["reading"] = False
                    state["timer"] = io_loop.call_later(ACCEPT_BACKOFF, resume)
                    return
                self._accepted(connection, address)

        def stop() -> None:
            state["stopped"] = True
            if state["timer"] is not None:
                io_loop.remove_timeout(state["timer"])
            if state["reading"]:
                io_loop.remove_handler(sock)
                state["reading"] = False

        io_loop.add_handler(sock, on_readable, tornado.ioloop.IOLoop.READ)
        return stop

    def _shed_idle(self) -> int:
        """Close up to :data:`SHED_BATCH` connections that have waited at least
        :data:`SHED_MIN_AGE` seconds for a request's headers, oldest first; returns how many."""
        now = time.monotonic()
        shed = 0
        while self.waiting and shed < SHED_BATCH:
            server_conn, since = next(iter(self.waiting.items()))
            if now - since < SHED_MIN_AGE:
                break
            del self.waiting[server_conn]
            stream = getattr(server_conn, "stream", None)
            if stream is not None and not stream.closed():
                stream.close()  # frees the descriptor now; Tornado calls on_close later
                shed += 1
        self.shed_total += shed
        return shed

    # ---------------------------------------------------------------- per address
    def _count(self, address: Any) -> tuple[bool, str | None]:
        """Count a new connection from the peer ``address`` (a tuple, the ip first; anything else
        is not counted) against its address: ``(accepted, counted key or None)``."""
        ip = address[0] if isinstance(address, tuple) and address else ""
        addresses = self.addresses
        if not addresses.limited(ip):
            return True, None
        key = address_key(ip)
        if addresses.at_limit(key):
            self.refused_connections.hit(addresses.limit, key)
            return False, None
        addresses.add(key)
        return True, key

    def _accepted(self, connection: socket.socket, address: Any) -> None:
        """A connection was accepted: served by a :class:`helpers.httpfast.FastConnection` when
        the server has a fast delegate (and no TLS), else by Tornado (``handle_stream``)."""
        if self.fast is None or self.ssl_options is not None:
            self._handle_connection(connection, address)
            return
        accepted, key = self._count(address)
        if not accepted:
            connection.close()
            return
        conn = httpfast.FastConnection(self, address, self.fast)
        if key is not None:
            self._address_of[conn.stream] = key
        self._connections.add(conn)
        self.waiting[conn] = time.monotonic()
        httpfast.connect(conn, connection)

    def handle_stream(self, stream: Any, address: Any) -> None:
        """Count the connection against its address; close it at once past the limit."""
        accepted, key = self._count(address)
        if not accepted:
            stream.close()
            return
        if key is not None:
            self._address_of[stream] = key
        self._serve(stream, address)

    def serve_handed(self, sock: socket.socket, address: Any, data: bytes, key: str | None) -> None:
        """Serve with Tornado a connection a :class:`helpers.httpfast.FastConnection` handed over:
        ``data`` is what it had read and not answered (the stream reads it first), ``key`` the
        address key it was counted under (None: not counted)."""
        stream = tornado.iostream.IOStream(sock, max_buffer_size=self.max_buffer_size,
                                           read_chunk_size=self.read_chunk_size)
        if data:  # Tornado's own buffer (private, stable since Tornado 5): read before the socket
            stream._read_buffer += data
            stream._read_buffer_size += len(data)
        if key is not None:
            self._address_of[stream] = key
        self._serve(stream, address)

    def _serve(self, stream: Any, address: Any) -> None:
        # Tornado's HTTPServer.handle_stream with the connection class of helpers/http1.py
        context = tornado.httpserver._HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = http1.ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def on_close(self, server_conn: Any) -> None:
        """A connection ended: give its place back."""
        self.waiting.pop(server_conn, None)
        self.in_body.pop(server_conn, None)
        key = self._address_of.pop(getattr(server_conn, "stream", None), None)
        if key is not None:
            self.addresses.release(key)
        super().on_close(server_conn)

    # ---------------------------------------------------------------- bodies
    def start_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        """Tornado's delegate, wrapped by the body limits; the connection now waits for headers."""
        self.waiting[server_conn] = time.monotonic()
        self.waiting.move_to_end(server_conn)
        start = self._start
        if start is not None:
            inner = start(server_conn, request_conn)
        else:
            inner = super().start_request(server_conn, request_conn)
        return _BodyGuard(self, inner, request_conn, server_conn)
