"""Packet 52, load complete (docs/rules.md §1.8).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Mark the player loaded; ALL_PLAYERS_LOADED once when all are."""
    multiplayer.player_loaded(state, token)
