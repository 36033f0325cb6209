"""Packet 60, skip request (docs/rules.md §1.8).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """MATCH_PLAYER_SKIPPED(slot id) to the players; MATCH_SKIP when all skipped."""
    multiplayer.player_skipped(state, token)
