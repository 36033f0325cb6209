"""Packet 49, round complete (docs/rules.md §1.8).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Mark the player complete; the round finishes when all are."""
    multiplayer.player_completed(state, token)
