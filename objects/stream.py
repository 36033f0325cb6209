"""Streams: named audiences that receive the same bytes.

A broadcast is encoded once by the caller and the same ``bytes`` object is appended to the
queue of every member (docs/architecture.md, "The path of a broadcast"). Members are kept in a dict keyed
by token string so that iteration order is join order and removal is O(1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator

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
            token.queue.append(data)
            token.queued += size
            if token.queued > token.max_queue:
                token.overflow()


def fan_out_layouts(tokens: Iterable[Token], encode: Callable[[Layout], bytes], kind: int,
                    but: Token | None = None) -> None:
    """Like :func:`fan_out` for a packet whose bytes depend on the receiver's client build
    (helpers/layout.py): ``encode(layout)`` is called lazily, at most once per distinct variant
    ``layout.v[kind]`` among the receivers (``kind`` is e.g. ``helpers.layout.MESSAGE``), and
    every receiver of that variant gets the same bytes object. Receivers that all speak the
    modern layout cost one encoding, as with :func:`fan_out`. For receivers addressed one by
    one (match members, spectators) use :func:`enqueue_layouts`."""
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
        if not data:
            continue  # the build has no such packet
        token.queue.append(data)
        token.queued += len(data)
        if token.queued > token.max_queue:
            token.overflow()


def enqueue_layouts(tokens: Iterable[Token], encode: Callable[[Layout], bytes], kind: int,
                    but: Token | None = None) -> None:
    """:func:`fan_out_layouts` for the audiences that are sent to one by one (match members,
    spectators, ...): each receiver gets the bytes through :meth:`Token.enqueue`, so a cluster's
    remote presence relays them to its node (a stream broadcast never does: other nodes get the
    event itself, docs/cluster.md). ``encode(layout)`` once per layout variant present."""
    modern: bytes | None = None
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
        if data:
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
