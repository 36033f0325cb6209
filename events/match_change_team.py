"""Packet 77, change team (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Team modes only: RED ↔ BLUE."""
    multiplayer.change_team(state, token)
