"""A token: one logged-in client session and everything the poll path needs about it.

Everything here is memory only: identity, privileges, cached presence and stats (filled at
login and refreshed by events), chat state and the output queue. The encoded presence (83)
and stats (11) packets are cached and rebuilt only after a change, so the many requests for
them cost no encoding (docs/architecture.md, "encode once").
"""

from __future__ import annotations

import collections
import secrets
import time
import types
import uuid
from typing import Any

from constants import game, privileges as privs
from helpers import codec
from helpers.layout import MODERN, Layout, layout_for_build
from objects.snapshot import b64
from objects.ratelimit import Window

#: bits of ``Token.poll_flags``: what a poll answers at most once (docs/security.md)
POLL_PRESENCE_ALL = 1
POLL_LOBBY_LIST = 2  # the NEW_MATCH list of a lobby join
#: bits of ``Token.stats_reply``: what to send when the pending stats reload is done
REPLY_STATS = 1  # the user's own 11
REPLY_STATUS = 2  # own 83 + 11, to the user and its spectators


#: the shared empty set of ids a session holds until it needs one of its own
NO_IDS: frozenset[int] = frozenset()
#: the shared empty, read-only spectator map of a session nobody watches
NO_SPECTATORS: types.MappingProxyType = types.MappingProxyType({})
#: chat lines kept per session for reports (``Token.recent_messages``)
RECENT_MESSAGES = 10


def new_token_string() -> str:
    """An unguessable session token: 128 bits from :mod:`secrets`, shaped like a UUID."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16)))


def client_privileges(privileges: int, admin: bool, restricted: bool) -> int:
    """Packet 71 value for ``users.privileges``: player, supporter unless restricted (Kawata),
    BAT for admins, tournament for tournament staff (docs/protocol.md §3.4, docs/decisions.md)."""
    value = privs.CLIENT_PLAYER
    if not restricted:
        value |= privs.CLIENT_SUPPORTER
    if admin:
        value |= privs.CLIENT_BAT
    if privileges & privs.USER_TOURNAMENT_STAFF:
        value |= privs.CLIENT_TOURNAMENT
    return value


class Token:
    """One client session (game client, tournament client or the bot).

    ``max_queue`` (bytes; ``[limits] max_queue``, given by the login, else
    :data:`DEFAULT_MAX_QUEUE`) bounds the output queue: a client whose queue grows past it has stopped polling; its queue is dropped
    and ``overflowed`` is set, and the session is logged out by the next sweep or poll.

    Times: ``login_time`` and ``last_seen`` are :func:`time.monotonic` seconds;
    ``silence_end`` is an absolute unix time in seconds (as in ``users.silence_end``).
    """

    DEFAULT_MAX_QUEUE = 4 << 20
    #: an IRC session of another cluster node (a slot of objects.remote.RemotePresence there);
    #: never for a session of this node, whose IRC sessions have ``irc`` set
    remote_irc = False

    __slots__ = (
        "max_queue",
        "token", "user_id", "username", "safe_name", "privileges", "restricted", "admin",
        "tournament", "is_bot", "client_privileges", "presence_rank", "ip", "version",
        "utc_offset", "country", "country_index", "longitude", "latitude",
        "action", "action_text", "status_text", "beatmap_md5", "mods", "mode", "beatmap_id", "relax", "autopilot",
        "ranked_score", "accuracy", "playcount", "total_score", "rank", "pp",
        "silence_end", "spam_count", "spam_window_start", "silencing",
        "friends", "friends_pending", "blocked", "block_nonfriend_dms", "away_message", "away_told", "presence_filter",
        "channels", "spectating", "spectators", "match_id", "in_lobby", "tourney_match_id",
        "login_time", "last_seen", "kicked", "logged_out", "overflowed", "own", "queued", "recent_messages",
        "now_playing", "_presence", "_stats", "offline_store",
        # Hardening II (docs/security.md): per-session bounds on work a client can trigger
        "stats_reloading", "stats_reload_again", "stats_reply", "poll_flags",
        "_friend_limit", "_match_create_limit", "_round_start_limit", "_error_report_limit",
        "irc",
        # issue 15: the protocol layout of the client build, and its caches
        "layout", "_stats_i16", "frames_sequence",
        # the cluster node holding a remote presence (objects/remote.py); None for local sessions
        "node",
        # the token list this session is in, told of every presence change (TokenList.presence_block)
        "presence_watch",
        # the broadcast log of the token list this session reads (objects.stream.BroadcastLog)
        # and the sequence number of its first unread entry; None / 0 when it reads none
        "feed", "log_pos",
    )

    def __init__(self, user_id: int, username: str, safe_name: str, privileges: int, *,
                 restricted: bool = False, admin: bool = False, tournament: bool = False,
                 is_bot: bool = False, ip: str = "", version: int = 0, utc_offset: int = 0,
                 max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.max_queue = max_queue
        self.token = new_token_string()
        self.user_id = user_id
        self.username = username
        self.safe_name = safe_name
        self.privileges = privileges
        self.restricted = restricted
        self.admin = admin
        self.tournament = tournament
        self.is_bot = is_bot
        self.client_privileges = privs.CLIENT_PLAYER  # packet 71 value
        self.presence_rank = privs.CLIENT_PLAYER  # low 5 bits of the presence byte
        self.ip = ip
        self.version = version  # client build date, e.g. 20250306
        #: the wire layout of the client build (helpers/layout.py); modern for the bot, IRC
        #: sessions and any build the table does not know (version 0 or newer than all)
        self.layout: Layout = (layout_for_build(version) or MODERN) if version else MODERN
        self._stats_i16: bytes | None = None  # stats for builds with i16 pp, when pp > 32767
        self.frames_sequence = 0  # u16 counter for spectators whose bundles need a sequence
        self.utc_offset = utc_offset  # hours
        self.country = "XX"
        self.country_index = 0
        self.longitude = 0.0
        self.latitude = 0.0
        # status (packet 0)
        self.action = game.IDLE
        self.action_text = ""
        self.beatmap_md5 = ""
        self.mods = 0
        self.mode = game.STD
        self.beatmap_id = 0
        self.relax = False
        self.autopilot = False
        # cached stats for the current mode (docs/schema.md §2.5)
        self.ranked_score = 0
        self.accuracy = 0.0  # fraction 0..1
        self.playcount = 0
        self.total_score = 0
        self.rank = 0
        self.pp = 0
        # chat
        self.silence_end = 0
        self.spam_count = 0
        self.spam_window_start = 0.0
        self.silencing = False  # an automatic silence is being written to MySQL
        #: friend ids; the shared empty :data:`NO_IDS` until the user has one (login, add_friend)
        self.friends: set[int] | frozenset[int] = NO_IDS
        #: the last offline-message store of this sender still running (an asyncio future), so
        #: that the next one waits for it and the messages are stored in the order they were sent
        self.offline_store: Any = None
        #: RealistikOsu's ``!status`` text while enabled ("" = none), shown in the idle/AFK status
        self.status_text = ""
        # friend rows being written or deleted; the containers used by few sessions start as
        # shared empty immutables and get their own on first use (bench/README.md: memory)
        self.friends_pending: set[int] | frozenset[int] = NO_IDS
        #: users this user blocked with ``!block`` (their private messages are refused)
        self.blocked: set[int] | frozenset[int] = NO_IDS
        self.block_nonfriend_dms = False
        self.away_message: str | None = None
        self.away_told: set[int] | frozenset[int] = NO_IDS  # senders already told the away message
        self.presence_filter = game.FILTER_ALL
        self.channels: set[str] = set()  # internal channel names
        self.recent_messages: collections.deque[str] | tuple[()] = ()  # the last RECENT_MESSAGES lines
        # spectating and multiplayer (issue: multiplayer and spectating)
        self.spectating: Token | None = None
        #: token string -> spectator token, in join order; the shared empty
        #: :data:`NO_SPECTATORS` while nobody watches (add_spectator / remove_spectator)
        self.spectators: dict[str, Token] | types.MappingProxyType[str, Token] = NO_SPECTATORS
        self.match_id: int | None = None
        self.in_lobby = False
        # tournament clients: the match whose channel was joined last with packet 108 (never seated)
        self.tourney_match_id: int | None = None
        self.now_playing: Any = None  # the last /np of this session (services.commands.np.NowPlaying)
        # session
        now = time.monotonic()
        self.login_time = now
        self.last_seen = now
        self.kicked = False  # remove after the next response is delivered
        self.logged_out = False
        self.overflowed = False
        # The queue holds references to already-encoded packets: a broadcast appends the SAME
        # bytes object to every receiver's list, so fanning out costs one pointer per receiver
        # and no copy; the bytes are joined once when the client polls. ``queued`` counts bytes.
        # ``own`` is the list itself; the broadcasts to everyone online that this session has
        # not copied yet are in ``feed`` (the token list's log) from ``log_pos`` on, and
        # :attr:`queue` is both (catch_up copies them first).
        self.own: list[bytes] = []
        self.queued = 0
        self.feed: Any = None
        self.log_pos = 0
        self._presence: bytes | None = None
        self._stats: bytes | None = None
        # Hardening II (docs/security.md): at most one stats reload in flight and one more
        # after it (``stats_reload_again``), whatever the number of requests; ``stats_reply``
        # holds the REPLY_* bits to send when it is done. ``poll_flags`` (POLL_* bits) is
        # cleared at the start of every poll. The windows count actions that cost MySQL,
        # Redis or a lobby broadcast.
        self.stats_reloading = False
        self.stats_reload_again = False
        self.stats_reply = 0
        self.poll_flags = 0
        # made on first use (most sessions never add a friend, create a match or report an
        # error): four Windows per session would be 224 bytes each (bench/README.md: memory)
        self._friend_limit: Window | None = None
        self._match_create_limit: Window | None = None
        self._round_start_limit: Window | None = None
        self._error_report_limit: Window | None = None
        # the IRC connection of an IRC session (handlers/irc, docs/irc.md); None for game clients
        self.irc = None
        self.node: str | None = None
        self.presence_watch: Any = None  # set by TokenList.add, cleared by TokenList.remove

    def __repr__(self) -> str:
        return f"<Token {self.user_id} {self.username!r}{' tourney' if self.tournament else ''}>"

    # ---------------------------------------------------------------- queue
    @property
    def queue(self) -> list[bytes]:
        """Everything queued for this session, in order (the list itself: appending to it
        queues). The unread entries of the broadcast log are copied in first (:meth:`catch_up`)."""
        feed = self.feed
        if feed is not None and self.log_pos != feed.end:
            self.catch_up()
        return self.own

    @queue.setter
    def queue(self, value: list[bytes]) -> None:
        """Replace the queue; the unread entries of the broadcast log go with the old one."""
        self.own = value
        feed = self.feed
        if feed is not None:
            self.log_pos = feed.end

    def catch_up(self) -> None:
        """Copy the broadcast log's entries this session has not read into its queue, in order
        (objects.stream.BroadcastLog.read); past ``max_queue`` bytes the queue is dropped and
        ``overflowed`` set, as for :meth:`enqueue`. Called before anything is appended to the
        queue and before it is read; a no-op when up to date or not reading a log."""
        feed = self.feed
        if feed is None or self.log_pos == feed.end:
            return
        try:
            parts, size = feed.read(self)
        except LookupError:  # its entries were trimmed: it lost packets, as on an overflow
            self.overflow()
            return
        self.own.extend(parts)
        self.queued += size
        if self.queued > self.max_queue:
            self.overflow()

    def enqueue(self, data: bytes) -> None:
        """Queue encoded packets (immutable ``bytes``, shared, never copied); the bot discards
        what it receives. Past ``max_queue`` bytes the queue is dropped and ``overflowed`` set."""
        if not self.is_bot:
            feed = self.feed
            if feed is not None and self.log_pos != feed.end:
                self.catch_up()
            self.own.append(data)
            self.queued += len(data)
            if self.queued > self.max_queue:
                self.overflow()

    def overflow(self) -> None:
        """Drop the queue (and the unread broadcast log entries) of a client that stopped
        polling; the session ends at its next poll or sweep."""
        self.own = []
        self.queued = 0
        self.overflowed = True
        feed = self.feed
        if feed is not None:
            self.log_pos = feed.end

    def drain(self) -> bytes:
        """Return and clear everything queued since the last poll (one join of the shared parts)."""
        feed = self.feed
        if feed is not None and self.log_pos != feed.end:
            self.catch_up()
        queue = self.own
        if not queue:
            return b""
        self.own = []
        self.queued = 0
        return queue[0] if len(queue) == 1 else b"".join(queue)

    def drain_parts(self) -> list[bytes]:
        """:meth:`drain` without the join: the queued parts (shared ``bytes``), in order."""
        feed = self.feed
        if feed is not None and self.log_pos != feed.end:
            self.catch_up()
        queue = self.own
        self.own = []
        self.queued = 0
        return queue

    # ---------------------------------------------------------------- lazily made containers
    @property
    def friend_limit(self) -> Window:
        """The friend add/remove :class:`Window` of this session (made on first use)."""
        window = self._friend_limit
        if window is None:
            window = self._friend_limit = Window()
        return window

    @property
    def match_create_limit(self) -> Window:
        """The match creation :class:`Window` of this session (made on first use)."""
        window = self._match_create_limit
        if window is None:
            window = self._match_create_limit = Window()
        return window

    @property
    def round_start_limit(self) -> Window:
        """The round start :class:`Window` of this session (made on first use)."""
        window = self._round_start_limit
        if window is None:
            window = self._round_start_limit = Window()
        return window

    @property
    def error_report_limit(self) -> Window:
        """The error report :class:`Window` of this session (made on first use)."""
        window = self._error_report_limit
        if window is None:
            window = self._error_report_limit = Window()
        return window

    def add_friend(self, user_id: int) -> None:
        """Add ``user_id`` to :attr:`friends` (its own set is made on the first friend)."""
        if not self.friends:
            self.friends = set()
        self.friends.add(user_id)  # type: ignore[union-attr]

    def remove_friend(self, user_id: int) -> None:
        """Remove ``user_id`` from :attr:`friends` if present."""
        if user_id in self.friends:
            self.friends.discard(user_id)  # type: ignore[union-attr]

    def add_spectator(self, spectator: "Token") -> None:
        """Add ``spectator`` to :attr:`spectators` (last in join order; its own dict is made
        on the first spectator)."""
        if not self.spectators:
            self.spectators = {}
        self.spectators[spectator.token] = spectator  # type: ignore[index]

    def remove_spectator(self, token_string: str) -> "Token | None":
        """Remove the spectator whose token string is ``token_string``; returns it, or None
        when it was not watching. The shared empty map is restored when the last one leaves."""
        spectators = self.spectators
        if token_string not in spectators:
            return None
        spectator = spectators.pop(token_string)  # type: ignore[union-attr]
        if not spectators:
            self.spectators = NO_SPECTATORS
        return spectator

    def clear_spectators(self) -> None:
        """Forget every spectator (the shared empty map again)."""
        self.spectators = NO_SPECTATORS

    def set_friend_pending(self, user_id: int, pending: bool) -> None:
        """Mark (or unmark) the friend row of ``user_id`` as being written or deleted."""
        if pending:
            if not self.friends_pending:
                self.friends_pending = set()
            self.friends_pending.add(user_id)
        elif user_id in self.friends_pending:
            self.friends_pending.discard(user_id)

    def tell_away(self, user_id: int) -> bool:
        """True the first time ``user_id`` should get this session's away message, then False."""
        if user_id in self.away_told:
            return False
        if not self.away_told:
            self.away_told = set()
        self.away_told.add(user_id)
        return True

    def remember_message(self, line: str) -> None:
        """Keep ``line`` among the last :data:`RECENT_MESSAGES` chat lines of this session."""
        if not self.recent_messages:
            self.recent_messages = collections.deque(maxlen=RECENT_MESSAGES)
        self.recent_messages.append(line)

    # ---------------------------------------------------------------- state
    def silence_left(self, now: float | None = None) -> int:
        """Seconds of silence left (0 when not silenced)."""
        left = self.silence_end - (time.time() if now is None else now)
        return int(left) if left > 0 else 0

    def is_silenced(self) -> bool:
        """Whether the silence end (unix seconds) is in the future."""
        return self.silence_end > time.time()

    def set_stats(self, ranked_score: int, accuracy: float, playcount: int, total_score: int,
                  rank: int, pp: int) -> None:
        """Replace the cached stats (accuracy as a 0..1 fraction) and invalidate the packets."""
        self.ranked_score = ranked_score
        self.accuracy = accuracy
        self.playcount = playcount
        self.total_score = total_score
        self.rank = rank
        self.pp = pp
        self._stats = None
        self._stats_i16 = None
        self._presence = None  # the presence carries the rank too
        if self.presence_watch is not None:
            self.presence_watch.presence_changed(self)

    def invalidate(self) -> None:
        """Drop the cached presence and stats packets after a change of status or identity
        (also of ``restricted``: the token list's block of visible presences is told)."""
        self._presence = None
        self._stats = None
        self._stats_i16 = None
        if self.presence_watch is not None:
            self.presence_watch.presence_changed(self)

    # ---------------------------------------------------------------- packets
    def presence_packet(self) -> bytes:
        """This user's presence (83), encoded once per change."""
        if self._presence is None:
            self._presence = codec.user_presence(
                self.user_id, self.username, self.utc_offset, self.country_index,
                self.presence_rank, self.mode, self.longitude, self.latitude, self.rank,
            )
        return self._presence

    def stats_packet(self, layout: Layout | None = None) -> bytes:
        """This user's stats (11) in ``layout`` (None = modern), encoded once per change.

        Builds before b20250306 read pp as i16 (helpers/layout.py): while pp <= 32767 their
        bytes are the modern ones (the same object is returned); above it they get their own
        copy with pp clamped to 32767."""
        if layout is not None and not layout.pp_unsigned and self.pp > 0x7FFF:
            if self._stats_i16 is None:
                self._stats_i16 = codec.user_stats(
                    self.user_id, self.action, self.action_text, self.beatmap_md5, self.mods,
                    self.mode, self.beatmap_id, self.ranked_score, self.accuracy, self.playcount,
                    self.total_score, self.rank, self.pp, layout,
                )
            return self._stats_i16
        if self._stats is None:
            self._stats = codec.user_stats(
                self.user_id, self.action, self.action_text, self.beatmap_md5, self.mods,
                self.mode, self.beatmap_id, self.ranked_score, self.accuracy, self.playcount,
                self.total_score, self.rank, self.pp,
            )
        return self._stats

    def quit_packet(self, layout: Layout | None = None) -> bytes:
        """UserQuit (12) of this user for a receiver of ``layout`` (None = modern): ``i32 id,
        u8 0``, or this user's stats struct framed as 12 for builds before b20121224 (chio)."""
        if layout is None or layout.quit_struct:
            return codec.user_logout(self.user_id)
        return codec.user_quit_stats(
            self.user_id, self.action, self.action_text, self.beatmap_md5, self.mods,
            self.mode, self.beatmap_id, self.ranked_score, self.accuracy, self.playcount,
            self.total_score, self.rank, self.pp,
        )

    # ---------------------------------------------------------------- snapshot
    def to_snapshot(self, now: float) -> dict:
        """This session as a JSON-ready dict for the restart snapshot (docs/operations.md).

        ``now`` is :func:`time.monotonic`; monotonic times are stored as ages (seconds before
        the snapshot). Other tokens are referenced by token string; the queued packets are
        joined and stored as base64. Cached packets are not stored (rebuilt on demand).
        """
        return {
            "token": self.token, "user_id": self.user_id, "username": self.username,
            "safe_name": self.safe_name, "privileges": self.privileges, "restricted": self.restricted,
            "admin": self.admin, "tournament": self.tournament, "client_privileges": self.client_privileges,
            "presence_rank": self.presence_rank, "ip": self.ip, "version": self.version,
            "utc_offset": self.utc_offset, "country": self.country, "country_index": self.country_index,
            "longitude": self.longitude, "latitude": self.latitude,
            "action": self.action, "action_text": self.action_text, "beatmap_md5": self.beatmap_md5,
            "mods": self.mods, "mode": self.mode, "beatmap_id": self.beatmap_id, "relax": self.relax,
            "autopilot": self.autopilot,
            "ranked_score": self.ranked_score, "accuracy": self.accuracy, "playcount": self.playcount,
            "total_score": self.total_score, "rank": self.rank, "pp": self.pp,
            "silence_end": self.silence_end, "spam_count": self.spam_count,
            "spam_window_age": max(0.0, now - self.spam_window_start) if self.spam_window_start else None,
            "friends": sorted(self.friends), "blocked": sorted(self.blocked), "status_text": self.status_text,
            "block_nonfriend_dms": self.block_nonfriend_dms,
            "away_message": self.away_message, "away_told": sorted(self.away_told),
            "presence_filter": self.presence_filter, "channels": sorted(self.channels),
            "recent_messages": list(self.recent_messages),
            "spectating": self.spectating.token if self.spectating is not None else None,
            "spectators": list(self.spectators),
            "match_id": self.match_id, "in_lobby": self.in_lobby, "tourney_match_id": self.tourney_match_id,
            "login_age": max(0.0, now - self.login_time), "last_seen_age": max(0.0, now - self.last_seen),
            "kicked": self.kicked, "logged_out": self.logged_out, "overflowed": self.overflowed,
            "queue": b64(b"".join(self.queue)),
        }

    @classmethod
    def from_snapshot(cls, rec, now: float, max_queue: int = DEFAULT_MAX_QUEUE) -> tuple["Token", str | None, list[str]]:
        """Rebuild a session from its snapshot record (an :class:`objects.snapshot.Record`);
        ``max_queue`` is ``[limits] max_queue`` of the new process.

        Returns ``(token, spectating, spectators)``: the last two are token strings that the
        caller resolves once every token is read. Ages become monotonic times relative to
        ``now``. Raises :class:`objects.snapshot.SnapshotError` on any invalid field.
        """
        u32 = 2**31 - 1
        token = cls(rec.int("user_id", 1, u32), rec.str("username", 64), rec.str("safe_name", 64),
                    rec.int("privileges", 0), restricted=rec.bool("restricted"), admin=rec.bool("admin"),
                    tournament=rec.bool("tournament"), ip=rec.str("ip", 64),
                    version=rec.int("version", 0, u32), utc_offset=rec.int("utc_offset", -128, 127),
                    max_queue=max_queue)
        ref = rec.token_ref("token")
        if ref is None:
            raise rec.fail("token", "missing")
        token.token = ref
        token.client_privileges = rec.int("client_privileges", 0, 255)
        token.presence_rank = rec.int("presence_rank", 0, 255)
        token.country = rec.str("country", 2)
        token.country_index = rec.int("country_index", 0, 255)
        token.longitude = rec.float("longitude", -360, 360)
        token.latitude = rec.float("latitude", -360, 360)
        token.action = rec.int("action", 0, 255)
        token.action_text = rec.str("action_text", 1024)
        token.beatmap_md5 = rec.str("beatmap_md5", 64)
        token.mods = rec.int("mods", 0, u32)
        token.mode = rec.int("mode", 0, 3)
        token.beatmap_id = rec.int("beatmap_id", -u32, u32)
        token.relax = rec.bool("relax")
        token.autopilot = rec.bool("autopilot")
        token.ranked_score = rec.int("ranked_score", 0)
        token.accuracy = rec.float("accuracy", 0, 1)
        token.playcount = rec.int("playcount", 0)
        token.total_score = rec.int("total_score", 0)
        token.rank = rec.int("rank", 0)
        token.pp = rec.int("pp", 0)
        token.silence_end = rec.int("silence_end", 0)
        token.spam_count = rec.int("spam_count", 0, 1 << 30)
        window = rec.opt_age("spam_window_age")
        token.spam_window_start = 0.0 if window is None else now - window
        friends = rec.ints("friends", 100_000, 0, u32)
        if friends:
            token.friends = set(friends)
        if "blocked" in rec.data:  # snapshots written before !block have none
            blocked = rec.ints("blocked", 100_000, 0, u32)
            if blocked:
                token.blocked = set(blocked)
        if "status_text" in rec.data:  # snapshots written before !status was shown have none
            token.status_text = rec.str("status_text", 1024)
        token.block_nonfriend_dms = rec.bool("block_nonfriend_dms")
        token.away_message = rec.opt_str("away_message", 65536)
        for user_id in rec.ints("away_told", 100_000, 0, u32):
            token.tell_away(user_id)
        token.presence_filter = rec.int("presence_filter", 0, 255)
        token.channels = set(rec.strs("channels", 4096, 64))
        for line in rec.strs("recent_messages", RECENT_MESSAGES, 1024):
            token.remember_message(line)
        spectating = rec.token_ref("spectating")
        spectators = rec.token_refs("spectators", 100_000)
        token.match_id = rec.opt_int("match_id", 1, 65535)
        token.in_lobby = rec.bool("in_lobby")
        token.tourney_match_id = rec.opt_int("tourney_match_id", 1, 65535)
        token.login_time = now - rec.age("login_age")
        token.last_seen = now - rec.age("last_seen_age")
        token.kicked = rec.bool("kicked")
        token.logged_out = rec.bool("logged_out")
        token.overflowed = rec.bool("overflowed")
        queued = rec.bytes("queue", 1 << 30)
        if queued:
            token.queue = [queued]
            token.queued = len(queued)
        return token, spectating, spectators
