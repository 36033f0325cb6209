"""Moderation shared by the bot's staff commands, pub/sub and the API: ban, restrict, kick.

Owned by the web-stack issue (pub/sub ``peppy:ban``); the staff commands call the same
functions. Signatures are fixed; callers elsewhere rely on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State


async def ban(state: State, user_id: int, by: int | None = None, reason: str = "") -> None:
    """``privileges &= ~3``, ``ban_datetime = now``, leaderboard removal, publish ``peppy:ban``."""
    raise NotImplementedError("web-stack issue")


async def unban(state: State, user_id: int, by: int | None = None) -> None:
    """``privileges |= 3``, ``ban_datetime = 0``, publish ``peppy:ban``."""
    raise NotImplementedError("web-stack issue")


async def restrict(state: State, user_id: int, by: int | None = None, reason: str = "") -> None:
    """Unless already restricted: ``privileges &= ~1``, ``ban_datetime = now``, publish ``peppy:ban``."""
    raise NotImplementedError("web-stack issue")


async def unrestrict(state: State, user_id: int, by: int | None = None) -> None:
    """Same as :func:`unban` (integration.md §3.3)."""
    raise NotImplementedError("web-stack issue")


async def refresh_privileges(state: State, user_id: int) -> None:
    """The ``peppy:ban`` handler: re-read privileges; kick if banned; restricted/unrestricted PMs."""
    raise NotImplementedError("web-stack issue")
