"""Packet 30, join lobby (docs/rules.md §1.4).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Enter the lobby audience; NEW_MATCH (censored) for every match."""
    multiplayer.join_lobby(state, token)
