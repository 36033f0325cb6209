"""The global token list: every online session, indexed by token string, user id and safe name."""

from __future__ import annotations

from typing import Callable, Iterator

from objects.stream import fan_out, fan_out_layouts
from objects.token import Token


class TokenList:
    """All online tokens (the "main" audience), bot included.

    ``on_change`` is called after every add or remove (used to keep ``ripple:online_users``
    exact without touching Redis on the poll path).
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.by_token: dict[str, Token] = {}
        self.by_user: dict[int, list[Token]] = {}
        self.by_safe: dict[str, int] = {}  # safe username -> user id
        self.on_change = on_change

    def __len__(self) -> int:
        return len(self.by_token)

    def __iter__(self) -> Iterator[Token]:
        return iter(tuple(self.by_token.values()))

    def add(self, token: Token) -> None:
        """Register ``token`` in every index and report the change."""
        self.by_token[token.token] = token
        self.by_user.setdefault(token.user_id, []).append(token)
        self.by_safe[token.safe_name] = token.user_id
        if self.on_change is not None:
            self.on_change()

    def remove(self, token: Token) -> bool:
        """Forget ``token``; returns False if it was not in the list."""
        if self.by_token.pop(token.token, None) is None:
            return False
        tokens = self.by_user.get(token.user_id)
        if tokens is not None:
            try:
                tokens.remove(token)
            except ValueError:
                pass
            if not tokens:
                del self.by_user[token.user_id]
                if self.by_safe.get(token.safe_name) == token.user_id:
                    del self.by_safe[token.safe_name]
        if self.on_change is not None:
            self.on_change()
        return True

    def get(self, token_string: str) -> Token | None:
        """The token whose string is ``token_string`` (the ``osu-token`` header), or None."""
        return self.by_token.get(token_string)

    def user_tokens(self, user_id: int) -> list[Token]:
        """Every live token of the user (several for tournament clients); a copy."""
        return list(self.by_user.get(user_id, ()))

    def user(self, user_id: int) -> Token | None:
        """The user's main token: the game client if one is online, else any token (e.g. tourney
        or IRC, docs/irc.md)."""
        tokens = self.by_user.get(user_id)
        if not tokens:
            return None
        for token in tokens:
            if not token.tournament and not token.kicked and token.irc is None:
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
        """Append ``data`` to every token's queue except ``but`` (the "main" stream; see
        :func:`objects.stream.fan_out`)."""
        fan_out(self.by_token.values(), data, but)

    def broadcast_layouts(self, encode, kind: int, but: Token | None = None) -> None:
        """Send a packet whose bytes depend on the receiver's build to every token except
        ``but``: ``encode(layout)`` once per variant present (:func:`objects.stream.fan_out_layouts`)."""
        fan_out_layouts(self.by_token.values(), encode, kind, but)
