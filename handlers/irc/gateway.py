"""The IRC gateway: a Tornado ``TCPServer`` in the server's own event loop (docs/irc.md).

An IRC user is a :class:`objects.token.Token` whose ``irc`` attribute is its
:class:`Connection`: it is in ``state.tokens`` (online for the game, the API and
``ripple:online_users``), in channel member lists, and its messages go through
:func:`services.chat.send_message`, the one chat pipeline, so every chat rule applies unchanged.

What leaves the chat world reaches IRC two ways:

* the gateway is a :class:`objects.state.ChatListener`: channel messages, joins, parts and
  logouts are formatted **once per event** into an IRC line and the same bytes are written to
  every IRC member of the channel;
* what the game queues for one user (private messages, notifications) lands in the IRC
  token's queue as game packets; :meth:`Gateway.flush` (every ``[irc] flush_interval`` s)
  drains those queues and turns private messages and notifications into IRC lines (a packet
  shared by many receivers is decoded once per pass). Everything else in the queue (presence,
  stats, match updates) is dropped.

Limits (docs/irc.md, "Limits"): lines over 512 bytes get 417 and are dropped; more than
``line_burst`` lines at once or ``lines_per_second`` on average close the connection ("Excess
Flood"); more than ``send_queue`` bytes waiting to be written close it ("SendQ exceeded"); an
idle connection is PINGed after ``ping_interval`` s and closed ``ping_timeout`` s later;
``max_connections`` in all and ``max_per_ip`` per address.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any, Iterable

import tornado.ioloop
import tornado.iostream
import tornado.netutil
import tornado.tcpserver

from common.db import DatabaseError
from common.ripple import safe_username
from constants import packets, privileges as privs
from handlers.irc import protocol as p
from helpers import codec
from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX
from objects.state import ChatListener
from objects.token import NO_IDS, Token, client_privileges
from services import channels, chat, session
from services.commands import mp as mp_commands

if TYPE_CHECKING:
    from objects.channel import Channel
    from objects.state import State

log = logging.getLogger("pep.irc")

#: IRC names of the runtime channels (docs/irc.md): ``#mp_<match id>`` and ``#spec_<host id>``
IRC_MULTIPLAYER = "#mp_"
IRC_SPECTATOR = "#spec_"
NICK_FORBIDDEN = set(" ,*?!@#:\r\n\x00")
READ_CHUNK = 4096
MAX_TARGETS = 4
#: most runtime channels of other nodes one IRC connection is counted in (docs/cluster.md)
MAX_REMOTE_CHANNELS = 256


def irc_channel(name: str) -> str:
    """The IRC name of internal channel ``name``: ``#multi_5`` → ``#mp_5``, ``#spect_9`` → ``#spec_9``."""
    if name.startswith(MULTIPLAYER_PREFIX):
        return IRC_MULTIPLAYER + name[len(MULTIPLAYER_PREFIX):]
    if name.startswith(SPECTATOR_PREFIX):
        return IRC_SPECTATOR + name[len(SPECTATOR_PREFIX):]
    return name


def internal_channel(name: str) -> str | None:
    """The internal name of IRC channel ``name``, or None for names that only exist inside
    (``#multi_*``, ``#spect_*``) or on the game client (``#multiplayer``, ``#spectator``)."""
    low = name.lower()
    if low.startswith(IRC_MULTIPLAYER):
        return MULTIPLAYER_PREFIX + name[len(IRC_MULTIPLAYER):]
    if low.startswith(IRC_SPECTATOR):
        return SPECTATOR_PREFIX + name[len(IRC_SPECTATOR):]
    if low.startswith((MULTIPLAYER_PREFIX, SPECTATOR_PREFIX)) or low in ("#multiplayer", "#spectator"):
        return None
    return name


def _runtime(channel: Any) -> bool:
    """Whether ``channel`` is a runtime channel (``#multi_<id>``, ``#spect_<id>``, or another
    temporary one): on a cluster it lives on one node, whose gateway serves its IRC members of
    the other nodes through :class:`RemoteConnection` (docs/cluster.md)."""
    return channel.temp or channel.client_name != channel.name


def may_join(state: State, token: Token, channel: Channel) -> bool:
    """Whether an IRC session may join ``channel`` (docs/irc.md, "Channels").

    A match channel: a referee of the match (``!mp`` rules: tournament staff or on the match's
    referee list) or the user's game client seated in it. A spectator channel: the host itself or
    a user whose game client spectates the host. Any other channel: the game rule
    (:meth:`objects.channel.Channel.can_read`).
    """
    if channel.name.startswith(MULTIPLAYER_PREFIX):
        match = mp_commands.channel_match(state, channel.name)
        if match is None:
            return False
        if mp_commands.is_referee(state, token, match):
            return True
        return any(t.match_id == match.id for t in state.tokens.user_tokens(token.user_id))
    if channel.name.startswith(SPECTATOR_PREFIX):
        suffix = channel.name[len(SPECTATOR_PREFIX):]
        if not suffix.isdigit():
            return False
        host_id = int(suffix)
        return token.user_id == host_id or any(
            t.spectating is not None and t.spectating.user_id == host_id for t in state.tokens.user_tokens(token.user_id))
    return channel.can_read(token)


class _Server(tornado.tcpserver.TCPServer):
    def __init__(self, gateway: Gateway) -> None:
        super().__init__(max_buffer_size=1 << 20)
        self.gateway = gateway

    async def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        await self.gateway.accept(stream, address)


class Gateway(ChatListener):
    """The IRC server: its listener, connections, and the chat listener that feeds them.

    A service of ``state.services`` (built by ``pep.py``): :meth:`start` binds ``[irc]
    host``:``[irc] port`` and hangs the gateway off ``state.irc``; :meth:`stop` closes everything.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self.cfg = state.cfg.irc
        self.host = self.cfg.server_name
        self.connections: set[Connection] = set()
        self.per_ip: dict[str, int] = {}
        self.started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.port = 0  # the bound port (``[irc] port`` 0 picks a free one)
        #: on a cluster: the IRC connections of other nodes' sessions that are members of this
        #: node's runtime channels (token key of the remote presence -> RemoteConnection)
        self.remote: dict[str, RemoteConnection] = {}
        self._server: _Server | None = None
        self._loops: list[tornado.ioloop.PeriodicCallback] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """The service start (``state.services``): when ``[irc] enabled``, listen, hang off
        ``state.irc`` and hear the chat world. A port that cannot be bound is logged as an error
        and the server runs without IRC (docs/decisions.md, "IRC gateway")."""
        if not self.cfg.enabled:
            return
        try:
            self.listen()
        except OSError as exc:
            log.error("IRC gateway: cannot listen on %s:%d: %s; running without IRC", self.cfg.host, self.cfg.port, exc)
            return
        self.state.irc = self
        self.state.chat_listeners.append(self)

    async def stop(self) -> None:
        """The service stop: close every connection (each user is logged out), stop listening."""
        if self.state.irc is not self:
            return
        self.close_all()
        if self in self.state.chat_listeners:
            self.state.chat_listeners.remove(self)
        self.state.irc = None

    def listen(self) -> None:
        """Listen and start the flush and housekeeping loops. Raises OSError when the port
        cannot be bound."""
        sockets = tornado.netutil.bind_sockets(self.cfg.port, address=self.cfg.host)
        self.port = sockets[0].getsockname()[1]
        self._server = _Server(self)
        self._server.add_sockets(sockets)
        self._loops = [tornado.ioloop.PeriodicCallback(self.flush, self.cfg.flush_interval * 1000),
                       tornado.ioloop.PeriodicCallback(self.housekeeping, 1000)]
        for loop in self._loops:
            loop.start()
        log.info("IRC gateway open on %s:%d", self.cfg.host, self.port)

    def close_all(self) -> None:
        """Stop listening; every connection gets ``ERROR`` and its user is logged out."""
        for loop in self._loops:
            loop.stop()
        if self._server is not None:
            self._server.stop()
        for conn in tuple(self.connections):
            conn.close("Server shutting down")

    async def accept(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        """Serve one TCP connection until it closes (never raises)."""
        ip = address[0] if isinstance(address, tuple) and address else str(address)
        stream.max_write_buffer_size = self.cfg.send_queue
        if len(self.connections) >= self.cfg.max_connections or self.per_ip.get(ip, 0) >= self.cfg.max_per_ip:
            log.info("IRC connection from %s refused: too many connections", ip)
            try:
                await stream.write(p.line(None, "ERROR", "Closing Link: too many connections"))
            except tornado.iostream.StreamClosedError:
                pass
            stream.close()
            return
        conn = Connection(self, stream, ip)
        self.connections.add(conn)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        try:
            await conn.run()
        except Exception:  # never let one connection take anything else down
            log.exception("IRC connection from %s failed", ip)
        finally:
            conn.close("Connection closed")
            self.forget(conn)

    def forget(self, conn: Connection) -> None:
        """Drop a closed connection from the counts (idempotent)."""
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_ip.get(conn.ip, 1) - 1
            if left > 0:
                self.per_ip[conn.ip] = left
            else:
                self.per_ip.pop(conn.ip, None)

    # ------------------------------------------------------------------ loops
    def flush(self) -> None:
        """Turn what the game queued for IRC users into IRC lines (module docstring)."""
        cache: dict[int, tuple[bytes, list[tuple[str, str, str]]]] = {}
        for conn in tuple(self.connections):
            token = conn.token
            if token is None or conn.closed:
                continue
            if token.queue:
                conn.deliver_queue(cache)
            if len(conn.joined) != len(token.channels):
                conn.reconcile()
        for key, remote in tuple(self.remote.items()):
            remote.reconcile()
            if not remote.joined:
                del self.remote[key]

    def housekeeping(self) -> None:
        """Once a second: keep IRC sessions from the game's idle sweep, PING idle connections,
        close those that do not answer or never registered."""
        now = time.monotonic()
        cfg = self.cfg
        for conn in tuple(self.connections):
            if conn.closed:
                self.forget(conn)
                continue
            if conn.token is None:
                if now - conn.connected > cfg.register_timeout:
                    conn.close("Registration timed out")
                continue
            conn.token.last_seen = now
            conn.reconcile()
            idle = now - conn.last_read
            if conn.ping_sent is not None:
                if now - conn.ping_sent > cfg.ping_timeout:
                    conn.close(f"Ping timeout: {int(now - conn.last_read)} seconds")
            elif idle > cfg.ping_interval:
                conn.ping_sent = now
                conn.send(p.line(None, "PING", self.host))

    # ------------------------------------------------------------------ formatting
    def prefix(self, token: Token) -> str:
        """``nick!nick@server_name`` of a user."""
        nick = p.nick_of(token.username)
        return f"{nick}!{nick}@{self.host}"

    def irc_members(self, channel: Channel, but: Token | None = None) -> list[Connection]:
        """The live IRC connections among the members of ``channel`` (except ``but``).

        Walks whichever is smaller, the IRC connections or the channel's members: every game
        login joins and every logout parts crowded channels (#osu, #announce), and walking
        thousands of game members there to find the few IRC ones made a login at 5,000 online
        cost O(online) several times over (bench/README.md, issue #17)."""
        members = channel.members.members
        if len(self.connections) < len(members):
            conns = [conn for conn in self.connections
                     if (token := conn.token) is not None and token.irc is conn and not conn.closed
                     and token is not but and members.get(token.token) is token]
        else:
            conns = [t.irc for t in members.values()
                     if t.irc is not None and t is not but and not t.irc.closed]
        if self.remote and _runtime(channel):
            conns.extend(self._remote_members(channel, but))
        return conns

    def _remote_members(self, channel: Channel, but: Token | None) -> list[Connection]:
        members = channel.members.members
        return [conn for conn in self.remote.values()
                if not conn.closed and conn.token is not but and members.get(conn.token.token) is conn.token]

    def _own(self, channel: Any, token: Token) -> Connection | None:
        """The IRC connection that must hear its own join or part of ``channel``: the session's,
        or the :class:`RemoteConnection` of a remote IRC member of a runtime channel."""
        own = token.irc
        if own is None and token.node is not None and _runtime(channel):
            own = self.remote.get(token.token)
        return None if own is None or own.closed else own

    # ------------------------------------------------------------------ cluster (docs/cluster.md)
    def remote_command(self, token: Token, command: str, params: list[str], multi_prefix: bool) -> None:
        """Run the IRC ``command`` of the remote session ``token`` (its node's IRC user) about a
        runtime channel of this node, as if it were typed here; the replies and every later line
        of the channel go back through its :class:`RemoteConnection`. ``JOIN 0`` parts the
        runtime channels of this node only. ``command`` is one of
        :data:`services.cluster.IRC_FORWARDED` (checked by the cluster)."""
        if token.node is None or token.logged_out:
            return
        conn = self.remote.get(token.token)
        if conn is None:
            conn = self.remote[token.token] = RemoteConnection(self, token)
        conn.multi_prefix = multi_prefix
        if command == "JOIN" and params[0] == "0":
            for name in list(conn.joined):
                channel = self.state.channels.get(name)
                if channel is not None and name in token.channels:
                    channels.part_channel(self.state, token, channel)
        else:
            _COMMANDS[command](conn, params)
        if not conn.joined:
            self.remote.pop(token.token, None)  # nothing left to serve (bounded by the members)

    def relayed(self, node: str, token: Token, line: bytes) -> None:
        """An IRC line from the gateway of ``node`` for the local IRC session ``token``. Its own
        ``JOIN``/``PART`` lines keep :attr:`Connection.remote_channels` (the runtime channels of
        other nodes it is in) exact."""
        conn = token.irc
        if conn is None or conn.closed:
            return
        own = b":" + self.prefix(token).encode("utf-8", "replace") + b" "
        if line.startswith(own):
            command, _, rest = line[len(own):-2].partition(b" ")
            name = rest.decode("utf-8", "replace").lstrip(":").lower()
            if command == b"JOIN" and len(conn.remote_channels) < MAX_REMOTE_CHANNELS:
                conn.remote_channels[name] = node
            elif command == b"PART":
                conn.remote_channels.pop(name, None)
        conn.send(p.time_tag() + line if conn.server_time else line)

    def node_gone(self, node: str) -> None:
        """The node ``node`` left the cluster: its runtime channels are gone for the local IRC
        users in them (a PART each, as when a match closes on one node)."""
        for conn in tuple(self.connections):
            token = conn.token
            if token is None or conn.closed or node not in conn.remote_channels.values():
                continue
            for name in [n for n, owner in conn.remote_channels.items() if owner == node]:
                del conn.remote_channels[name]
                conn.send(p.line(self.prefix(token), "PART", name))

    @staticmethod
    def send_all(conns: Iterable[Connection], data: bytes) -> None:
        """Write one formatted line to many connections: the same bytes to each; clients with
        ``server-time`` get one tagged copy, built once."""
        tagged = None
        for conn in conns:
            if conn.server_time:
                if tagged is None:
                    tagged = p.time_tag() + data
                conn.send(tagged)
            else:
                conn.send(data)

    # ------------------------------------------------------------------ ChatListener
    def channel_message(self, channel: Any, sender: Token, text: str) -> None:
        conns = self.irc_members(channel, but=sender)
        if conns:
            self.send_all(conns, p.line(self.prefix(sender), "PRIVMSG", irc_channel(channel.name), text))

    def private_message(self, sender: Token, target: Token, text: str) -> None:
        # the user's IRC connection when its game client is the main token (docs/irc.md, "Game and IRC")
        others = [t.irc for t in self.state.tokens.user_tokens(target.user_id)
                  if t.irc is not None and t is not target and not t.irc.closed]
        if others:
            self.send_all(others, p.line(self.prefix(sender), "PRIVMSG", p.nick_of(target.username), text))

    def joined(self, channel: Any, token: Token) -> None:
        conns = self.irc_members(channel)
        if conns:
            self.send_all(conns, p.line(self.prefix(token), "JOIN", irc_channel(channel.name)))
        own = self._own(channel, token)
        if own is not None:
            own.joined.add(channel.name)
            own.send_topic(channel, joining=True)
            own.send_names(channel)

    def parted(self, channel: Any, token: Token, kick: bool) -> None:
        if token.logged_out:
            return  # its QUIT was sent
        conns = self.irc_members(channel)
        own = self._own(channel, token)
        if own is not None:
            conns.append(own)
            own.joined.discard(channel.name)
        if conns:
            self.send_all(conns, p.line(self.prefix(token), "PART", irc_channel(channel.name)))

    def logged_out(self, token: Token) -> None:
        own = token.irc
        if own is not None and not own.closed:
            own.deliver_queue({})
            own.close("Logged out", logout=False)
        remote = self.remote.pop(token.token, None) if self.remote else None
        if remote is not None:
            remote.close("Logged out", logout=False)
        if token.is_bot:
            return
        peers: dict[int, Connection] = {}
        shared = [c for c in (self.state.channels.get(name) for name in token.channels) if c is not None]
        for channel in shared:
            for conn in self.irc_members(channel, but=token):
                if isinstance(conn, RemoteConnection) and any(
                        not _runtime(c) and conn.token.token in c.members.members for c in shared):
                    continue  # its own node shares a replicated channel with the user: QUIT there
                peers[id(conn)] = conn
        if peers:
            self.send_all(peers.values(), p.line(self.prefix(token), "QUIT", "Quit"))


class Connection:
    """One IRC client connection: registration, the command handlers, and its output.

    ``token`` is None until registration succeeded. ``joined`` holds the internal names of the
    channels the IRC client was told it is in (kept in step with ``token.channels``).
    """

    def __init__(self, gateway: Gateway, stream: tornado.iostream.IOStream, ip: str) -> None:
        self.gateway = gateway
        self.state = gateway.state
        self.stream = stream
        self.ip = ip
        self.token: Token | None = None
        self.nick = "*"
        self.password: str | None = None
        self.user_seen = False
        self.cap_negotiating = False
        self.registering = False
        self.server_time = False
        self.multi_prefix = False
        self.closed = False
        self.failing = False  # a write failed: closing on the next loop pass
        self.joined: set[str] = set()
        #: on a cluster: the runtime channels of other nodes the user is in (IRC name, lower
        #: case -> node), from the JOIN/PART lines they sent back (Gateway.relayed)
        self.remote_channels: dict[str, str] = {}
        now = time.monotonic()
        self.connected = now
        self.last_read = now
        self.ping_sent: float | None = None
        self.allowance = float(gateway.cfg.line_burst)
        self.allowance_at = now

    def __repr__(self) -> str:
        return f"<IRC {self.nick} {self.ip}>"

    # ------------------------------------------------------------------ I/O
    async def run(self) -> None:
        """Read lines until the connection closes; each line is handled in turn."""
        buf = bytearray()
        skipping = False  # inside an over-long line: drop until its end
        while not self.closed:
            try:
                data = await self.stream.read_bytes(READ_CHUNK, partial=True)
            except tornado.iostream.StreamClosedError:
                return
            self.last_read = time.monotonic()
            self.ping_sent = None
            buf += data
            while not self.closed:
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) >= p.MAX_LINE:
                        buf.clear()
                        if not skipping:
                            skipping = True
                            self.numeric(p.ERR_INPUTTOOLONG, "Input line was too long")
                    break
                raw = bytes(buf[:end])
                del buf[: end + 1]
                if skipping:
                    skipping = False
                    continue
                if len(raw) + 1 > p.MAX_LINE:
                    self.numeric(p.ERR_INPUTTOOLONG, "Input line was too long")
                    continue
                if not self._allow_line():
                    log.info("IRC %s: excess flood", self)
                    self.close("Excess Flood")
                    return
                try:
                    await self.handle(raw)
                except Exception:
                    log.exception("IRC %s: line failed: %r", self, raw[:80])

    def _allow_line(self) -> bool:
        cfg = self.gateway.cfg
        now = time.monotonic()
        self.allowance = min(float(cfg.line_burst), self.allowance + (now - self.allowance_at) * cfg.lines_per_second)
        self.allowance_at = now
        if self.allowance < 1.0:
            return False
        self.allowance -= 1.0
        return True

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; past ``[irc] send_queue`` waiting bytes it is closed."""
        if self.closed or self.failing:
            return
        try:
            self.stream.write(data)
        except tornado.iostream.StreamBufferFullError:
            log.info("IRC %s: send queue exceeded", self)
            self._fail("SendQ exceeded")
        except tornado.iostream.StreamClosedError:
            self._fail("Connection closed")

    def _fail(self, reason: str) -> None:
        """Stop writing and close on the next loop pass: a write can fail inside a chat
        listener call, where logging the user out at once would change the lists being walked."""
        self.failing = True
        tornado.ioloop.IOLoop.current().add_callback(self.close, reason)

    def numeric(self, code: str, *params: str) -> None:
        """A numeric reply ``:server <code> <nick> params...``."""
        self.send(p.line(self.gateway.host, code, self.nick, *params))

    def close(self, reason: str, logout: bool = True) -> None:
        """Close the connection with ``ERROR :Closing Link``; its user is logged out (unless
        ``logout`` is False: the logout is already under way). Idempotent."""
        if self.closed:
            return
        self.closed = True
        token = self.token
        if logout and token is not None and not token.logged_out:
            session.logout(self.state, token)  # the listener sends QUIT to the IRC peers
        stream = self.stream
        if not stream.closed():
            try:
                stream.write(p.line(None, "ERROR", f"Closing Link: {self.ip} ({reason})")).add_done_callback(
                    lambda _: stream.close())
            except (tornado.iostream.StreamClosedError, tornado.iostream.StreamBufferFullError):
                stream.close()
            tornado.ioloop.IOLoop.current().call_later(5, stream.close)
        self.gateway.forget(self)
        if token is not None:
            log.info("IRC logout user=%d name=%s (%s)", token.user_id, token.username, reason)

    # ------------------------------------------------------------------ game -> IRC
    def deliver_queue(self, cache: dict[int, tuple[bytes, list[tuple[str, str, str]]]]) -> None:
        """Drain the token's game queue: private messages and notifications become IRC lines."""
        token = self.token
        if token is None:
            return
        queue = token.queue
        token.queue = []
        token.queued = 0
        for data in queue:
            entry = cache.get(id(data))
            if entry is None or entry[0] is not data:
                entry = cache[id(data)] = (data, _translate(data))
            for kind, who, text in entry[1]:
                if kind == "pm":
                    nick = p.nick_of(who)
                    line = p.line(f"{nick}!{nick}@{self.gateway.host}", "PRIVMSG", self.nick, text)
                else:
                    line = p.line(self.gateway.host, "NOTICE", self.nick, text)
                self.send(p.time_tag() + line if self.server_time else line)

    def reconcile(self) -> None:
        """Tell the client about channels it was removed from without a part (a match closed)."""
        token = self.token
        if token is None:
            return
        for name in self.joined - token.channels:
            self.joined.discard(name)
            self.send(p.line(self.gateway.prefix(token), "PART", irc_channel(name)))

    # ------------------------------------------------------------------ commands
    async def handle(self, raw: bytes) -> None:
        """Handle one client line (without its LF)."""
        parsed = p.parse(p.decode(raw))
        if parsed is None:
            return
        command, params = parsed
        if self.token is None:
            handler = _PRE_REGISTRATION.get(command)
            if handler is None:
                if command in _COMMANDS:
                    self.numeric(p.ERR_NOTREGISTERED, "You have not registered")
                else:
                    self.numeric(p.ERR_UNKNOWNCOMMAND, command[:32], "Unknown command")
                return
        else:
            handler = _COMMANDS.get(command)
            if handler is None:
                self.numeric(p.ERR_UNKNOWNCOMMAND, command[:32], "Unknown command")
                return
        result = handler(self, params)
        if result is not None:
            await result

    def _need(self, params: list[str], count: int, command: str) -> bool:
        if len(params) < count:
            self.numeric(p.ERR_NEEDMOREPARAMS, command, "Not enough parameters")
            return False
        return True

    # registration ------------------------------------------------------
    def c_cap(self, params: list[str]):
        if not self._need(params, 1, "CAP"):
            return None
        sub = params[0].upper()
        target = self.nick
        if sub == "LS":
            if self.token is None:
                self.cap_negotiating = True
            self.send(p.line(self.gateway.host, "CAP", target, "LS", " ".join(p.CAPABILITIES)))
        elif sub == "LIST":
            enabled = [name for name, on in (("multi-prefix", self.multi_prefix), ("server-time", self.server_time)) if on]
            self.send(p.line(self.gateway.host, "CAP", target, "LIST", " ".join(enabled)))
        elif sub == "REQ":
            if self.token is None:
                self.cap_negotiating = True
            wanted = (params[1] if len(params) > 1 else "").split()
            names = [w.lstrip("-") for w in wanted]
            if wanted and all(n in p.CAPABILITIES for n in names):
                for w in wanted:
                    on = not w.startswith("-")
                    if w.lstrip("-") == "server-time":
                        self.server_time = on
                    else:
                        self.multi_prefix = on
                self.send(p.line(self.gateway.host, "CAP", target, "ACK", " ".join(wanted)))
            else:
                self.send(p.line(self.gateway.host, "CAP", target, "NAK", " ".join(wanted)))
        elif sub == "END":
            self.cap_negotiating = False
            return self._try_register()
        else:
            self.numeric(p.ERR_INVALIDCAPCMD, sub[:32], "Invalid CAP command")
        return None

    def c_pass(self, params: list[str]):
        if self.token is not None:
            self.numeric(p.ERR_ALREADYREGISTRED, "You may not reregister")
            return None
        if self._need(params, 1, "PASS"):
            self.password = params[0][:128]
        return None

    def c_nick(self, params: list[str]):
        if not params or not params[0]:
            self.numeric(p.ERR_NONICKNAMEGIVEN, "No nickname given")
            return None
        nick = params[0]
        if self.token is not None:
            if nick.lower() != self.nick.lower():
                self.numeric(p.ERR_ERRONEUSNICKNAME, nick[:32], "Nickname changes are not allowed; your nickname is your username")
            return None
        if len(nick) > 32 or any(c in NICK_FORBIDDEN for c in nick):
            self.numeric(p.ERR_ERRONEUSNICKNAME, nick[:32], "Erroneous nickname")
            return None
        self.nick = nick
        return self._try_register()

    def c_user(self, params: list[str]):
        if self.token is not None:
            self.numeric(p.ERR_ALREADYREGISTRED, "You may not reregister")
            return None
        if not self._need(params, 1, "USER"):
            return None
        self.user_seen = True
        return self._try_register()

    def _try_register(self):
        if (self.token is not None or self.registering or self.cap_negotiating or self.nick == "*"
                or not self.user_seen):
            return None
        self.registering = True
        return self._register()

    async def _register(self) -> None:
        state = self.state
        repo = state.repo
        if state.login_failures_ip.blocked(self.ip):  # the game's login limit, before any MySQL work
            self.registering = False
            log.info("IRC login refused from %s: too many failed logins", self.ip)
            self.numeric(p.ERR_PASSWDMISMATCH, "Password incorrect (too many failed attempts, try again later)")
            self.close("Too many failed logins")
            return
        try:
            user = None
            if self.password and repo is not None:
                token_md5 = hashlib.md5(self.password.encode("utf-8", "replace")).hexdigest()
                user_id = await repo.irc_token_user(token_md5)
                if user_id is not None and user_id != state.cfg.stack.bot_id:
                    user = await repo.user_by_id(user_id)
            if user is None or str(user["username_safe"]) != safe_username(self.nick):
                state.login_failures_ip.failure(self.ip)
                log.info("IRC login refused from %s: wrong token or nick %r", self.ip, self.nick[:32])
                self.numeric(p.ERR_PASSWDMISMATCH, "Password incorrect")
                self.close("Bad password")
                return
            privileges = int(user["privileges"] or 0)
            pending = bool(privileges & privs.USER_PENDING_VERIFICATION)
            locked = repo.flavour.ripple_checks and privileges & privs.USER_PUBLIC and not privileges & privs.USER_NORMAL
            if (privileges & (privs.USER_PUBLIC | privs.USER_NORMAL) == 0 and not pending) or locked:
                log.info("IRC login refused from %s: %s is banned", self.ip, user["username"])
                self.numeric(p.ERR_YOUREBANNEDCREEP, "You are banned from this server")
                self.close("Banned")
                return
            admin = await repo.is_admin(privileges)
        except DatabaseError as exc:
            log.warning("IRC login of %r failed: database: %s", self.nick[:32], exc)
            self.close("The server cannot check your token right now; try again later")
            return
        finally:
            self.registering = False
        if self.closed:
            return
        if state.settings.maintenance and not admin:
            self.close("The server is in maintenance mode")
            return
        # ---- memory only from here on (the session appears atomically)
        user_id = int(user["id"])
        restricted = not privileges & privs.USER_PUBLIC
        token = Token(user_id, str(user["username"]), str(user["username_safe"]), privileges,
                      restricted=restricted, admin=admin, ip=self.ip)
        token.irc = self
        token.silence_end = int(user.get("silence_end") or 0)
        token.presence_rank = repo.presence_rank(privileges, admin, False)
        token.client_privileges = client_privileges(privileges, admin, restricted)
        for old in state.tokens.user_tokens(user_id):
            if old.irc is not None:  # a second IRC connection replaces the first (docs/irc.md)
                old.irc.close("Replaced by a new connection", logout=False)
                session.logout(state, old, broadcast=False)
        game_online = any(not t.kicked for t in state.tokens.user_tokens(user_id))
        state.tokens.add(token)
        self.token = token
        self.nick = p.nick_of(token.username)
        if not restricted and not game_online:
            state.tokens.broadcast(token.presence_packet(), but=token)
        log.info("IRC login user=%d name=%s ip=%s", user_id, token.username, self.ip)
        self._welcome()
        if not game_online:  # messages kept while the user was offline (docs/integration.md)
            state.spawn(chat.deliver_offline_messages(state, token), f"offline messages of {user_id}")

    def _welcome(self) -> None:
        g = self.gateway
        state = self.state
        host = g.host
        self.numeric(p.RPL_WELCOME, f"Welcome to the osu! chat of {state.cfg.stack.server_name}, {self.nick}")
        self.numeric(p.RPL_YOURHOST, f"Your host is {host}, running pep.py")
        self.numeric(p.RPL_CREATED, f"This server was created {g.started}")
        self.numeric(p.RPL_MYINFO, host, "pep.py", "i", "mnt")
        self.numeric(p.RPL_ISUPPORT, "CHANTYPES=#", "PREFIX=(ov)@+", "NICKLEN=32", "CHANNELLEN=64",
                     "CASEMAPPING=ascii", "CHANMODES=b,,,mnt", "NETWORK=" + state.cfg.stack.server_name.replace(" ", "_"),
                     "are supported by this server")
        self.c_lusers([])
        self.c_motd([])

    # queries -------------------------------------------------------------
    def c_ping(self, params: list[str]):
        if self._need(params, 1, "PING"):
            self.send(p.line(self.gateway.host, "PONG", self.gateway.host, params[0][:128]))
        return None

    def c_pong(self, params: list[str]):
        self.ping_sent = None
        return None

    def c_quit(self, params: list[str]):
        reason = params[0][:128] if params else "Quit"
        self.close(f"Quit: {reason}")
        return None

    def c_lusers(self, params: list[str]):
        state = self.state
        users = len(state.tokens)
        self.numeric(p.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
        self.numeric(p.RPL_LUSEROP, "0", "operator(s) online")
        self.numeric(p.RPL_LUSERCHANNELS, str(len(state.channels.listed())), "channels formed")
        self.numeric(p.RPL_LUSERME, f"I have {len(self.gateway.connections)} clients and 0 servers")
        return None

    def c_motd(self, params: list[str]):
        self.numeric(p.RPL_MOTDSTART, f"- {self.gateway.host} Message of the day -")
        for text in (self.gateway.cfg.motd or "").split("\\n"):
            self.numeric(p.RPL_MOTD, f"- {text}")
        self.numeric(p.RPL_ENDOFMOTD, "End of /MOTD command.")
        return None

    def _channel(self, name: str) -> Channel | None:
        internal = internal_channel(name)
        return None if internal is None else self.state.channels.get(internal)

    def _forward(self, command: str, name: str, *rest: str) -> bool:
        """On a cluster, send ``command`` about ``name``, a runtime channel of another node
        (``#mp_`` of a match there, ``#spec_`` of a host there), to that node, which runs it and
        answers through the relay (docs/cluster.md); returns whether it did."""
        cluster = self.state.cluster
        if cluster is None or self.token is None or isinstance(self, RemoteConnection):
            return False
        internal = internal_channel(name)
        if internal is None or self.state.channels.get(internal) is not None:
            return False
        node = cluster.runtime_owner(internal)
        if node is None:
            return False
        cluster.irc_command(self.token, node, command, [name, *rest][:3], self.multi_prefix)
        return True

    def c_join(self, params: list[str]):
        if not self._need(params, 1, "JOIN"):
            return None
        token = self.token
        assert token is not None
        if params[0] == "0":
            for name in list(token.channels):
                channel = self.state.channels.get(name)
                if channel is not None:
                    channels.part_channel(self.state, token, channel)
            cluster = self.state.cluster
            if cluster is not None and not isinstance(self, RemoteConnection):
                for node in set(self.remote_channels.values()):  # runtime channels of other nodes
                    cluster.irc_command(token, node, "JOIN", ["0"], self.multi_prefix)
            return None
        for name in params[0].split(",")[:10]:
            if not name or self._forward("JOIN", name):
                continue
            channel = self._channel(name)
            if channel is None or not may_join(self.state, token, channel):
                if channel is not None:
                    self.numeric(p.ERR_INVITEONLYCHAN, name[:64], "Cannot join channel (you may not read it)")
                else:
                    self.numeric(p.ERR_NOSUCHCHANNEL, name[:64], "No such channel")
                continue
            if channel.name in token.channels:
                continue
            channels.join_channel(self.state, token, channel)
        return None

    def c_part(self, params: list[str]):
        if not self._need(params, 1, "PART"):
            return None
        token = self.token
        assert token is not None
        for name in params[0].split(",")[:10]:
            if self._forward("PART", name, *params[1:2]):
                continue
            channel = self._channel(name)
            if channel is None:
                self.numeric(p.ERR_NOSUCHCHANNEL, name[:64], "No such channel")
            elif channel.name not in token.channels:
                self.numeric(p.ERR_NOTONCHANNEL, name[:64], "You're not on that channel")
            else:
                channels.part_channel(self.state, token, channel)
        return None

    def c_privmsg(self, params: list[str]):
        if not params:
            self.numeric(p.ERR_NORECIPIENT, "No recipient given (PRIVMSG)")
            return None
        if len(params) < 2 or not params[1]:
            self.numeric(p.ERR_NOTEXTTOSEND, "No text to send")
            return None
        targets = [t for t in params[0].split(",") if t]
        if len(targets) > MAX_TARGETS:
            self.numeric(p.ERR_TOOMANYTARGETS, params[0][:64], "Too many recipients")
            return None
        for target in targets:
            self._privmsg(target, params[1])
        return None

    def _privmsg(self, target: str, text: str) -> None:
        token = self.token
        assert token is not None
        if target.startswith("#"):
            if self._forward("PRIVMSG", target, text):
                return
            internal = internal_channel(target)
            if internal is None or self.state.channels.get(internal) is None:
                self.numeric(p.ERR_NOSUCHCHANNEL, target[:64], "No such channel")
                return
        else:
            internal = target
        result = chat.send_message(self.state, token, internal, text)
        if result in (chat.Result.SENT, chat.Result.EMPTY, chat.Result.STORED):
            return  # STORED: kept for an offline user; the pipeline tells the sender by PM
        if result is chat.Result.OFFLINE:
            self.numeric(p.ERR_NOSUCHNICK, target[:64], "No such nick")
        elif result is chat.Result.NO_CHANNEL:
            self.numeric(p.ERR_NOSUCHCHANNEL, target[:64], "No such channel")
        elif result is chat.Result.SILENCED:
            self.numeric(p.ERR_CANNOTSENDTOCHAN, target[:64],
                         f"You are silenced for {token.silence_left()} more seconds")
        elif result is chat.Result.RESTRICTED:
            self.numeric(p.ERR_CANNOTSENDTOCHAN, target[:64], "Your account is restricted")
        elif result is chat.Result.NOT_ALLOWED:
            self.numeric(p.ERR_CANNOTSENDTOCHAN, target[:64], "Cannot send to channel")
        elif result is chat.Result.BLOCKED:
            self.numeric(p.ERR_CANNOTSENDTOCHAN, target[:64], "That user only accepts private messages from friends")
        elif result is chat.Result.TARGET_SILENCED:
            self.numeric(p.ERR_CANNOTSENDTOCHAN, target[:64], "That user is silenced")
        elif result is chat.Result.TARGET_RESTRICTED:
            self.numeric(p.ERR_NOSUCHNICK, target[:64], "No such nick")

    def c_notice(self, params: list[str]):
        return None  # NOTICEs are never relayed and never answered (RFC 2812 §3.3.2; docs/irc.md)

    def _nick_list(self, channel: Channel) -> list[str]:
        seen: set[int] = set()
        names = []
        for t in channel.members.members.values():
            if t.user_id in seen:
                continue
            seen.add(t.user_id)
            names.append(("@" if t.is_bot or t.admin else "") + p.nick_of(t.username))
        return names

    def send_names(self, channel: Channel) -> None:
        """353 lines (split to stay under 512 bytes) and 366 for ``channel``."""
        name = irc_channel(channel.name)
        batch: list[str] = []
        size = 0
        for nick in self._nick_list(channel):
            if size + len(nick) + 1 > 380 and batch:
                self.numeric(p.RPL_NAMREPLY, "=", name, " ".join(batch))
                batch, size = [], 0
            batch.append(nick)
            size += len(nick.encode("utf-8")) + 1
        if batch:
            self.numeric(p.RPL_NAMREPLY, "=", name, " ".join(batch))
        self.numeric(p.RPL_ENDOFNAMES, name, "End of /NAMES list.")

    def send_topic(self, channel: Channel, joining: bool = False) -> None:
        """332 with the channel's description, or 331 (not sent on join when there is none)."""
        if channel.description:
            self.numeric(p.RPL_TOPIC, irc_channel(channel.name), channel.description)
        elif not joining:
            self.numeric(p.RPL_NOTOPIC, irc_channel(channel.name), "No topic is set")

    def c_names(self, params: list[str]):
        if not params:
            self.numeric(p.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
            return None
        for name in params[0].split(",")[:10]:
            if self._forward("NAMES", name):
                continue
            channel = self._channel(name)
            if channel is None or channel.name not in self.token.channels and not may_join(self.state, self.token, channel):
                self.numeric(p.RPL_ENDOFNAMES, name[:64], "End of /NAMES list.")
            else:
                self.send_names(channel)
        return None

    def c_topic(self, params: list[str]):
        if not self._need(params, 1, "TOPIC") or self._forward("TOPIC", *params[:2]):
            return None
        channel = self._channel(params[0])
        if channel is None:
            self.numeric(p.ERR_NOSUCHCHANNEL, params[0][:64], "No such channel")
        elif len(params) > 1:
            self.numeric(p.ERR_CHANOPRIVSNEEDED, params[0][:64], "Topics are set by the server's staff")
        else:
            self.send_topic(channel)
        return None

    def c_list(self, params: list[str]):
        self.numeric(p.RPL_LISTSTART, "Channel", "Users  Name")
        for channel in self.state.channels.listed():
            self.numeric(p.RPL_LIST, channel.name, str(len(channel.members)), channel.description)
        self.numeric(p.RPL_LISTEND, "End of /LIST")
        return None

    def _who_line(self, channel_name: str, t: Token) -> None:
        nick = p.nick_of(t.username)
        flags = ("G" if t.away_message else "H") + ("@" if t.is_bot or t.admin else "")
        self.numeric(p.RPL_WHOREPLY, channel_name, nick, self.gateway.host, self.gateway.host, nick, flags,
                     f"0 https://osu.ppy.sh/u/{t.user_id}")

    def c_who(self, params: list[str]):
        mask = params[0] if params else "*"
        if mask.startswith("#") and self._forward("WHO", mask):
            return None
        if mask.startswith("#"):
            channel = self._channel(mask)
            if channel is not None and channel.name in self.token.channels:
                seen: set[int] = set()
                for t in channel.members.members.values():
                    if t.user_id not in seen:
                        seen.add(t.user_id)
                        self._who_line(irc_channel(channel.name), t)
        else:
            t = self.state.tokens.by_name(safe_username(mask))
            if t is not None and not t.restricted:
                self._who_line("*", t)
        self.numeric(p.RPL_ENDOFWHO, mask[:64], "End of /WHO list.")
        return None

    def c_whois(self, params: list[str]):
        if not self._need(params, 1, "WHOIS"):
            return None
        mask = params[-1]
        t = self.state.tokens.by_name(safe_username(mask))
        if t is None or (t.restricted and t is not self.token):
            self.numeric(p.ERR_NOSUCHNICK, mask[:64], "No such nick")
        else:
            nick = p.nick_of(t.username)
            self.numeric(p.RPL_WHOISUSER, nick, nick, self.gateway.host, "*", f"https://osu.ppy.sh/u/{t.user_id}")
            shown = [irc_channel(c.name) for c in (self.state.channels.get(n) for n in t.channels)
                     if c is not None and c.listed]
            if shown:
                self.numeric(p.RPL_WHOISCHANNELS, nick, " ".join(sorted(shown)))
            self.numeric(p.RPL_WHOISSERVER, nick, self.gateway.host, self.state.cfg.stack.server_name)
            if t.away_message:
                self.numeric(p.RPL_AWAY, nick, t.away_message)
        self.numeric(p.RPL_ENDOFWHOIS, mask[:64], "End of /WHOIS list.")
        return None

    def c_mode(self, params: list[str]):
        if not self._need(params, 1, "MODE") or (params[0].startswith("#") and self._forward("MODE", *params[:2])):
            return None
        target = params[0]
        if target.startswith("#"):
            channel = self._channel(target)
            if channel is None:
                self.numeric(p.ERR_NOSUCHCHANNEL, target[:64], "No such channel")
            elif len(params) == 1:
                self.numeric(p.RPL_CHANNELMODEIS, irc_channel(channel.name), "+nt" + ("m" if channel.moderated else ""))
            elif params[1].lstrip("+") == "b":
                self.numeric(p.RPL_ENDOFBANLIST, irc_channel(channel.name), "End of channel ban list")
            else:
                self.numeric(p.ERR_CHANOPRIVSNEEDED, irc_channel(channel.name), "Channel modes are set by the server")
        elif target.lower() == self.nick.lower():
            if len(params) == 1 or set(params[1]) <= set("+-i"):  # every user is +i; "MODE me +i" is a no-op
                self.numeric(p.RPL_UMODEIS, "+i")
            else:
                self.numeric(p.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        else:
            self.numeric(p.ERR_NOSUCHNICK, target[:64], "No such nick")
        return None

    def c_away(self, params: list[str]):
        token = self.token
        assert token is not None
        if params and params[0]:
            token.away_message = params[0][:256]
            token.away_told = NO_IDS  # a new away message is told to every sender again
            self.numeric(p.RPL_NOWAWAY, "You have been marked as being away")
        else:
            token.away_message = None
            self.numeric(p.RPL_UNAWAY, "You are no longer marked as being away")
        return None

    def c_ison(self, params: list[str]):
        online = []
        for nick in " ".join(params).split()[:32]:
            t = self.state.tokens.by_name(safe_username(nick))
            if t is not None and not t.restricted:
                online.append(p.nick_of(t.username))
        self.numeric(p.RPL_ISON, " ".join(online))
        return None

    def c_userhost(self, params: list[str]):
        replies = []
        for nick in params[:5]:
            t = self.state.tokens.by_name(safe_username(nick))
            if t is not None and not t.restricted:
                n = p.nick_of(t.username)
                replies.append(f"{n}={'-' if t.away_message else '+'}{n}@{self.gateway.host}")
        self.numeric(p.RPL_USERHOST, " ".join(replies))
        return None


class RemoteConnection(Connection):
    """The IRC connection of a session of another node (``token``: its remote presence here),
    as this node's gateway serves it in this node's runtime channels (docs/cluster.md): the
    commands its node forwards run here through the ordinary handlers, and what is written to it
    goes back to that node as ``irc`` lines (:meth:`services.cluster.Cluster.relay_irc`), which
    writes them to the real connection. It has no stream, no flood or ping bookkeeping (its node
    does that) and is never in :attr:`Gateway.connections`."""

    def __init__(self, gateway: Gateway, token: Token) -> None:
        super().__init__(gateway, None, token.ip)  # type: ignore[arg-type]
        self.token = token
        self.nick = p.nick_of(token.username)

    def __repr__(self) -> str:
        return f"<IRC {self.nick} of node {self.token.node if self.token else '?'}>"

    def send(self, data: bytes) -> None:
        """Relay one formatted line to the user's node."""
        cluster = self.state.cluster
        if not self.closed and cluster is not None and self.token is not None:
            cluster.relay_irc(self.token, data)

    def close(self, reason: str, logout: bool = True) -> None:
        """Stop serving it (its session left this node's world); idempotent, nothing written."""
        self.closed = True
        if self.token is not None and self.gateway.remote.get(self.token.token) is self:
            del self.gateway.remote[self.token.token]


def _translate(data: bytes) -> list[tuple[str, str, str]]:
    """The parts of queued game packets an IRC user sees: ``("pm", sender, text)`` for a private
    message, ``("notice", "", text)`` for a notification. Channel messages are not taken from
    here (the gateway's listener sends them with the channel's IRC name)."""
    out: list[tuple[str, str, str]] = []
    try:
        frames, _ = codec.read_frames(data, 4096, 1 << 24)
    except Exception:
        return out
    for packet_id, payload in frames:
        try:
            if packet_id == packets.S_SEND_MESSAGE:
                sender, text, target, _ = codec.read_message(payload)
                if not target.startswith("#"):
                    out.append(("pm", sender, text))
            elif packet_id == packets.S_NOTIFICATION:
                out.append(("notice", "", codec.read_str(payload)))
        except Exception:  # codec.PacketError: our own packets; never expected
            log.warning("IRC: could not read queued packet %d", packet_id)
    return out


_PRE_REGISTRATION = {
    "CAP": Connection.c_cap, "PASS": Connection.c_pass, "NICK": Connection.c_nick, "USER": Connection.c_user,
    "PING": Connection.c_ping, "PONG": Connection.c_pong, "QUIT": Connection.c_quit,
}
_COMMANDS = dict(_PRE_REGISTRATION)
_COMMANDS.update({
    "JOIN": Connection.c_join, "PART": Connection.c_part, "PRIVMSG": Connection.c_privmsg,
    "NOTICE": Connection.c_notice, "NAMES": Connection.c_names, "TOPIC": Connection.c_topic,
    "LIST": Connection.c_list, "WHO": Connection.c_who, "WHOIS": Connection.c_whois, "MODE": Connection.c_mode,
    "AWAY": Connection.c_away, "ISON": Connection.c_ison, "USERHOST": Connection.c_userhost,
    "LUSERS": Connection.c_lusers, "MOTD": Connection.c_motd,
})
