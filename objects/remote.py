"""Remote presences: the sessions of the other nodes of a cluster, as seen by this node
(docs/cluster.md).

A remote presence is a :class:`objects.token.Token` with ``node`` set to the owning node's id.
It sits in the token list and in channel member lists like a local session, so everything that
reads the world (the presence list of a login, ``85``/``3`` stats requests, the HTTP API, the
online count) sees it with no change. It is never polled and never receives bytes:

* its key in the token list is ``"@" + token string`` (:func:`local_key`), so a poll carrying
  the real token string never finds it here (it is forwarded to its node: handlers/bancho.py);
* its ``queue`` is :data:`SINK`, a list whose ``append`` does nothing, so a broadcast that
  reaches it (:func:`objects.stream.fan_out`) costs one no-op call and no memory (what the
  remote users of a channel or of the whole world must see crosses once per message instead:
  services/cluster.py);
* what is sent to it alone (:meth:`RemotePresence.enqueue`: a spectator's frames, a private
  reply, a match update of the match owner's node) is handed to ``relay(presence, bytes)``,
  which batches it to the owning node (services/cluster.py);
* its ``last_seen`` is +infinity, so the timeout sweep of this node never logs it out (its own
  node does; a dead node's presences are dropped by services/cluster.py).

Records are the JSON objects that describe a session on the wire (:func:`record`); they are
read back with the checked :class:`objects.snapshot.Record` (:func:`apply_record`), so a
malformed record from another node raises :class:`objects.snapshot.SnapshotError` and changes
nothing.
"""

from __future__ import annotations

import math
from typing import Any

from helpers.layout import MODERN, layout_for_build
from objects.snapshot import Record
from objects.token import Token

#: the prefix of a remote presence's key in the token list (never the first character of a real token)
REMOTE_MARK = "@"
#: largest token string accepted from another node (a 32-character node id, a dot, a UUID)
MAX_TOKEN = 69
#: most channels a record may list
MAX_CHANNELS = 256


class _Sink(list):
    """A list that never holds anything: the queue of every remote presence."""

    __slots__ = ()

    def append(self, item: Any) -> None:  # noqa: D102 - the whole point is doing nothing
        return None


#: the shared queue of every remote presence (always empty)
SINK = _Sink()


_MATCH_ID = Token.__dict__["match_id"]  # the slot of Token.match_id


class RemotePresence(Token):
    """A session of another node (see the module docstring); ``relay(presence, data)`` carries
    what is enqueued to it to its node (None: dropped); ``on_match(presence, match_id)`` is told
    when this node's match rules seat it in a match or take it out (None: nobody);
    ``remote_irc``: the session is an IRC one on its node (``irc`` stays None here; never
    replaced by a login, never a user's main session)."""

    __slots__ = ("relay", "on_match", "remote_irc")

    @property
    def match_id(self) -> int | None:  # type: ignore[override]
        """The id of the match of this node the session is seated in, or None."""
        return _MATCH_ID.__get__(self, Token)

    @match_id.setter
    def match_id(self, value: int | None) -> None:
        try:
            old = _MATCH_ID.__get__(self, Token)
        except AttributeError:  # Token.__init__ sets it the first time
            old = None
        _MATCH_ID.__set__(self, value)
        notify = getattr(self, "on_match", None)
        if notify is not None and old != value:
            notify(self, value)

    def enqueue(self, data: bytes) -> None:
        """Hand ``data`` (encoded packets) to the relay towards the owning node."""
        relay = self.relay
        if relay is not None:
            relay(self, data)


def local_key(token_string: str) -> str:
    """The key under which the remote session ``token_string`` is kept in this node's lists."""
    return REMOTE_MARK + token_string


def real_token(token: Token) -> str:
    """The token string of ``token`` as its own node knows it (without :data:`REMOTE_MARK`)."""
    key = token.token
    return key[1:] if token.node is not None and key.startswith(REMOTE_MARK) else key


def record(token: Token) -> dict[str, Any]:
    """The wire record of the local session ``token``: identity, presence, stats, silence,
    away message, DM setting and channel names (internal names). JSON-ready; about 500 bytes."""
    return {
        "t": token.token, "u": token.user_id, "n": token.username, "s": token.safe_name,
        "p": token.privileges, "r": token.restricted, "a": token.admin, "tn": token.tournament,
        "ip": token.ip, "v": token.version, "o": token.utc_offset, "c": token.country,
        "ci": token.country_index, "lo": token.longitude, "la": token.latitude,
        "pr": token.presence_rank, "cp": token.client_privileges,
        "ac": token.action, "at": token.action_text, "md": token.beatmap_md5, "m": token.mods,
        "mo": token.mode, "b": token.beatmap_id, "rx": token.relax, "ap": token.autopilot,
        "rs": token.ranked_score, "acc": token.accuracy, "pc": token.playcount,
        "ts": token.total_score, "rk": token.rank, "pp": token.pp, "se": token.silence_end,
        "bd": token.block_nonfriend_dms, "aw": token.away_message,
        "ch": sorted(token.channels)[:MAX_CHANNELS], "ir": token.irc is not None,
    }


def new_remote(rec: Record, node: str, relay: Any = None, on_match: Any = None) -> RemotePresence:
    """A remote presence of ``node`` built from the wire record ``rec`` (see :func:`record`),
    relaying its direct packets through ``relay(presence, data)`` and its seat changes through
    ``on_match(presence, match_id)``. Raises
    :class:`objects.snapshot.SnapshotError` for an invalid record."""
    u32 = 2**31 - 1
    token = RemotePresence(rec.int("u", 1, u32), rec.str("n", 64), rec.str("s", 64), rec.int("p", 0, 2**63),
                  max_queue=1 << 62)
    token.token = local_key(rec.str("t", MAX_TOKEN))
    token.node = node
    token.queue = SINK
    token.last_seen = math.inf
    token.relay = relay
    token.on_match = on_match
    apply_record(token, rec)  # the caller joins the channels it returns again
    return token


def apply_record(token: Token, rec: Record) -> set[str]:
    """Update the remote presence ``token`` from ``rec`` (everything but its identity and its
    channels); the cached packets are dropped. Returns the channel names (internal) the record
    lists; the caller reconciles the memberships. Raises
    :class:`objects.snapshot.SnapshotError` before changing anything when a field is invalid."""
    u32 = 2**31 - 1
    values = (
        rec.int("p", 0, 2**63), rec.bool("r"), rec.bool("a"), rec.bool("tn"), rec.str("ip", 64),
        rec.int("v", 0, u32), rec.int("o", -128, 127), rec.str("c", 2), rec.int("ci", 0, 255),
        rec.float("lo", -360, 360), rec.float("la", -360, 360), rec.int("pr", 0, 255),
        rec.int("cp", 0, 255), rec.int("ac", 0, 255), rec.str("at", 1024), rec.str("md", 64),
        rec.int("m", 0, u32), rec.int("mo", 0, 3), rec.int("b", -u32, u32), rec.bool("rx"),
        rec.bool("ap"), rec.int("rs", 0, 2**63), rec.float("acc", 0, 1), rec.int("pc", 0, 2**63),
        rec.int("ts", 0, 2**63), rec.int("rk", 0, u32), rec.int("pp", 0, u32), rec.int("se", 0, 2**40),
        rec.bool("bd"), rec.opt_str("aw", 1024), rec.bool("ir", False),
    )
    channels = set(rec.strs("ch", MAX_CHANNELS, 64))
    (token.privileges, token.restricted, token.admin, token.tournament, token.ip, token.version,
     token.utc_offset, token.country, token.country_index, token.longitude, token.latitude,
     token.presence_rank, token.client_privileges, token.action, token.action_text,
     token.beatmap_md5, token.mods, token.mode, token.beatmap_id, token.relax, token.autopilot,
     token.ranked_score, token.accuracy, token.playcount, token.total_score, token.rank, token.pp,
     token.silence_end, token.block_nonfriend_dms, token.away_message, token.remote_irc) = values
    token.layout = layout_for_build(token.version) or MODERN  # the build's layout (issue 15)
    token.invalidate()
    return channels
