"""Several nodes, one world (docs/cluster.md): the link of this node to the other nodes of a
cluster through Redis pub/sub.

:class:`Cluster` is a service (``state.services``) and ``state.cluster`` while ``[cluster]
node_id`` is set; in single-process mode ``state.cluster`` is None and nothing here runs.

Every node keeps a full replica of the world: the sessions of the other nodes are remote
presences in its token list and channel member lists (:mod:`objects.remote`). What changes the
world is published once, as one compact JSON event ``{"n": node, "b": boot id, "k": kind,
...}``, on the world channel ``<prefix>pep:cluster`` (every node) or on a node's own channel
``<prefix>pep:cluster:<node>`` (a private message, a packet for one session, a snapshot), and
applied by the receivers, each encoding the client packet once for all its receivers. Kinds:

* ``hello`` (a node started or reconnected; every node answers with ``sync``, the full list of
  its sessions, on the sender's channel), ``hb`` (heartbeat, every ``[cluster] heartbeat``
  seconds), ``bye`` (a clean stop);
* ``up`` (a session's record: a login when ``new`` is set, else a change of status, stats,
  silence, privileges or channels), ``down`` (a logout);
* ``msg`` (a channel message), ``pm`` (a private message, to the target's node), ``pkt``
  (packets for sessions of one node: each distinct block once, with the sessions that get it;
  what is enqueued to remote presences during one loop step), ``irc`` (the same for the IRC
  lines this node's IRC gateway writes to IRC users of another node in its runtime channels),
  ``all`` (bytes for everyone);
* ``call`` (an action of a local session that the other node's rules decide: spectating a
  host of that node, a message in its ``#spectator``/``#multiplayer``, a match packet, a
  tournament client observing its match (``obs``), an IRC command about its runtime channel
  (``irc``)), to the node that decides; ``mid``, ``ctl``, ``lobby``: see docs/cluster.md.

Incoming events are validated (JSON object, known kind, bounded fields; records through
:class:`objects.snapshot.Record`); an invalid one is logged (throttled) and dropped.

A node that sends nothing for ``[cluster] node_timeout`` seconds is dead: its presences are
removed as logouts. Nothing here runs on the poll path: publishing appends to an in-memory
queue written to Redis by one background task, in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from helpers import codec
from helpers.config import NODE_ID_RE
from helpers.layout import MATCH, MESSAGE, QUIT
from helpers.netlimits import Throttle
from objects.remote import MAX_TOKEN, apply_record, local_key, new_remote, real_token, record
from objects.snapshot import Record, SnapshotError
from constants import packets
from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX
from services import chat, multiplayer, session, spectate

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.cluster")

#: largest event accepted from another node, bytes (a snapshot of 10,000 sessions is ~5 MB)
MAX_EVENT = 32 << 20
#: largest chat text accepted from another node, characters
MAX_TEXT = 65536
#: largest raw packet block accepted from another node, bytes
MAX_PACKET = 1 << 20
#: largest IRC line accepted from another node, bytes (a chat line of MAX_TEXT characters)
MAX_IRC_LINE = 4 * MAX_TEXT + 1024
#: events waiting to be published at most; beyond it new events are dropped (logged)
MAX_OUTBOX = 200_000
#: seconds a starting node waits for the snapshots of the live nodes before serving
SYNC_WAIT = 5.0
#: the Redis sorted set of the nodes' last heartbeats (unix seconds), for start-up decisions
NODES_KEY = "pep:cluster:nodes"
#: the Redis hash node id -> node number, and the counter that numbers new node ids
SLOTS_KEY = "pep:cluster:slots"
SEQ_KEY = "pep:cluster:seq"
#: match ids of node number k are the ids in 1..65535 with id % MATCH_STRIDE == k % MATCH_STRIDE
#: (4,095 matches per node; node ids beyond 16 share a residue with an earlier one)
MATCH_STRIDE = 16
#: IRC commands about a runtime channel that an IRC session's node forwards to the channel's node
IRC_FORWARDED = frozenset({"JOIN", "PART", "PRIVMSG", "NAMES", "TOPIC", "WHO", "MODE"})
#: client packets about the match a session is in (or joins): run by the match's node
ROUTED = frozenset({
    packets.C_JOIN_MATCH, packets.C_PART_MATCH, packets.C_MATCH_CHANGE_SLOT, packets.C_MATCH_READY,
    packets.C_MATCH_LOCK, packets.C_MATCH_CHANGE_SETTINGS, packets.C_MATCH_START, packets.C_MATCH_SCORE_UPDATE,
    packets.C_MATCH_COMPLETE, packets.C_MATCH_CHANGE_MODS, packets.C_MATCH_LOAD_COMPLETE,
    packets.C_MATCH_NO_BEATMAP, packets.C_MATCH_NOT_READY, packets.C_MATCH_FAILED, packets.C_MATCH_HAS_BEATMAP,
    packets.C_MATCH_SKIP_REQUEST, packets.C_MATCH_TRANSFER_HOST, packets.C_MATCH_CHANGE_TEAM,
    packets.C_MATCH_INVITE, packets.C_MATCH_CHANGE_PASSWORD, packets.C_CREATE_MATCH,
})


def world_channel(redis: Any) -> str:
    """The world channel name (prefixed)."""
    return redis.key("pep:cluster")


def node_channel(redis: Any, node: str) -> str:
    """The private channel of ``node`` (prefixed)."""
    return redis.key(f"pep:cluster:{node}")


async def live_nodes(redis: Any, timeout: float, but: str = "") -> list[str]:
    """Node ids whose last heartbeat in Redis is at most ``timeout`` seconds old (``but``
    excluded). Raises :class:`redis.exceptions.RedisError`."""
    now = time.time()
    names = await redis.client.zrangebyscore(redis.key(NODES_KEY), now - timeout, "+inf")
    return [n for n in names if n != but]


def _node_local(channel: Any) -> bool:
    """Whether ``channel`` lives on one node only: a temporary channel, or a runtime channel
    (``#spect_<id>``, ``#multi_<id>``: the host's or the match's node)."""
    return channel.temp or channel.client_name != channel.name



def _match_view(data: bytes, layout: Any) -> bytes:
    """The framed match packet ``data`` (26 or 27, modern layout, as another node encoded it)
    for a receiver of ``layout`` (docs/protocol.md §9.1): unchanged for the 16-slot layouts with
    every field, else decoded and re-encoded in that layout; b"" when it cannot be read."""
    if not layout.v[MATCH]:
        return data
    try:
        packet_id = data[0] | (data[1] << 8)
        return codec.write_match(packet_id, codec.read_match(data[7:]), layout)
    except (codec.PacketError, ValueError, IndexError) as exc:
        log.info("cluster: a match packet of %d bytes could not be re-laid out: %s", len(data), exc)
        return b""

class NodeInfo:
    """What this node knows of another node: its boot id, forwarding address, last event time
    (monotonic seconds) and whether its snapshot arrived."""

    __slots__ = ("boot", "address", "seen", "synced")

    def __init__(self, boot: str, address: str, seen: float) -> None:
        self.boot = boot
        self.address = address
        self.seen = seen
        self.synced = False


class EventError(ValueError):
    """An event from another node that does not have the required shape."""


def _text(obj: dict, key: str, max_len: int) -> str:
    value = obj.get(key)
    if type(value) is not str or len(value) > max_len:
        raise EventError(f"{key}: expected a string of at most {max_len} characters")
    return value


def _int(obj: dict, key: str, low: int = 0, high: int = 2**31 - 1) -> int:
    value = obj.get(key)
    if type(value) is not int or not low <= value <= high:
        raise EventError(f"{key}: expected an integer in {low}..{high}")
    return value


def _bytes(obj: dict, key: str) -> bytes:
    value = _text(obj, key, MAX_PACKET * 4 // 3 + 4)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EventError(f"{key}: not base64") from None


class Cluster:
    """This node's link to the others (see the module docstring).

    Publisher methods (:meth:`added`, :meth:`removed`, :meth:`changed`,
    :meth:`channel_message`, :meth:`private_message`, :meth:`relay`, :meth:`broadcast`) are
    synchronous and never raise: they queue one encoded event. Queries (:meth:`owns_user`,
    :meth:`is_leader`, :meth:`owner_address`) read memory only.
    """

    def __init__(self, state: State) -> None:
        cfg = state.cfg.cluster
        self.state = state
        self.node = cfg.node_id
        self.boot = secrets.token_hex(6)
        self.address = cfg.address or f"127.0.0.1:{state.cfg.server.port}"
        self.heartbeat = cfg.heartbeat
        self.timeout = cfg.node_timeout
        self.token_prefix = self.node + "."
        redis = state.redis
        self.redis = redis
        self.world = world_channel(redis)
        self.own = node_channel(redis, self.node)
        self.nodes: dict[str, NodeInfo] = {}
        self.presences: dict[str, dict[str, Token]] = {}  # node -> local key -> remote presence
        self._outbox: collections.deque[tuple[str, str]] = collections.deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.subscribed = asyncio.Event()
        self._header = json.dumps({"n": self.node, "b": self.boot})[:-1]  # '{"n": .., "b": ..'
        self.bad_events = Throttle("cluster: %d invalid event(s) dropped in the last interval: %s (%s)", logger=log)
        # packets enqueued to remote presences in this loop step (kind "pkt") and IRC lines for
        # their IRC connections (kind "irc"): (kind, node) -> (blocks by identity, token string
        # -> block indices); sent as one event per kind and node by _flush_relay
        self._relay: dict[tuple[str, str], tuple[dict[int, tuple[int, bytes]], dict[str, list[int]]]] = {}
        self._relay_scheduled = False
        # matches of the other nodes: id -> (node, censored NEW_MATCH bytes for a lobby join,
        # censored MATCH_UPDATE bytes for a tournament client's match info request 93)
        self.remote_matches: dict[int, tuple[str, bytes, bytes]] = {}
        # local tournament clients observing a match of another node (packet 108): match id ->
        # token string -> token; told of the match's end here when its node dies
        self.watching: dict[int, dict[str, Token]] = {}
        self.routed = ROUTED
        # the client packet handlers (events.HANDLERS), set by pep.py: a forwarded match packet
        # of a remote session runs through the same handler as a local one
        self.handlers: dict[int, Any] = {}
        self.dropped = 0  # events not published because the outbox was full
        self.received = 0  # events applied

    # ---------------------------------------------------------------- publishing
    def _send(self, kind: str, fields: dict[str, Any] | None = None, to: str | None = None) -> None:
        if self._relay and kind != "pkt" and kind != "irc":
            self._flush_relay()  # what was relayed before this event is published before it
        body = json.dumps(fields, separators=(",", ":"))[1:] if fields else "}"
        message = f'{self._header},"k":"{kind}"' + ("," + body if fields else body)
        if len(self._outbox) >= MAX_OUTBOX:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("cluster: outbox full (%d events); %d dropped so far", MAX_OUTBOX, self.dropped)
            return
        self._outbox.append((self.world if to is None else node_channel(self.redis, to), message))
        self._wake.set()

    def outgoing(self) -> bool:
        """Whether events wait in the outbox: the writer task, woken by the first of them,
        publishes them in its next step (read by the poll, which then answers one loop step
        later so the events reach Redis before its answer; docs/cluster.md, "Latency")."""
        return bool(self._outbox)

    def added(self, token: Token) -> None:
        """A local session appeared (login, IRC login, restore): ``up`` with ``new``."""
        self._send("up", {"r": record(token), "new": True})

    def removed(self, token: Token) -> None:
        """A local session is gone: ``down`` (its node of a match it observed forgets it there)."""
        self._send("down", {"t": token.token})
        if token.tournament and self.watching:
            for match_id in [i for i, watchers in self.watching.items() if token.token in watchers]:
                watchers = self.watching[match_id]
                del watchers[token.token]
                if not watchers:
                    del self.watching[match_id]

    def changed(self, token: Token) -> None:
        """A local session's status, stats, silence, privileges or channels changed: ``up``."""
        if token.node is None and not token.is_bot and token.token in self.state.tokens.by_token:
            self._send("up", {"r": record(token)})

    def channel_message(self, sender: Token, channel: Any, text: str, packet: bytes) -> None:
        """``sender`` said ``text`` in ``channel`` (``packet``: the encoded message): ``msg`` to
        every node; for a temporary channel (``#spectator``, ``#multiplayer``), which lives on
        one node, ``packet`` goes to its remote members through the relay instead."""
        if _node_local(channel):
            irc = self.state.irc
            remote_irc = irc.remote if irc is not None else {}  # IRC members: lines, not packets
            for member in channel.members.members.values():
                if member.node is not None and member is not sender and member.token not in remote_irc:
                    member.enqueue(packet if not member.layout.v[MESSAGE] else codec.message(
                        sender.username, text, channel.client_name, sender.user_id, member.layout))
        elif sender.node is None:
            self._send("msg", {"t": sender.token, "u": sender.user_id, "nm": sender.username,
                               "c": channel.name, "x": text})

    def private_message(self, sender: Token, target: Token, text: str) -> None:
        """``sender`` sent ``text`` to the remote presence ``target``: ``pm`` to its node."""
        if target.node is not None:
            self._send("pm", {"t": sender.token, "u": sender.user_id, "nm": sender.username,
                              "to": target.user_id, "x": text}, to=target.node)

    def relay(self, target: Token, data: bytes) -> None:
        """Deliver the encoded packets ``data`` to the remote session ``target`` (the relay of
        every :class:`objects.remote.RemotePresence`): batched per node until the end of the
        loop step, each distinct ``bytes`` object once (``pkt``)."""
        self._batch("pkt", target, data)

    def relay_irc(self, target: Token, line: bytes) -> None:
        """Deliver the IRC line ``line`` (one formatted line with CRLF, at most
        :data:`MAX_IRC_LINE` bytes) to the IRC connection of the remote session ``target``: what
        this node's IRC gateway writes to a remote IRC member of one of its runtime channels
        (docs/cluster.md), batched like :meth:`relay` (``irc``)."""
        self._batch("irc", target, line)

    def _batch(self, kind: str, target: Token, data: bytes) -> None:
        node = target.node
        if node is None:
            return
        batch = self._relay.get((kind, node))
        if batch is None:
            batch = self._relay[(kind, node)] = ({}, {})
        blocks, to = batch
        entry = blocks.get(id(data))
        if entry is None or entry[1] is not data:
            entry = blocks[id(data)] = (len(blocks), data)
        to.setdefault(real_token(target), []).append(entry[0])
        if not self._relay_scheduled:
            self._relay_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self._flush_relay)
            except RuntimeError:
                self._flush_relay()

    def _flush_relay(self) -> None:
        self._relay_scheduled = False
        batches, self._relay = self._relay, {}
        for (kind, node), (blocks, to) in batches.items():
            ordered = sorted(blocks.values(), key=lambda entry: entry[0])
            self._send(kind, {"d": [base64.b64encode(data).decode() for _, data in ordered],
                              "to": [[token, indices] for token, indices in to.items()]}, to=node)

    def call(self, node: str, token: Token, op: str, arg: Any = None) -> None:
        """Ask ``node`` to run ``op`` for the local session ``token`` (``call``; see
        :meth:`on_call` for the operations)."""
        self._send("call", {"t": token.token, "op": op, "x": arg}, to=node)

    # ---------------------------------------------------------------- matches
    def seat_changed(self, presence: Token, match_id: int | None) -> None:
        """A match of this node seated the remote session ``presence`` (``match_id``) or took
        it out (None): its node learns it (``mid``) to route the session's match packets here."""
        if presence.node is not None:
            self._send("mid", {"t": real_token(presence), "x": match_id}, to=presence.node)

    def route(self, token: Token, packet_id: int, payload: bytes) -> bool:
        """Send the match packet ``packet_id`` of the local ``token`` to the node of its match
        (``call frame``) when that match is another node's; returns whether it did."""
        state = self.state
        if packet_id == packets.C_JOIN_MATCH:
            try:
                match_id, _ = codec.read_join_match(payload)
            except codec.PacketError:
                return False
            owner = self.remote_matches.get(match_id)
            if owner is None:
                return False
            if token.match_id is not None and token.match_id != match_id:
                if token.match_id in state.matches:
                    multiplayer.leave(state, token)
                else:
                    self._leave_remote(token)
            # the seat is known here when the match's node says so (``mid``)
            self.call(owner[0], token, "frame", {"id": packet_id, "p": base64.b64encode(payload).decode()})
            return True
        if packet_id == packets.C_CREATE_MATCH:
            if token.match_id is not None and token.match_id not in state.matches:
                self._leave_remote(token)  # a new match here: leave the other node's first
            return False
        match_id = token.match_id
        if match_id is None or match_id in state.matches:
            return False
        owner = self.remote_matches.get(match_id)
        if owner is None:
            return False
        self.call(owner[0], token, "frame", {"id": packet_id, "p": base64.b64encode(payload).decode()})
        if packet_id == packets.C_PART_MATCH:
            token.match_id = None
        return True

    def _leave_remote(self, token: Token) -> None:
        owner = self.remote_matches.get(token.match_id or 0)
        if owner is not None:
            self.call(owner[0], token, "frame", {"id": packets.C_PART_MATCH, "p": ""})
        token.match_id = None

    def control(self, target: Token, op: str, arg: dict[str, Any]) -> None:
        """Ask the node of the remote session ``target`` to apply ``op`` to it (``ctl``):
        ``kick`` (``reason``, ``reply``: :func:`services.session.kick` there) or ``silence``
        (``end``: the silence end already stored in MySQL, unix seconds)."""
        if target.node is not None:
            self._send("ctl", {"t": real_token(target), "op": op, "x": arg}, to=target.node)

    def forward_command(self, sender: Token, match_id: int, text: str) -> bool:
        """A bot command of the local ``sender`` about the match ``match_id`` of another node
        (``!mp join``): sent as a private message to the bot on that node, which answers the
        same way (``call chat``); returns whether it was."""
        owner = self.remote_matches.get(match_id)
        bot = self.state.bot
        if owner is None or bot is None or sender.node is not None:
            return False
        self.call(owner[0], sender, "chat", {"to": bot.username, "x": text})
        return True

    def lobby_changed(self, match: Any) -> None:
        """A match of this node changed: its censored update (and NEW_MATCH for later lobby
        joins) to the other nodes' lobbies (``lobby``)."""
        self._send("lobby", {"i": match.id, "u": base64.b64encode(match.lobby_update()).decode(),
                             "nw": base64.b64encode(match.lobby_new()).decode()})

    def lobby_gone(self, match_id: int) -> None:
        """A match of this node was disposed (``lobby`` with ``gone``)."""
        self._send("lobby", {"i": match_id, "gone": True})

    def lobby_list(self, token: Token) -> None:
        """NEW_MATCH of every match of the other nodes to the local ``token`` joining the lobby."""
        for _, data, _ in self.remote_matches.values():
            token.enqueue(_match_view(data, token.layout))

    def tourney_info(self, token: Token, match_id: int) -> bool:
        """TOURNAMENT_MATCH_INFO_REQUEST (93) of the local ``token`` (already checked as
        tournament staff) about ``match_id``, a match of another node: the censored MATCH_UPDATE
        that node last published (``lobby``), in the receiver's layout, from memory (the same
        bytes the match's node would send). Returns whether the match is another node's."""
        entry = self.remote_matches.get(match_id)
        if entry is None:
            return False
        data = _match_view(entry[2], token.layout)
        if data:
            token.enqueue(data)
        return True

    def observe(self, token: Token, match_id: int, on: bool) -> bool:
        """TOURNAMENT_JOIN (108, ``on``) / LEAVE (109) MATCH CHANNEL of the local ``token``
        (already checked as tournament staff for a join) about ``match_id``, a match of
        another node: the match's node runs the rules with the presence as the observer
        (``call obs``; its 64/66, the match updates and the channel lines come back through the
        relay). Returns False when the match is not another node's (or, for a leave, was not
        observed from here)."""
        if token.node is not None:
            return False
        entry = self.remote_matches.get(match_id)
        if on:
            if entry is None or token.match_id == match_id:
                return False  # unknown here, or a seat in it: no observer (as on one node)
            self.watching.setdefault(match_id, {})[token.token] = token
            token.tourney_match_id = match_id
        else:
            watchers = self.watching.get(match_id)
            if watchers is None or watchers.pop(token.token, None) is None:
                return False
            if not watchers:
                del self.watching[match_id]
            if token.tourney_match_id == match_id:
                token.tourney_match_id = None
            if entry is None:
                return True
        self.call(entry[0], token, "obs", {"i": match_id, "on": on})
        return True

    def _unwatch(self, match_id: int) -> dict[str, Token]:
        """Forget the local observers of the match ``match_id`` of another node (it is gone);
        returns them."""
        watchers = self.watching.pop(match_id, {})
        for token in watchers.values():
            if token.tourney_match_id == match_id:
                token.tourney_match_id = None
        return watchers

    def runtime_owner(self, name: str) -> str | None:
        """The node that holds the runtime channel ``name`` (internal: ``#multi_<match id>``:
        the match's node; ``#spect_<host id>``: the node of the host's session) when it is
        another node, else None. Memory only."""
        if name.startswith(MULTIPLAYER_PREFIX):
            suffix = name[len(MULTIPLAYER_PREFIX):]
            if suffix.isdigit() and len(suffix) <= 5:
                entry = self.remote_matches.get(int(suffix))
                return None if entry is None else entry[0]
        elif name.startswith(SPECTATOR_PREFIX):
            suffix = name[len(SPECTATOR_PREFIX):]
            if suffix.isdigit() and len(suffix) <= 10:
                host = self.state.tokens.user(int(suffix))
                return None if host is None else host.node
        return None

    def irc_command(self, token: Token, node: str, command: str, params: list[str], multi_prefix: bool) -> None:
        """The IRC command ``command`` (``JOIN``, ``PART``, ``PRIVMSG``, ``NAMES``, ``TOPIC``,
        ``WHO``, ``MODE``) of the local IRC session ``token`` about a runtime channel of
        ``node`` (``params[0]``, its IRC or internal name): run there by the IRC gateway with the
        presence as the user (``call irc``); its replies come back as ``irc`` lines."""
        self.call(node, token, "irc", {"c": command, "p": params, "mp": multi_prefix})

    def spectate(self, token: Token, host: Token | None, target_id: int) -> None:
        """START_SPECTATING of the local ``token`` when the host or the current host is on
        another node: leave the current host (there or here), then spectate ``host`` through
        its node (``spec_start``), or here when it is local."""
        old = token.spectating
        if old is not None and old is not host:
            if old.node is not None:
                self.unspectate(token)
            else:
                spectate.stop_spectating(self.state, token)
        if host is None or host.node is None:
            spectate.start_spectating(self.state, token, target_id)
            return
        token.spectating = host  # what this node knows; the rules run on the host's node
        host.add_spectator(token)
        self.call(host.node, token, "spec_start", target_id)

    def unspectate(self, token: Token) -> None:
        """STOP_SPECTATING of the local ``token`` whose host is on another node (``spec_stop``)."""
        host = token.spectating
        token.spectating = None
        if host is not None:
            host.remove_spectator(token.token)
            if host.node is not None:
                self.call(host.node, token, "spec_stop")

    def remote_channel(self, sender: Token, name: str, text: str) -> bool:
        """``sender`` wrote in ``name``, a channel this node does not have: when it is the
        ``#spectator`` of a host on another node, the message is said there (``call chat``);
        returns whether it was."""
        match_id = sender.match_id
        if match_id is not None and name == f"{MULTIPLAYER_PREFIX}{match_id}":
            owner = self.remote_matches.get(match_id)
            if owner is None:
                return False
            self.call(owner[0], sender, "chat", {"to": "#multiplayer", "x": text})
            return True
        if self.watching and name.startswith(MULTIPLAYER_PREFIX):
            # a tournament client observing the match there (packet 108): said in that channel
            suffix = name[len(MULTIPLAYER_PREFIX):]
            watched = int(suffix) if suffix.isdigit() and len(suffix) <= 5 else 0
            owner = self.remote_matches.get(watched)
            if owner is not None and sender.token in self.watching.get(watched, ()):
                self.call(owner[0], sender, "chat", {"to": name, "x": text})
                return True
            return False
        host = sender.spectating
        if host is None or host.node is None or name != spectate.channel_name(host):
            return False
        self.call(host.node, sender, "chat", {"to": "#spectator", "x": text})
        return True

    def broadcast(self, data: bytes) -> None:
        """Deliver ``data`` to every session of the other nodes: ``all``."""
        self._send("all", {"d": base64.b64encode(data).decode()})

    # ---------------------------------------------------------------- queries
    def is_leader(self) -> bool:
        """Whether this node has the smallest id among the live nodes (does the world-wide work
        of a ``peppy:*`` message about an offline user, or of ``peppy:bot_msg``)."""
        return all(self.node < other for other in self.nodes)

    def owns_user(self, user_id: int) -> bool:
        """Whether this node handles a ``peppy:*`` message about ``user_id``: it holds one of
        the user's sessions, or nobody does and it is the leader."""
        tokens = self.state.tokens.by_user.get(user_id, ())
        if any(t.node is None for t in tokens):
            return True
        return not tokens and self.is_leader()

    def owner_address(self, token_string: str) -> str | None:
        """``host:port`` of the live node that created ``token_string``; None when it is this
        node's, unknown or dead."""
        node, dot, _ = token_string.partition(".")
        if not dot or node == self.node:
            return None
        info = self.nodes.get(node)
        return None if info is None else info.address

    # ---------------------------------------------------------------- service
    async def start(self) -> None:
        """Subscribe, announce this node (``hello``) and wait (at most :data:`SYNC_WAIT`
        seconds) for the snapshots of the nodes that were alive, so the world is complete
        before the first login is served."""
        self.state.tokens.observer = self
        try:
            expected = set(await live_nodes(self.redis, self.timeout, but=self.node))
            number = await self._node_number()
        except RedisError as exc:
            log.warning("cluster: cannot read the live nodes: %s", exc)
            expected = set()
            number = 0
        self.state.matches.stride = MATCH_STRIDE
        self.state.matches.offset = number % MATCH_STRIDE
        self._tasks = [asyncio.ensure_future(self._writer()), asyncio.ensure_future(self._reader()),
                       asyncio.ensure_future(self._beat())]
        try:
            await asyncio.wait_for(self.subscribed.wait(), SYNC_WAIT)
        except asyncio.TimeoutError:
            log.warning("cluster: not subscribed after %.0f s; going on", SYNC_WAIT)
        deadline = time.monotonic() + SYNC_WAIT
        while time.monotonic() < deadline:
            missing = [n for n in expected if not (n in self.nodes and self.nodes[n].synced)]
            if not missing:
                break
            await asyncio.sleep(0.05)
        else:
            log.warning("cluster: no snapshot from %s within %.0f s", ", ".join(sorted(missing)), SYNC_WAIT)
        log.info("cluster: node %s (boot %s, address %s) joined; %d other node(s), %d remote session(s)",
                 self.node, self.boot, self.address, len(self.nodes),
                 sum(len(p) for p in self.presences.values()))

    async def _node_number(self) -> int:
        """This node id's number (0, 1, ...): kept in Redis so that it is the same after a
        restart; decides which match ids the node allocates."""
        client, key = self.redis.client, self.redis.key(SLOTS_KEY)
        value = await client.hget(key, self.node)
        if value is None:
            number = int(await client.incr(self.redis.key(SEQ_KEY))) - 1
            await client.hsetnx(key, self.node, number)
            value = await client.hget(key, self.node)
        return int(value)

    async def stop(self) -> None:
        """Say ``bye`` (the other nodes drop this node's sessions at once), flush, and stop."""
        self.state.tokens.observer = None
        self._send("bye")
        deadline = time.monotonic() + 2.0
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            await self.redis.client.zrem(self.redis.key(NODES_KEY), self.node)
        except RedisError:
            pass
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3.0)
        self._tasks = []

    async def _writer(self) -> None:
        client = self.redis.client
        outbox = self._outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                batch = [outbox.popleft() for _ in range(min(len(outbox), 512))]
                try:
                    if len(batch) == 1:
                        await client.publish(*batch[0])
                    else:
                        async with client.pipeline(transaction=False) as pipe:
                            for channel, message in batch:
                                pipe.publish(channel, message)
                            await pipe.execute()
                except (RedisError, OSError) as exc:
                    log.warning("cluster: %d event(s) not published: %s", len(batch), exc)
                    await asyncio.sleep(0.5)

    async def _beat(self) -> None:
        key = self.redis.key(NODES_KEY)
        while True:
            try:
                await self.redis.client.zadd(key, {self.node: time.time()})
            except (RedisError, OSError) as exc:
                log.warning("cluster: heartbeat not stored: %s", exc)
            self._send("hb", {"a": self.address})
            self.check_nodes()
            await asyncio.sleep(self.heartbeat)

    async def _reader(self) -> None:
        failures = 0
        while True:
            client = self.redis.pubsub_client(f"pep.py-cluster:{self.node}")
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.world, self.own)
                self.subscribed.set()
                failures = 0
                # every node answers with its snapshot, and asks for ours (we may hold sessions
                # they dropped while we were away)
                self._send("hello", {"a": self.address, "ask": True})
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.handle(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                failures += 1
                self.subscribed.clear()
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "cluster: pub/sub connection lost (%s); reconnecting", exc)
                await asyncio.sleep(min(1.0, 0.2 * failures))
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:  # the connection is gone anyway
                    pass

    # ---------------------------------------------------------------- receiving
    def handle(self, data: bytes | str) -> None:
        """Validate and apply one event from the wire; an invalid event is logged and dropped,
        nothing raises."""
        try:
            if len(data) > MAX_EVENT:
                raise EventError(f"{len(data)} bytes")
            event = json.loads(data)
            if not isinstance(event, dict):
                raise EventError("not an object")
            node = event.get("n")
            if type(node) is not str or not NODE_ID_RE.fullmatch(node):
                raise EventError("bad node id")
            if node == self.node:
                return  # our own events on the world channel
            boot = _text(event, "b", 32)
            kind = event.get("k")
            handler = _HANDLERS.get(kind) if type(kind) is str else None
            if handler is None:
                raise EventError(f"unknown kind {kind!r}")
            self._seen(node, boot, event)
            handler(self, node, event)
            self.received += 1
        except (EventError, SnapshotError, ValueError, TypeError, UnicodeDecodeError) as exc:
            self.bad_events.hit(type(exc).__name__, str(exc)[:200])
        except Exception:
            log.exception("cluster: applying an event failed")

    def _seen(self, node: str, boot: str, event: dict) -> None:
        info = self.nodes.get(node)
        now = time.monotonic()
        if info is not None and info.boot != boot:
            log.warning("cluster: node %s restarted (boot %s -> %s)", node, info.boot, boot)
            self.drop_node(node)
            info = None
        if info is None:
            address = event.get("a")
            info = self.nodes[node] = NodeInfo(boot, address if type(address) is str and len(address) <= 256 else "", now)
            if event.get("k") not in ("hello", "sync", "bye"):
                # a node we have no snapshot of (we missed its hello): ask for one
                self._send("hello", {"a": self.address, "ask": False}, to=node)
        info.seen = now
        address = event.get("a")
        if type(address) is str and 0 < len(address) <= 256:
            info.address = address

    def check_nodes(self, now: float | None = None) -> list[str]:
        """Drop the nodes silent for longer than ``[cluster] node_timeout``; returns their ids."""
        now = time.monotonic() if now is None else now
        dead = [node for node, info in self.nodes.items() if now - info.seen > self.timeout]
        for node in dead:
            log.warning("cluster: node %s silent for %.0f s: its sessions leave the world", node, now - self.nodes[node].seen)
            self.drop_node(node)
        return dead

    def drop_node(self, node: str) -> int:
        """Remove every presence of ``node`` (as logouts) and forget it; returns how many."""
        gone = list(self.presences.pop(node, {}).values())
        self.nodes.pop(node, None)
        for token in gone:
            self.remove_presence(token)
        for match_id in [i for i, (owner, _, _) in self.remote_matches.items() if owner == node]:
            self._match_closed(match_id)
        if self.state.irc is not None:
            self.state.irc.node_gone(node)  # its runtime channels, for the local IRC users
        if gone and self.is_leader():
            sessions = [(t.user_id, t.ip) for t in gone if t.ip and not any(
                o.ip == t.ip for o in self.state.tokens.user_tokens(t.user_id))]
            if sessions:
                self.state.spawn(self._forget_sessions(sessions), "session keys of a dead node")
        return len(gone)

    def _match_closed(self, match_id: int) -> None:
        """The match ``match_id`` of a dead node is closed: its local members get MATCH_DISPOSE
        and 66 ``#multiplayer``, the local lobby MATCH_DISPOSE."""
        self.remote_matches.pop(match_id, None)
        state = self.state
        dispose = codec.match_dispose(match_id)
        member = dispose + codec.channel_kicked(multiplayer.CLIENT_CHANNEL)
        watchers = self._unwatch(match_id)
        for token in state.tokens.by_token.values():
            if token.node is None and token.match_id == match_id and match_id not in state.matches:
                token.match_id = None
                token.enqueue(member)
            elif token.node is None and token.token in watchers:
                token.enqueue(member)  # a tournament observer of it, as on a dispose
            elif token.node is None and token.in_lobby:
                token.enqueue(dispose)

    async def _forget_sessions(self, sessions: list[tuple[int, str]]) -> None:
        for user_id, ip in sessions:
            await self.redis.remove_session_ip(user_id, ip)

    # ---------------------------------------------------------------- applying
    def upsert(self, node: str, rec: Record, new: bool) -> Token:
        """Create or update the remote presence of ``node`` described by ``rec``."""
        state = self.state
        key = local_key(rec.str("t", MAX_TOKEN))
        token = state.tokens.by_token.get(key)
        if token is not None and token.node == node:
            names = apply_record(token, rec)
            self._reconcile_channels(token, names)
            return token
        old_claim = token
        token = new_remote(rec, node, self.relay, self.seat_changed)  # raises before any change
        if old_claim is not None:  # the same token string from another node: the newer claim wins
            self.remove_presence(old_claim)
        olds = state.tokens.user_tokens(token.user_id) if new and not token.tournament else []
        # in the list first: the replaced session's logout below then sees the new session (no
        # 12 to anyone, and the address it shares stays in peppy:sessions)
        state.tokens.add(token)
        self.presences.setdefault(node, {})[key] = token
        for old in olds:
            # a login on another node replaces the user's game session (as on one node): this
            # node's, or a presence of a third node (stale when that node died); the login's
            # node replaces its own, and an IRC session never is
            if (old.node != node and not old.tournament and old.irc is None and not old.is_bot
                    and not old.remote_irc):
                session.logout(state, old, broadcast=False)
        self._reconcile_channels(token, apply_record(token, rec))
        if not token.restricted:
            state.tokens.broadcast(token.presence_packet(), but=token)
        return token

    def _reconcile_channels(self, token: Token, names: set[str]) -> None:
        state = self.state
        for name in token.channels - names:
            channel = state.channels.get(name)
            if channel is not None and _node_local(channel):
                continue  # this node's #spectator/#multiplayer: its own rules keep them
            token.channels.discard(name)
            if channel is not None and channel.members.remove(token):
                for listener in state.chat_listeners:
                    listener.parted(channel, token, False)
        for name in names - token.channels:
            channel = state.channels.get(name)
            if channel is None or _node_local(channel):
                continue  # a temporary channel of the other node, or not loaded here
            token.channels.add(name)
            if channel.members.add(token):
                for listener in state.chat_listeners:
                    listener.joined(channel, token)

    def remove_presence(self, token: Token) -> None:
        """Remove the remote presence ``token`` like a logout: out of its channels and the
        lobby, then 12 to everyone when the user has no other session and is not restricted."""
        state = self.state
        if token.logged_out:
            return
        # a spectator of a host here (the rules of this node), then this node's sessions that
        # watched it through its node (they were told there)
        spectate.stop_spectating(state, token)
        multiplayer.leave_match(state, token)  # a seat in a match of this node goes to the rules
        for watcher in tuple(token.spectators.values()):
            if watcher.spectating is token:
                watcher.spectating = None
        token.clear_spectators()
        for listener in state.chat_listeners:
            listener.logged_out(token)
        token.logged_out = True
        for name in list(token.channels):
            channel = state.channels.get(name)
            if channel is not None:
                channel.members.remove(token)
        token.channels.clear()
        state.lobby.remove(token)
        state.tokens.remove(token)
        presences = self.presences.get(token.node or "")
        if presences is not None:
            presences.pop(token.token, None)
        if not token.restricted and not state.tokens.user_tokens(token.user_id):
            state.tokens.broadcast_layouts(token.quit_packet, QUIT)

    def _sender(self, event: dict) -> tuple[int, str, Token | None]:
        user_id = _int(event, "u", 1)
        name = _text(event, "nm", 64)
        bot = self.state.bot
        if bot is not None and user_id == bot.user_id:
            return user_id, name, bot
        return user_id, name, self.state.tokens.by_token.get(local_key(_text(event, "t", MAX_TOKEN)))

    def on_hello(self, node: str, event: dict) -> None:
        tokens = [record(t) for t in self.state.tokens.by_token.values()
                  if t.node is None and not t.is_bot and not t.logged_out and not t.kicked]
        self._send("sync", {"a": self.address, "users": tokens}, to=node)
        if event.get("ask") is True:
            self._send("hello", {"a": self.address, "ask": False}, to=node)
        for match in self.state.matches:  # the lobby of the new node
            if not match.disposed:
                self.lobby_changed(match)

    def on_sync(self, node: str, event: dict) -> None:
        users = event.get("users")
        if type(users) is not list or len(users) > 1_000_000:
            raise EventError("users: expected an array")
        listed = set()
        for i, item in enumerate(users):
            try:
                token = self.upsert(node, Record(item, f"sync[{i}]"), False)
                listed.add(token.token)
            except (SnapshotError, EventError) as exc:
                self.bad_events.hit(type(exc).__name__, str(exc)[:200])
        for key, token in list(self.presences.get(node, {}).items()):
            if key not in listed:
                self.remove_presence(token)
        info = self.nodes.get(node)
        if info is not None:
            info.synced = True

    def on_heartbeat(self, node: str, event: dict) -> None:
        return None  # _seen did the work

    def on_bye(self, node: str, event: dict) -> None:
        log.info("cluster: node %s stopped", node)
        self.drop_node(node)

    def on_up(self, node: str, event: dict) -> None:
        self.upsert(node, Record(event.get("r"), "up"), event.get("new") is True)

    def on_down(self, node: str, event: dict) -> None:
        token = self.state.tokens.by_token.get(local_key(_text(event, "t", MAX_TOKEN)))
        if token is not None and token.node == node:
            self.remove_presence(token)

    def on_message(self, node: str, event: dict) -> None:
        state = self.state
        channel = state.channels.get(_text(event, "c", 64))
        text = _text(event, "x", MAX_TEXT)
        user_id, name, sender = self._sender(event)
        if channel is None:
            return
        channel.members.broadcast_layouts(lambda lay: codec.message(name, text, channel.client_name, user_id, lay),
                                          MESSAGE, but=sender)
        if sender is not None:
            for listener in state.chat_listeners:
                listener.channel_message(channel, sender, text)

    def on_private(self, node: str, event: dict) -> None:
        state = self.state
        text = _text(event, "x", MAX_TEXT)
        user_id, name, sender = self._sender(event)
        target = state.tokens.user(_int(event, "to", 1))
        if target is None or target.node is not None:
            return  # gone meanwhile
        bot = state.bot
        if (bot is None or user_id != bot.user_id) and (
                (target.block_nonfriend_dms and user_id not in target.friends) or user_id in target.blocked):
            if sender is not None:
                sender.enqueue(codec.dms_blocked(target.username, sender.layout))  # relayed to its node
            return
        target.enqueue(codec.message(name, text, target.username, user_id, target.layout))
        if sender is not None:
            for listener in state.chat_listeners:
                listener.private_message(sender, target, text)

    def _recipients(self, event: dict, max_block: int) -> tuple[list[bytes], list[tuple[Token, list[int]]]]:
        """The blocks and the local recipients (with their block indices) of a ``pkt`` or
        ``irc`` event; sessions gone meanwhile are left out. Raises :class:`EventError`."""
        blocks_raw = event.get("d")
        to = event.get("to")
        if type(blocks_raw) is not list or type(to) is not list or len(blocks_raw) > 100_000 or len(to) > 1_000_000:
            raise EventError("expected arrays d and to")
        blocks = [_bytes({"d": item}, "d") for item in blocks_raw]
        if any(len(block) > max_block for block in blocks):
            raise EventError("block too large")
        tokens = self.state.tokens
        out = []
        for item in to:
            if type(item) is not list or len(item) != 2 or type(item[1]) is not list:
                raise EventError("bad recipient")
            token = tokens.get(_text({"t": item[0]}, "t", MAX_TOKEN))
            for index in item[1]:
                if type(index) is not int or not 0 <= index < len(blocks):
                    raise EventError("bad block index")
            if token is not None and token.node is None:
                out.append((token, item[1]))
        return blocks, out

    def on_packet(self, node: str, event: dict) -> None:
        blocks, recipients = self._recipients(event, MAX_PACKET)
        for token, indices in recipients:
            for index in indices:
                token.enqueue(blocks[index])

    def on_irc(self, node: str, event: dict) -> None:
        """``irc``: lines of ``node``'s IRC gateway for the IRC connections of sessions of this
        node (members of a runtime channel there); each line is one CRLF-terminated line."""
        blocks, recipients = self._recipients(event, MAX_IRC_LINE)
        for block in blocks:
            if not block.endswith(b"\r\n") or b"\n" in block[:-2] or b"\r" in block[:-2] or b"\0" in block:
                raise EventError("irc: not one line")
        gateway = self.state.irc
        if gateway is None:
            return
        for token, indices in recipients:
            if token.irc is not None:
                for index in indices:
                    gateway.relayed(node, token, blocks[index])

    def on_control(self, node: str, event: dict) -> None:
        """``ctl``: a rule of ``node`` kicks or silences a session of this node."""
        state = self.state
        token = state.tokens.get(_text(event, "t", MAX_TOKEN))
        arg = event.get("x")
        if type(arg) is not dict:
            raise EventError("ctl: expected an object")
        op = event.get("op")
        if op == "kick":
            reason, reply = _text(arg, "reason", 1024), _int(arg, "reply", -(2**31), 2**31 - 1)
            if token is not None and token.node is None and not token.kicked:
                session.kick(state, token, reason, reply)
        elif op == "silence":
            end = _int(arg, "end", 0, 2**40)
            if token is not None and token.node is None:
                token.silence_end = end
                self.changed(token)
        else:
            raise EventError(f"unknown ctl {op!r}")

    def on_seat(self, node: str, event: dict) -> None:
        """``mid``: a session of this node was seated in a match of ``node`` (x: its id) or
        left it (x: null)."""
        state = self.state
        token = state.tokens.get(_text(event, "t", MAX_TOKEN))
        value = event.get("x")
        if value is not None and (type(value) is not int or not 1 <= value <= 65535):
            raise EventError("mid: bad match id")
        if token is None or token.node is not None:
            return
        if value is None:
            if token.match_id is not None and token.match_id not in state.matches:
                token.match_id = None
        elif value in self.remote_matches or token.match_id == value:
            if token.match_id is not None and token.match_id in state.matches:
                multiplayer.leave(state, token)  # seated elsewhere meanwhile: the later seat wins
            token.match_id = value

    def on_lobby(self, node: str, event: dict) -> None:
        """``lobby``: a match of ``node`` changed (``u``: censored update, ``nw``: NEW_MATCH) or
        is gone (``gone``)."""
        state = self.state
        match_id = _int(event, "i", 1, 65535)
        if match_id in state.matches:
            raise EventError(f"lobby: match {match_id} is this node's")
        if event.get("gone") is True:
            self._unwatch(match_id)  # its observers here were told by its node (relay)
            if self.remote_matches.pop(match_id, None) is not None:
                data = codec.match_dispose(match_id)
                for token in state.lobby.members.values():
                    if token.node is None and token.match_id != match_id:
                        token.enqueue(data)
            return
        update, new = _bytes(event, "u"), _bytes(event, "nw")
        self.remote_matches[match_id] = (node, new, update)
        views: dict[int, bytes] = {}  # one re-encoding per older match layout (issue 15)
        for token in state.lobby.members.values():
            if token.node is None and token.match_id != match_id:
                variant = token.layout.v[MATCH]
                if variant not in views:
                    views[variant] = _match_view(update, token.layout)
                if views[variant]:
                    token.enqueue(views[variant])

    def runtime_local(self, name: str) -> bool:
        """Whether ``name`` (an IRC name ``#mp_<id>``/``#spec_<id>`` or an internal one) names
        a runtime channel that is not another node's (this node holds it, or nobody does): the
        only channels an ``irc`` call may be about."""
        low = name.lower()
        for irc, internal in (("#mp_", MULTIPLAYER_PREFIX), ("#spec_", SPECTATOR_PREFIX)):
            if low.startswith(irc):
                name = internal + name[len(irc):]
        for prefix in (MULTIPLAYER_PREFIX, SPECTATOR_PREFIX):
            if name.startswith(prefix):
                suffix = name[len(prefix):]
                return suffix.isdigit() and len(suffix) <= 10 and self.runtime_owner(name) is None
        return False

    def on_call(self, node: str, event: dict) -> None:
        """``spec_start`` (x: the host's user id), ``spec_stop``, ``spec_cant``, ``chat`` (x:
        ``{"to", "x"}``, said by the session here, on this node's rules), ``frame`` (x: ``{"id",
        "p"}``, a match packet), ``obs`` (x: ``{"i": match id, "on": bool}``, packets 108/109),
        ``irc`` (x: ``{"c": command, "p": params, "mp": multi-prefix}``, an IRC command about a
        runtime channel of this node, run by the IRC gateway)."""
        state = self.state
        token = state.tokens.by_token.get(local_key(_text(event, "t", MAX_TOKEN)))
        if token is None or token.node != node:
            return
        op = event.get("op")
        if op == "spec_start":
            spectate.start_spectating(state, token, _int(event, "x", -(2**31), 2**31 - 1))
        elif op == "spec_stop":
            spectate.stop_spectating(state, token)
        elif op == "spec_cant":
            spectate.cant_spectate(state, token)
        elif op == "frame":
            arg = event.get("x")
            if type(arg) is not dict:
                raise EventError("frame: expected an object")
            packet_id = _int(arg, "id", 0, 65535)
            handler = self.handlers.get(packet_id)
            if packet_id not in ROUTED or packet_id == packets.C_CREATE_MATCH or handler is None:
                raise EventError(f"frame: packet {packet_id} is not a match packet")
            payload = _bytes(arg, "p")
            if len(payload) > state.cfg.limits.max_payload:
                raise EventError("frame: payload too large")
            if not token.restricted:
                try:
                    handler(state, token, payload)
                except codec.PacketError as exc:
                    log.info("cluster: malformed packet %d of user=%d: %s", packet_id, token.user_id, exc)
        elif op == "chat":
            arg = event.get("x")
            if type(arg) is not dict:
                raise EventError("chat: expected an object")
            chat.send_message(state, token, _text(arg, "to", 64), _text(arg, "x", MAX_TEXT))
        elif op == "obs":
            arg = event.get("x")
            if type(arg) is not dict or type(arg.get("on")) is not bool:
                raise EventError("obs: expected an object with a boolean on")
            match_id = _int(arg, "i", 1, 65535)
            if arg["on"]:
                multiplayer.observe(state, token, match_id)
            else:
                multiplayer.stop_observing(state, token, match_id)
        elif op == "irc":
            arg = event.get("x")
            if type(arg) is not dict or type(arg.get("mp")) is not bool:
                raise EventError("irc: expected an object with a boolean mp")
            command = _text(arg, "c", 16)
            params = arg.get("p")
            if command not in IRC_FORWARDED or type(params) is not list or not 1 <= len(params) <= 3:
                raise EventError("irc: bad command")
            params = [_text({"p": param}, "p", MAX_TEXT) for param in params]
            everything = command == "JOIN" and params[0] == "0"  # part every channel here
            if (everything or self.runtime_local(params[0])) and state.irc is not None:
                state.irc.remote_command(token, command, params, arg["mp"])
        else:
            raise EventError(f"unknown call {op!r}")

    def on_all(self, node: str, event: dict) -> None:
        data = _bytes(event, "d")
        for token in self.state.tokens.by_token.values():
            if token.node is None and not token.is_bot:
                token.enqueue(data)


_HANDLERS = {
    "hello": Cluster.on_hello, "sync": Cluster.on_sync, "hb": Cluster.on_heartbeat, "bye": Cluster.on_bye,
    "up": Cluster.on_up, "down": Cluster.on_down, "msg": Cluster.on_message, "pm": Cluster.on_private,
    "pkt": Cluster.on_packet, "irc": Cluster.on_irc, "all": Cluster.on_all, "call": Cluster.on_call,
    "mid": Cluster.on_seat, "lobby": Cluster.on_lobby, "ctl": Cluster.on_control,
}
