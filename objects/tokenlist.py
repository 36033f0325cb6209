"""The global token list: every online session, indexed by token string, user id and safe name,
and the cached block of every visible presence that each login reply carries."""

from __future__ import annotations

from typing import Callable, Hashable, Iterator

from helpers.layout import MODERN, Layout
from objects.stream import BroadcastLog, LayoutEntry
from objects.token import Token

#: the key of :meth:`TokenList.presence_block` for the presence (83) layout of
#: :meth:`Token.presence_packet`; per-build layouts get keys of their own (their own
#: ``encode``), each with its own cache
DEFAULT_LAYOUT: Hashable = None


#: users per chunk of the presence cache: a change re-joins (and a gzip reply recompresses) one
#: chunk of about 10 KB, not the whole block
PRESENCE_CHUNK = 256


class _PresenceCache:
    """The visible presences of one layout, in chunks of at most :data:`PRESENCE_CHUNK` users:
    ``chunks[i]`` maps user id -> encoded 83, ``blocks[i]`` is its join (None when stale),
    ``chunk_of`` says where a user is, ``room`` lists chunks that lost users (reused before a new
    chunk is made, so the count stays near online / PRESENCE_CHUNK), ``stale`` the users to
    read again, ``parts`` the non-empty blocks in chunk order (None when stale)."""

    __slots__ = ("encode", "chunks", "blocks", "chunk_of", "room", "stale", "parts")

    def __init__(self, encode: Callable[[Token], bytes], stale: set[int]) -> None:
        self.encode = encode
        self.chunks: list[dict[int, bytes]] = []
        self.blocks: list[bytes | None] = []
        self.chunk_of: dict[int, int] = {}
        self.room: list[int] = []
        self.stale = stale
        self.parts: list[bytes] | None = None

    def refresh(self, tokens: "TokenList") -> None:
        """Re-read the stale users (O(stale)) and re-join the chunks they touched."""
        chunks, blocks, chunk_of, encode = self.chunks, self.blocks, self.chunk_of, self.encode
        for user_id in self.stale:
            token = tokens.shown_token(user_id)
            where = chunk_of.get(user_id)
            if token is None:
                if where is not None:
                    del chunks[where][user_id]
                    del chunk_of[user_id]
                    blocks[where] = None
                    self.room.append(where)
                continue
            if where is None:
                where = self._place()
                chunk_of[user_id] = where
            chunks[where][user_id] = encode(token)
            blocks[where] = None
        self.stale.clear()
        for i, block in enumerate(blocks):
            if block is None:
                blocks[i] = b"".join(chunks[i].values())
        self.parts = [block for block in blocks if block]  # type: ignore[misc]

    def _place(self) -> int:
        """A chunk with room for one more user (a reused one first, else a new one)."""
        room = self.room
        while room:
            where = room.pop()
            if len(self.chunks[where]) < PRESENCE_CHUNK:
                if len(self.chunks[where]) < PRESENCE_CHUNK - 1:
                    room.append(where)
                return where
        if self.chunks and len(self.chunks[-1]) < PRESENCE_CHUNK:
            return len(self.chunks) - 1
        self.chunks.append({})
        self.blocks.append(None)
        return len(self.chunks) - 1


class TokenList:
    """All online tokens (the "main" audience), bot included.

    ``on_change`` is called after every add or remove (used to keep ``ripple:online_users``
    exact without touching Redis on the poll path).

    The visible presences (one 83 per online user that is not restricted, taken from the user's
    first live token) are kept joined per layout for the login reply (:meth:`presence_parts`),
    so a login at thousands online appends a few joined chunks instead of reading every session. Every
    add and remove, and every change of a member's presence (:meth:`Token.invalidate`,
    :meth:`Token.set_stats`, which call :meth:`presence_changed` through
    ``Token.presence_watch``) marks that user stale; the next block re-reads only the stale
    users and re-joins the chunks they are in (bench/README.md, issue #17).

    A broadcast to everyone (:meth:`broadcast`, :meth:`broadcast_layouts`) is appended once to
    the :class:`objects.stream.BroadcastLog` ``log``, which every local session of this list
    reads from its own position (``Token.feed`` / ``Token.log_pos``, set by :meth:`add`,
    cleared by :meth:`remove` after the session has copied what it had not read). The bot
    (which discards what it receives) and the remote presences of a cluster (never polled;
    objects/remote.py) are not readers, as a fan-out never queued anything for them.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.by_token: dict[str, Token] = {}
        #: user id -> that user's tokens in join order; a tuple (one allocation, 48 bytes for
        #: the usual single session, against 56 + 8 for a list: bench/README.md, memory)
        self.by_user: dict[int, tuple[Token, ...]] = {}
        self.by_safe: dict[str, int] = {}  # safe username -> user id
        self.on_change = on_change
        self._presences: dict[Hashable, _PresenceCache] = {}
        # the cluster link (services/cluster.py) while [cluster] node_id is set: told of every
        # local session that comes and goes (``added(token)`` / ``removed(token)``), else None
        self.observer = None
        #: the broadcasts to everyone, read by each local session at its own position
        self.log = BroadcastLog(self.by_token.values)
        #: layout -> readers of the log with that (non-modern) layout: the variants a
        #: layout-dependent broadcast is encoded in (none: one modern encoding)
        self.old_layouts: dict[Layout, int] = {}

    def __len__(self) -> int:
        return len(self.by_token)

    def __iter__(self) -> Iterator[Token]:
        return iter(tuple(self.by_token.values()))

    def add(self, token: Token) -> None:
        """Register ``token`` in every index and report the change."""
        self.by_token[token.token] = token
        self.by_user[token.user_id] = self.by_user.get(token.user_id, ()) + (token,)
        self.by_safe[token.safe_name] = token.user_id
        token.presence_watch = self
        self.presence_changed(token)
        log = self.log
        if token.node is None and not token.is_bot and token.feed is not log:
            token.feed = log  # reads the broadcasts made from now on
            token.log_pos = log.end
            layout = token.layout
            if not layout.modern:
                self.old_layouts[layout] = self.old_layouts.get(layout, 0) + 1
        if self.on_change is not None:
            self.on_change()
        if self.observer is not None and token.node is None and not token.is_bot:
            self.observer.added(token)

    def remove(self, token: Token) -> bool:
        """Forget ``token``; returns False if it was not in the list."""
        if self.by_token.pop(token.token, None) is None:
            return False
        tokens = self.by_user.get(token.user_id)
        if tokens is not None:
            tokens = tuple(t for t in tokens if t is not token)
            if tokens:
                self.by_user[token.user_id] = tokens
            else:
                del self.by_user[token.user_id]
                if self.by_safe.get(token.safe_name) == token.user_id:
                    del self.by_safe[token.safe_name]
        if token.presence_watch is self:
            token.presence_watch = None
        if token.feed is self.log:
            token.catch_up()  # what was broadcast while it was online stays in its queue
            token.feed = None
            token.log_pos = 0
            layout = token.layout
            left = self.old_layouts.get(layout, 0) - 1
            if left > 0:
                self.old_layouts[layout] = left
            else:
                self.old_layouts.pop(layout, None)
        self.presence_changed(token)
        if self.on_change is not None:
            self.on_change()
        if self.observer is not None and token.node is None and not token.is_bot:
            self.observer.removed(token)
        return True

    def get(self, token_string: str) -> Token | None:
        """The token whose string is ``token_string`` (the ``osu-token`` header), or None."""
        return self.by_token.get(token_string)

    def user_tokens(self, user_id: int) -> list[Token]:
        """Every live token of the user (several for tournament clients); a copy."""
        return list(self.by_user.get(user_id, ()))

    def user(self, user_id: int) -> Token | None:
        """The user's main token: the game client if one is online, else any token (e.g. tourney
        or IRC, docs/irc.md; an IRC session of another cluster node counts as IRC)."""
        tokens = self.by_user.get(user_id)
        if not tokens:
            return None
        for token in tokens:
            if not token.tournament and not token.kicked and token.irc is None and not token.remote_irc:
                return token
        for token in tokens:
            if not token.kicked:
                return token
        return None

    def by_name(self, safe_name: str) -> Token | None:
        """The main token of the user whose safe name is ``safe_name``."""
        user_id = self.by_safe.get(safe_name)
        return None if user_id is None else self.user(user_id)

    def online_user_ids(self) -> list[int]:
        """Ids of the users with at least one live (not kicked) token."""
        return [uid for uid, tokens in self.by_user.items() if any(not t.kicked for t in tokens)]

    def broadcast(self, data: bytes, but: Token | None = None) -> None:
        """Send ``data`` (encoded packets) to every local session except ``but`` (the "main"
        stream): one append to :attr:`log`, O(1) whatever the number online (``but`` copies its
        unread entries first: O(those)). Every session gets it after what was queued for it
        before and before what is queued for it after, as with :func:`objects.stream.fan_out`."""
        if data:
            self.log.append(data, len(data), but)

    def broadcast_layouts(self, encode: Callable[[Layout], bytes], kind: int, but: Token | None = None) -> None:
        """Send a packet whose bytes depend on the receiver's build (helpers/layout.py) to every
        local session except ``but``: ``encode(layout)`` once per variant ``layout.v[kind]``
        among the sessions online (one call while all are modern); a session whose build has
        no such packet (empty encoding) gets nothing (as :func:`objects.stream.fan_out_layouts`)."""
        if not self.old_layouts:
            data = encode(MODERN)
            if data:
                self.log.append(data, len(data), but)
            return
        entry = LayoutEntry(encode, kind, self.old_layouts)
        if entry.size:
            self.log.append(entry, entry.size, but)

    def trim_log(self) -> None:
        """Drop the broadcast log entries every session has read; sessions that lag past their
        queue cap are overflowed (objects.stream.BroadcastLog.trim; the timeout sweep calls it)."""
        self.log.trim()

    # ------------------------------------------------------------------ visible presences
    def presence_changed(self, token: Token) -> None:
        """Mark the presence of ``token``'s user stale in every cached layout (called by the
        token on any change of its presence or visibility, and by :meth:`add` / :meth:`remove`)."""
        user_id = token.user_id
        for cache in self._presences.values():
            cache.stale.add(user_id)

    def shown_token(self, user_id: int) -> Token | None:
        """The session whose presence others see for ``user_id``: its first token (join order)
        that is neither restricted nor kicked; None when the user is not visible."""
        for token in self.by_user.get(user_id, ()):
            if not token.restricted and not token.kicked:
                return token
        return None

    def presence_parts(self, except_user: int = 0, layout: Hashable = DEFAULT_LAYOUT,
                       encode: Callable[[Token], bytes] = Token.presence_packet) -> list[bytes]:
        """Every visible presence (83), once per online user (the bot included), except the user
        ``except_user`` (the one logging in): what a login reply carries (docs/protocol.md
        §5.1), as joined chunks of up to :data:`PRESENCE_CHUNK` users. The chunks are the same
        ``bytes`` objects from one call to the next until one of their users changes (a gzip
        reply compresses each once: helpers/gzparts.py). ``layout`` keys the cache of the
        encoding ``encode(token)`` (one per client layout: give the same ``encode`` for a key
        every time). Do not modify the returned list.

        Cost: O(users changed since the last call) to re-read, and a C-level join of the chunks
        they are in; O(online) only the first time a layout is asked for."""
        cache = self._presences.get(layout)
        if cache is None:
            cache = self._presences[layout] = _PresenceCache(encode, set(self.by_user))
        if cache.stale or cache.parts is None:
            cache.refresh(self)
        parts = cache.parts
        assert parts is not None
        where = cache.chunk_of.get(except_user)
        if where is None:
            return parts
        # the user logging in has another visible session (tournament or IRC): its chunk without it
        own = cache.blocks[where]
        chunk = cache.chunks[where]
        rest = b"".join([data for user_id, data in chunk.items() if user_id != except_user])
        return [rest if part is own else part for part in parts if part is not own or rest]

    def presence_block(self, except_user: int = 0, layout: Hashable = DEFAULT_LAYOUT,
                       encode: Callable[[Token], bytes] = Token.presence_packet) -> bytes:
        """:meth:`presence_parts` joined into one ``bytes``."""
        return b"".join(self.presence_parts(except_user, layout, encode))
