"""Packet 59, has beatmap (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """The player has the map again: NOT_READY."""
    multiplayer.set_has_map(state, token, True)
