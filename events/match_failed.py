"""Packet 56, failed (docs/rules.md §1.8).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """MATCH_PLAYER_FAILED(slot id) to the players, once per player and round."""
    multiplayer.player_failed(state, token)
