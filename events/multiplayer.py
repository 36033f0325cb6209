"""Multiplayer procedures shared by the match packets, logout, the bot and the API.

Owned by the multiplayer issue; the foundation only needs :func:`leave_match` (called by the
logout procedure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token


def leave_match(state: State, token: Token) -> None:
    """Take ``token`` out of its match (and the lobby); no-op when it is in none."""
    state.lobby.remove(token)
    token.in_lobby = False
    token.match_id = None
