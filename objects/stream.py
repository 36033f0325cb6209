"""Streams: named audiences that receive the same bytes.

A broadcast is encoded once by the caller and the same ``bytes`` object is appended to the
queue of every member (design.md, "The path of a broadcast"). Members are kept in a dict keyed
by token string so that iteration order is join order and removal is O(1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from objects.token import Token


class Stream:
    """An audience of tokens, e.g. a channel's members, the lobby or a host's spectators."""

    __slots__ = ("name", "members")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, Token] = {}

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
        return True

    def remove(self, token: Token) -> bool:
        """Remove ``token``; returns False when it was not a member."""
        return self.members.pop(token.token, None) is not None

    def broadcast(self, data: bytes, but: Token | None = None) -> None:
        """Append the already-encoded packet(s) ``data`` (immutable ``bytes``) to every member's
        queue except ``but``: one shared object, one list append per member (the body of
        :meth:`Token.enqueue`, inlined because this loop is the cost of every broadcast)."""
        size = len(data)
        for member in self.members.values():
            if member is not but and not member.is_bot:
                member.queue.append(data)
                member.queued += size
                if member.queued > member.max_queue:
                    member.overflow()
