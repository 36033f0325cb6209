"""Packet 44, start (docs/rules.md §1.8).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Host only: start the round with every player that has the map (never while a round runs)."""
    multiplayer.request_start(state, token)
