"""The raw TCP listener of the osu! builds b20121203 to b20130815 (docs/protocol.md §1.9,
docs/operations.md "The TCP listener").

Those builds do not poll over HTTP: they open one TCP connection to Bancho, write their login
as three text lines (``username``, ``password md5``, ``client info``, each ending in ``\\r\\n``)
and then both sides write packets with the 7-byte header of today (``u16 id, u8 compression,
u32 length``) for as long as the connection lasts.

A TCP session is an ordinary :class:`objects.token.Token` in the same :class:`State` as the HTTP
sessions (token list, channels, matches, spectating). The login itself is
:func:`services.login.login` with the TCP range of builds; the packets go through
:func:`handlers.bancho.process_frames`, the poll's own dispatcher. The only difference is where
the session's queue goes: instead of being returned by a poll, it is written to the socket,
right after the session's own packets ran and for everyone else by :meth:`TcpListener.flush`
every :data:`FLUSH_INTERVAL` seconds.

Limits, the HTTP listener's in TCP form (docs/security.md):

* connections: ``[server] tcp_max_connections`` in all and ``[server] max_connections_per_ip``
  per address (IPv6 by /64; the addresses of ``connection_limit_exempt`` are not limited);
* the login lines: at most :data:`services.login.MAX_BODY` bytes, complete within
  ``[server] body_timeout`` seconds of the connection (a slow or endless login is closed);
* packets: a payload up to ``[limits] max_payload`` is handled; a longer one up to
  ``[server] max_body`` is skipped by its length (as in a poll); a longer one closes the
  connection. Incomplete frames of all connections hold at most ``[server] max_pending_body``
  bytes together;
* idle: the session times out like an HTTP one (``[sessions] timeout``); only whole packets count
  as activity, so a client that trickles a packet byte by byte times out too. A session that
  sent nothing for a quarter of the timeout gets a ping (8), which the client answers with 4;
* output: at most ``[limits] max_queue`` bytes wait to be written to a client that does not
  read; past it the session is logged out and the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import tornado.ioloop
import tornado.iostream
import tornado.netutil
import tornado.tcpserver

from handlers.bancho import process_frames
from helpers import codec, netlimits
from objects.state import ChatListener
from services import login as login_service, session

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.tcp")

#: frame header: u16 id, u8 compression flag, u32 payload length (docs/protocol.md §2.1)
HEADER = 7
#: bytes asked of a socket per read
READ_CHUNK = 1 << 16
#: seconds between two flushes of the TCP sessions' queues
FLUSH_INTERVAL = 0.02
#: seconds between two housekeeping passes (pings)
HOUSEKEEPING_INTERVAL = 1.0
#: seconds a closing connection may take to write its last bytes
CLOSE_GRACE = 5.0
#: seconds a stop waits for the last bytes of the connections to be written
STOP_WAIT = 2.0
#: the notice sent with the restart packet when the listener stops
NOTICE_STOPPING = "Bancho is restarting. You will be reconnected in a few seconds."


class LoginLineError(ValueError):
    """The bytes at the start of a connection are not three login lines within the size bound."""


class FrameError(ValueError):
    """A frame announces a payload larger than anything that may be skipped: the stream is not
    Bancho packets (or an attack), the connection is closed."""


def split_login(buf: bytes | bytearray, limit: int = login_service.MAX_BODY) -> tuple[bytes, int] | None:
    """The three login lines at the start of ``buf`` (docs/protocol.md §1.9).

    Returns ``(lines, consumed)`` once three ``\\n``-terminated lines are there (``lines`` keeps
    their ``\\r\\n`` ends, which :func:`services.login.parse` accepts; ``consumed`` is their
    length in bytes: what follows are packets), None while more bytes are needed. Raises
    :class:`LoginLineError` when ``limit`` bytes hold no three lines.
    """
    pos = 0
    for _ in range(3):
        end = buf.find(b"\n", pos)
        if end < 0:
            if len(buf) >= limit:
                raise LoginLineError(f"no login lines in the first {limit} bytes")
            return None
        pos = end + 1
    if pos > limit:
        raise LoginLineError(f"login lines of {pos} bytes (limit {limit})")
    return bytes(buf[:pos]), pos


class FrameBuffer:
    """Cuts a client's byte stream into whole frames (``u16 id, u8 flag, u32 length, payload``).

    :meth:`feed` returns the frames completed by the new bytes, concatenated as they came (a
    body for :func:`handlers.bancho.process_frames`). A frame whose payload is longer than
    ``max_payload`` is dropped without being held: its bytes are skipped as they arrive
    (``skipped`` counts such frames); one longer than ``max_skip`` raises :class:`FrameError`.
    ``held`` is the number of bytes of an incomplete frame kept for the next call (at most
    ``max_payload + 6``).
    """

    __slots__ = ("max_payload", "max_skip", "buf", "skip", "skipped")

    def __init__(self, max_payload: int, max_skip: int) -> None:
        self.max_payload = max_payload
        self.max_skip = max(max_skip, max_payload)
        self.buf = bytearray()
        self.skip = 0  # bytes of a dropped frame still to come
        self.skipped = 0

    @property
    def held(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self.buf)

    def feed(self, data: bytes) -> bytes:
        """Add ``data``; return the whole frames it completes (b"" when none). Raises
        :class:`FrameError` for a frame longer than ``max_skip`` (nothing is returned then)."""
        if self.skip:
            used = min(self.skip, len(data))
            self.skip -= used
            data = data[used:]
            if not data:
                return b""
        buf = self.buf
        buf += data
        parts: list[bytes] = []
        pos = 0
        size = len(buf)
        while size - pos >= HEADER:
            length = int.from_bytes(buf[pos + 3:pos + 7], "little")
            if length > self.max_payload:
                if length > self.max_skip:
                    packet_id = int.from_bytes(buf[pos:pos + 2], "little")
                    del buf[:]
                    raise FrameError(f"packet {packet_id} announces {length} bytes (limit {self.max_skip})")
                self.skipped += 1
                left = size - pos - HEADER
                if length > left:
                    self.skip = length - left
                    pos = size
                    break
                pos += HEADER + length
                continue
            end = pos + HEADER + length
            if end > size:
                break
            parts.append(bytes(buf[pos:end]))
            pos = end
        if pos:
            del buf[:pos]
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _Server(tornado.tcpserver.TCPServer):
    def __init__(self, listener: TcpListener) -> None:
        super().__init__(max_buffer_size=READ_CHUNK * 4)
        self.listener = listener

    async def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        await self.listener.accept(stream, address)


class TcpListener(ChatListener):
    """The TCP listener: a service of ``state.services`` (built by ``pep.py``).

    :meth:`start` binds ``[server] host``:``[server] tcp_port`` when the port is not 0 (a port
    that cannot be bound is logged and the server runs without it, like the IRC gateway);
    :meth:`stop` tells every TCP session to reconnect (``86`` with ``[server] reconnect_delay``),
    logs it out and closes its connection. As a :class:`ChatListener` it hears logouts, so a
    session ended by the server (kick, timeout, a newer login) closes its connection after its
    last packets. Counters for tests and metrics: ``connections``, ``addresses`` (a
    :class:`helpers.netlimits.AddressCounts` that counts every connection), ``refused``, ``pending``.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self.cfg = state.cfg.server
        self.port = 0  # the bound port (tcp_port, or the one the system chose)
        self.connections: set[Connection] = set()
        self.by_token: dict[Token, Connection] = {}
        self.addresses = netlimits.AddressCounts(
            self.cfg.max_connections_per_ip, netlimits.parse_networks(self.cfg.connection_limit_exempt))
        self.pending = 0  # bytes of incomplete frames held by all connections
        self.refused = netlimits.Throttle(
            "TCP: refused %d connection(s) in the last interval: %s (last: %s)", logger=log)
        self.running = False
        self._server: _Server | None = None
        self._loops: list[tornado.ioloop.PeriodicCallback] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """The service start: listen when ``[server] tcp_port`` is not 0."""
        if not self.cfg.tcp_port or self.running:
            return
        try:
            sockets = tornado.netutil.bind_sockets(self.cfg.tcp_port, address=self.cfg.host,
                                                   backlog=self.cfg.backlog)
        except OSError as exc:
            log.error("TCP listener: cannot listen on %s:%d: %s; running without it",
                      self.cfg.host, self.cfg.tcp_port, exc)
            return
        self.port = sockets[0].getsockname()[1]
        self._server = _Server(self)
        self._server.add_sockets(sockets)
        self._loops = [tornado.ioloop.PeriodicCallback(self.flush, FLUSH_INTERVAL * 1000),
                       tornado.ioloop.PeriodicCallback(self.housekeeping, HOUSEKEEPING_INTERVAL * 1000)]
        for loop in self._loops:
            loop.start()
        self.running = True
        self.state.chat_listeners.append(self)
        self.state.tcp = self
        log.info("TCP listener open on %s:%d (builds b%d-b%d)", self.cfg.host, self.port, *login_service.TCP_BUILDS)

    async def stop(self) -> None:
        """The service stop: stop listening; every session is told to reconnect, logged out and
        its connection closed (a hand-over cannot pass these sockets on: docs/decisions.md)."""
        if not self.running:
            return
        self.running = False
        for loop in self._loops:
            loop.stop()
        self._loops = []
        if self._server is not None:
            self._server.stop()
            self._server = None
        farewell = codec.notification(NOTICE_STOPPING) + codec.restart(int(self.state.cfg.server.reconnect_delay * 1000))
        streams = []
        for conn in tuple(self.connections):
            if conn.token is not None and not self.state.lifecycle.restart_sent:
                conn.token.enqueue(farewell)
            conn.close("server stopping")
            streams.append(conn.stream)
        if self in self.state.chat_listeners:
            self.state.chat_listeners.remove(self)
        if getattr(self.state, "tcp", None) is self:
            self.state.tcp = None
        # the last bytes are written before the process goes on to exit (bounded: a client that
        # does not read is cut off after STOP_WAIT seconds)
        deadline = time.monotonic() + STOP_WAIT
        while any(not stream.closed() for stream in streams) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for stream in streams:
            stream.close()

    # ------------------------------------------------------------------ connections
    async def accept(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        """Serve one connection until it closes (never raises)."""
        ip = address[0] if isinstance(address, tuple) and address else ""
        key = netlimits.address_key(ip)
        addresses = self.addresses
        if not self.running:
            stream.close()
            return
        if len(self.connections) >= self.cfg.tcp_max_connections:
            self.refused.hit(f"more than {self.cfg.tcp_max_connections} open in all", key)
            stream.close()
            return
        if addresses.limited(ip) and addresses.at_limit(key):
            self.refused.hit(f"more than {addresses.limit} open from one address", key)
            stream.close()
            return
        try:
            stream.set_nodelay(True)
        except (OSError, AttributeError):
            pass
        stream.max_write_buffer_size = self.state.cfg.limits.max_queue
        conn = Connection(self, stream, ip, key)
        self.connections.add(conn)
        addresses.add(key)
        try:
            await conn.run()
        except Exception:  # one connection never takes anything else down
            log.exception("TCP connection from %s failed", ip)
        finally:
            conn.close("connection ended")

    def forget(self, conn: Connection) -> None:
        """Drop a closed connection from the counts (idempotent)."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        if conn.token is not None and self.by_token.get(conn.token) is conn:
            del self.by_token[conn.token]
        self.addresses.release(conn.key)
        self.pending -= conn.held
        conn.held = 0

    # ------------------------------------------------------------------ loops
    def flush(self) -> None:
        """Write every TCP session's queue to its socket (what a poll would have returned)."""
        for conn in tuple(self.by_token.values()):
            conn.flush()

    def housekeeping(self, now: float | None = None) -> None:
        """Ping the sessions that sent nothing for a quarter of ``[sessions] timeout`` (the
        client answers 8 with 4, which counts as activity)."""
        now = time.monotonic() if now is None else now
        interval = self.state.cfg.sessions.timeout / 4
        ping = codec.ping()
        for conn in tuple(self.by_token.values()):
            if now - conn.last_frame >= interval and now - conn.last_ping >= interval:
                conn.last_ping = now
                conn.token.enqueue(ping)

    # ------------------------------------------------------------------ ChatListener
    def logged_out(self, token: Token) -> None:
        """A session is logging out (kick, timeout, newer login, logout packet): if it is one of
        ours, its last packets are written and its connection closed."""
        conn = self.by_token.get(token)
        if conn is not None:
            conn.close("logged out", logout=False)


class Connection:
    """One TCP connection: its login, then its packets both ways.

    ``token`` is None until the login succeeded. ``last_frame`` and ``last_ping`` are
    :func:`time.monotonic` seconds; ``held`` is the bytes of an incomplete frame counted in
    the listener's ``pending``.
    """

    __slots__ = ("listener", "state", "stream", "ip", "key", "token", "closed", "frames", "held",
                 "last_frame", "last_ping", "connected")

    def __init__(self, listener: TcpListener, stream: tornado.iostream.IOStream, ip: str, key: str) -> None:
        self.listener = listener
        self.state = listener.state
        self.stream = stream
        self.ip = ip
        self.key = key
        self.token: Token | None = None
        self.closed = False
        cfg = self.state.cfg
        self.frames = FrameBuffer(cfg.limits.max_payload, cfg.server.max_body)
        self.held = 0
        now = time.monotonic()
        self.connected = now
        self.last_frame = now
        self.last_ping = now

    def __repr__(self) -> str:
        who = f"user={self.token.user_id}" if self.token is not None else "not logged in"
        return f"<TCP {self.ip} {who}>"

    async def run(self) -> None:
        """Read the login lines, log in, then read packets until the connection closes."""
        state = self.state
        stream = self.stream
        loop = tornado.ioloop.IOLoop.current()
        deadline = loop.call_later(state.cfg.server.body_timeout, self._login_too_slow)
        buf = bytearray()
        try:
            while True:
                try:
                    found = split_login(buf)
                except LoginLineError as exc:
                    log.info("TCP %s: %s", self, exc)
                    self.refuse()
                    return
                if found is not None:
                    break
                try:
                    buf += await stream.read_bytes(READ_CHUNK, partial=True)
                except tornado.iostream.StreamClosedError:
                    return
        finally:
            loop.remove_timeout(deadline)
        lines, used = found
        rest = bytes(buf[used:])
        del buf
        state.poll_counters.count_request("login")
        state.logins_in_flight += 1  # a hand-over waits for these (services/handover.py)
        try:
            token, reply = await login_service.login(state, lines, self.ip, login_service.TCP_BUILDS)
        finally:
            state.logins_in_flight -= 1
        if token is None:
            self._send(reply)
            self.close("login refused")
            return
        if self.closed or stream.closed() or not self.listener.running or token.logged_out:
            # the client left, the listener stopped or the session already ended during the login
            if not token.logged_out:
                session.logout(state, token)
            self.close("gone during the login")  # the token was never ours: only the connection
            return
        self.token = token
        self.listener.by_token[token] = self
        self._send(reply)
        self.last_frame = time.monotonic()
        data = rest
        while not self.closed:
            if data:
                self.received(data)
            if self.closed:
                return
            try:
                data = await stream.read_bytes(READ_CHUNK, partial=True)
            except tornado.iostream.StreamClosedError:
                return

    def _login_too_slow(self) -> None:
        if self.token is None and not self.closed:
            log.info("TCP %s: no login within %g s", self, self.state.cfg.server.body_timeout)
            self.close("login too slow")

    def refuse(self) -> None:
        """Answer something that is not a login with login reply -1, then close."""
        self._send(codec.login_reply(-1))
        self.close("not a login")

    def received(self, data: bytes) -> None:
        """Bytes from a logged-in client: run every whole packet, then write the replies."""
        token = self.token
        listener = self.listener
        try:
            body = self.frames.feed(data)
        except FrameError as exc:
            log.info("TCP %s: %s; closing", self, exc)
            self.close("oversized packet")
            return
        held = self.frames.held
        listener.pending += held - self.held
        self.held = held
        if listener.pending > self.state.cfg.server.max_pending_body:
            listener.refused.hit("incomplete packets hold more than [server] max_pending_body bytes", self.key)
            self.close("too much pending input")
            return
        if not body:
            return
        now = time.monotonic()
        self.last_frame = now
        token.last_seen = now
        if token.overflowed:
            self.close("queue overflow")
            return
        process_frames(self.state, token, body)
        self.flush()

    def flush(self) -> None:
        """Write what the session's queue holds."""
        token = self.token
        if token is None or self.closed:
            return
        if token.overflowed:
            self.close("queue overflow")
            return
        if token.queue:
            self._send(token.drain())

    def _send(self, data: bytes) -> None:
        if not data or self.stream.closed():
            return
        try:
            self.stream.write(data)
        except tornado.iostream.StreamBufferFullError:
            log.info("TCP %s: more than %d bytes wait to be written; closing", self,
                     self.state.cfg.limits.max_queue)
            self.stream.close()
            tornado.ioloop.IOLoop.current().add_callback(self.close, "send queue full")
        except tornado.iostream.StreamClosedError:
            tornado.ioloop.IOLoop.current().add_callback(self.close, "connection closed")

    def close(self, reason: str, logout: bool = True) -> None:
        """Close the connection after its last bytes (the session's queue) are written; log the
        session out unless ``logout`` is False (the logout is under way). Idempotent."""
        if self.closed:
            return
        self.closed = True
        listener = self.listener
        listener.forget(self)
        token = self.token
        state = self.state
        if token is not None:
            if logout and not token.logged_out:
                session.logout(state, token)
            if token.queue:
                self._send(token.drain())
            # a kicked session's final packets were just written: nobody will poll for them
            tornado.ioloop.IOLoop.current().add_callback(self._forget_kick, token)
            log.info("TCP logout user=%d name=%s (%s)", token.user_id, token.username, reason)
        stream = self.stream
        if not stream.closed():
            try:
                stream.write(b"").add_done_callback(lambda _: stream.close())
            except (tornado.iostream.StreamClosedError, tornado.iostream.StreamBufferFullError):
                stream.close()
            tornado.ioloop.IOLoop.current().call_later(CLOSE_GRACE, stream.close)

    def _forget_kick(self, token: Token) -> None:
        entry = self.state.kicked.get(token.token)
        if entry is not None and entry[0] is token:
            del self.state.kicked[token.token]

