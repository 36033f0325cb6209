"""Packet 54, no beatmap (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """The player lacks the map: NO_MAP."""
    multiplayer.set_has_map(state, token, False)
