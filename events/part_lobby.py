"""Packet 29, part lobby (docs/rules.md §1.4).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Leave the lobby audience (66 ``#lobby`` when in that channel)."""
    multiplayer.part_lobby(state, token)
