"""Streams: named audiences that receive the same bytes, and the broadcast log of the whole world.

A broadcast is encoded once by the caller and the same ``bytes`` object is appended to the
queue of every member (docs/architecture.md, "The path of a broadcast"). Members are kept in a dict keyed
by token string so that iteration order is join order and removal is O(1).

A broadcast to everyone online (the token list's "main" stream) is not appended to every queue:
it is appended once to the :class:`BroadcastLog` of the token list, and each session copies the
entries it has not read yet into its own queue before anything else is added to it and when it
is polled (:meth:`objects.token.Token.catch_up`), so every client sees the same order as if the
entry had been appended to its queue at once (docs/architecture.md, "The broadcast log").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Union

from helpers.layout import MODERN

if TYPE_CHECKING:
    from helpers.layout import Layout
    from objects.token import Token


def fan_out(tokens: Iterable[Token], data: bytes, but: Token | None = None) -> None:
    """Append the already-encoded packet(s) ``data`` (immutable ``bytes``) to the queue of every
    token in ``tokens`` except ``but`` and the bot: one shared object, one list append per
    receiver. This is the body of :meth:`Token.enqueue`, inlined because this loop is the cost of
    every broadcast (bench/README.md)."""
    size = len(data)
    for token in tokens:
        if token is not but and not token.is_bot:
            feed = token.feed
            if feed is not None and token.log_pos != feed.end:
                token.catch_up()  # the world's broadcasts made before this one come first
            token.own.append(data)
            token.queued += size
            if token.queued > token.max_queue:
                token.overflow()


def _layout_bytes(tokens: Iterable[Token], encode: Callable[[Layout], bytes], kind: int,
                  but: Token | None) -> Iterator[tuple[Token, bytes]]:
    """``(receiver, bytes)`` for every receiver but ``but`` and the bot whose build has the
    packet: ``encode(layout)`` called lazily, once per distinct variant ``layout.v[kind]``."""
    modern: bytes | None = None  # variant 0, the common case, without a dict lookup
    cache: dict[int, bytes] = {}
    for token in tokens:
        if token is but or token.is_bot:
            continue
        layout = token.layout
        variant = layout.v[kind]
        if variant:
            data = cache.get(variant)
            if data is None:
                data = cache[variant] = encode(layout)
        else:
            if modern is None:
                modern = encode(layout)
            data = modern
        if data:  # empty: the build has no such packet
            yield token, data


def fan_out_layouts(tokens: Iterable[Token], encode: Callable[[Layout], bytes], kind: int,
                    but: Token | None = None) -> None:
    """Like :func:`fan_out` for a packet whose bytes depend on the receiver's client build
    (helpers/layout.py): ``encode(layout)`` is called lazily, at most once per distinct variant
    ``layout.v[kind]`` among the receivers (``kind`` is e.g. ``helpers.layout.MESSAGE``), and
    every receiver of that variant gets the same bytes object. Receivers that all speak the
    modern layout cost one encoding, as with :func:`fan_out`. For receivers addressed one by
    one (match members, spectators) use :func:`enqueue_layouts`."""
    for token, data in _layout_bytes(tokens, encode, kind, but):
        feed = token.feed
        if feed is not None and token.log_pos != feed.end:
            token.catch_up()
        token.own.append(data)
        token.queued += len(data)
        if token.queued > token.max_queue:
            token.overflow()


def enqueue_layouts(tokens: Iterable[Token], encode: Callable[[Layout], bytes], kind: int,
                    but: Token | None = None) -> None:
    """:func:`fan_out_layouts` for the audiences that are sent to one by one (match members,
    spectators, ...): each receiver gets the bytes through :meth:`Token.enqueue`, so a cluster's
    remote presence relays them to its node (a stream broadcast never does: other nodes get the
    event itself, docs/cluster.md). ``encode(layout)`` once per layout variant present."""
    for token, data in _layout_bytes(tokens, encode, kind, but):
        token.enqueue(data)


class Stream:
    """An audience of tokens, e.g. a channel's members, the lobby or a host's spectators."""

    __slots__ = ("name", "members", "old_layouts")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, Token] = {}
        #: members whose build layout is not the modern one (issue 15): while 0, a
        #: layout-dependent broadcast is one encoding and a plain :func:`fan_out`
        self.old_layouts = 0

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Token]:
        return iter(tuple(self.members.values()))

    def __contains__(self, token: object) -> bool:
        return getattr(token, "token", None) in self.members

    def add(self, token: Token) -> bool:
        """Add ``token``; returns False when it already was a member."""
        if token.token in self.members:
            return False
        self.members[token.token] = token
        if not token.layout.modern:
            self.old_layouts += 1
        return True

    def remove(self, token: Token) -> bool:
        """Remove ``token``; returns False when it was not a member."""
        gone = self.members.pop(token.token, None)
        if gone is None:
            return False
        if not gone.layout.modern:
            self.old_layouts -= 1
        return True

    def broadcast(self, data: bytes, but: Token | None = None) -> None:
        """Append ``data`` to every member's queue except ``but`` (see :func:`fan_out`)."""
        fan_out(self.members.values(), data, but)

    def broadcast_layouts(self, encode: Callable[[Layout], bytes], kind: int, but: Token | None = None) -> None:
        """Send a layout-dependent packet to every member except ``but``: ``encode(layout)``
        once per variant present (see :func:`fan_out_layouts`); a stream of modern members
        only costs what :meth:`broadcast` costs."""
        if not self.old_layouts:
            data = encode(MODERN)
            if data:
                fan_out(self.members.values(), data, but)
            return
        fan_out_layouts(self.members.values(), encode, kind, but)


#: entries appended to a :class:`BroadcastLog` between two trims at most (each trim walks every
#: session once: O(online) per this many broadcasts)
TRIM_ENTRIES = 1024
#: bytes appended to a :class:`BroadcastLog` between two trims at most (the delay, in bytes,
#: before a session that stopped polling is found past its queue cap)
TRIM_BYTES = 256 * 1024


class LayoutEntry:
    """A log entry whose bytes depend on the reader's client build (helpers/layout.py): the
    encodings of one packet, keyed by the variant ``layout.v[kind]``, made once each when the
    entry is appended (``encode(layout)`` for every variant among ``layouts``, and the modern
    one), so that every reader gets what :func:`fan_out_layouts` would have given it then. An
    empty encoding means the build has no such packet: the reader gets nothing."""

    __slots__ = ("kind", "data", "size")

    def __init__(self, encode: Callable[[Layout], bytes], kind: int, layouts: Iterable[Layout]) -> None:
        self.kind = kind
        data = {0: encode(MODERN)}
        for layout in layouts:
            variant = layout.v[kind]
            if variant not in data:
                data[variant] = encode(layout)
        self.data = data
        #: the largest encoding (the bytes a reader is charged against its queue cap)
        self.size = max(len(d) for d in data.values())

    def for_layout(self, layout: Layout) -> bytes:
        """The bytes for a reader of ``layout`` (b"" when its build has no such packet or its
        variant was not online when the entry was made)."""
        return self.data.get(layout.v[self.kind], b"")


Entry = Union[bytes, LayoutEntry]


class BroadcastLog:
    """The packets sent to everyone online, appended once and read by every session at its own
    position (issue #17: a broadcast at 5,000 online was 5,000 list appends).

    Shapes: ``entries`` (``bytes`` or :class:`LayoutEntry`) with absolute sequence numbers
    ``base`` .. ``end - 1``; ``starts[i]`` is ``total`` (bytes ever appended) before
    ``entries[i]``. A reader is a :class:`objects.token.Token` whose ``feed`` is this log;
    its ``log_pos`` is the sequence number of the first entry it has not copied into its queue
    (``end`` when it is up to date). ``readers()`` gives every session that may be a reader
    (the token list's sessions); the ones whose ``feed`` is another object are skipped.

    Bounds: every :data:`TRIM_ENTRIES` entries or :data:`TRIM_BYTES` bytes (and at every
    timeout sweep: :meth:`trim`), the entries every reader has read are dropped; a reader whose
    unread bytes plus its own queue exceed its ``max_queue`` is overflowed first, exactly as a
    queue that grew past the cap (its queue and unread entries are dropped; the session ends
    at its next poll or sweep), so the log never holds more than the largest cap plus
    :data:`TRIM_BYTES` for a reader that stopped polling.
    """

    __slots__ = ("entries", "starts", "base", "end", "total", "layered", "readers",
                 "trim_entries", "trim_bytes")

    def __init__(self, readers: Callable[[], Iterable[Token]]) -> None:
        self.entries: list[Entry] = []
        self.starts: list[int] = []
        self.base = 0
        self.end = 0
        self.total = 0
        self.layered = 0  # LayoutEntry objects among entries (0: a reader copies a plain slice)
        self.readers = readers
        self.trim_entries = TRIM_ENTRIES
        self.trim_bytes = TRIM_BYTES

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, entry: Entry, size: int, but: Token | None = None) -> None:
        """Append ``entry`` (``size`` bytes) for every reader except ``but``, which is brought up
        to date first and then moved past the entry (it never reads it)."""
        skip = but is not None and but.feed is self
        if skip and but.log_pos != self.end:  # type: ignore[union-attr]
            but.catch_up()  # type: ignore[union-attr]
        entries = self.entries
        entries.append(entry)
        self.starts.append(self.total)
        self.total += size
        self.end += 1
        if type(entry) is not bytes:
            self.layered += 1
        if skip:
            but.log_pos = self.end  # type: ignore[union-attr]
        if len(entries) >= self.trim_entries or self.total - self.starts[0] >= self.trim_bytes:
            self.trim()

    def read(self, token: Token) -> tuple[list[bytes], int]:
        """The entries ``token`` has not read, as the bytes for its layout, and their size;
        ``token.log_pos`` becomes :attr:`end`. Raises ``LookupError`` when its position was
        trimmed away (never for a reader: :meth:`trim` keeps what readers have not read)."""
        i = token.log_pos - self.base
        if i < 0:
            raise LookupError(f"log position {token.log_pos} trimmed (base {self.base})")
        token.log_pos = self.end
        entries = self.entries
        if not self.layered:
            return entries[i:], self.total - self.starts[i]  # type: ignore[return-value]
        layout = token.layout
        parts = []
        size = 0
        for k in range(i, len(entries)):
            entry = entries[k]
            data = entry if type(entry) is bytes else entry.for_layout(layout)  # type: ignore[union-attr]
            if data:
                parts.append(data)
                size += len(data)
        return parts, size

    def trim(self) -> None:
        """Overflow the readers whose unread bytes plus their own queue exceed their
        ``max_queue``, then drop the entries every reader has read. O(readers + dropped)."""
        end = self.end
        base = self.base
        starts = self.starts
        total = self.total
        low = end
        for token in tuple(self.readers()):
            if token.feed is not self:
                continue
            pos = token.log_pos
            if pos >= end:
                continue
            if pos < base or token.queued + total - starts[pos - base] > token.max_queue:
                token.overflow()  # as a queue past the cap: dropped, the session ends soon
                continue
            if pos < low:
                low = pos
        drop = low - base
        if drop:
            entries = self.entries
            if self.layered:
                self.layered -= sum(1 for e in entries[:drop] if type(e) is not bytes)
            del entries[:drop]
            del starts[:drop]
            self.base = low
        held = total - starts[0] if starts else 0
        self.trim_entries = len(self.entries) + TRIM_ENTRIES
        self.trim_bytes = held + TRIM_BYTES
