"""Packet 21, can't spectate (the spectator lacks the map) (docs/rules.md §2.5).

The rules live in :mod:`services.spectate`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import spectate


def handle(state, token, payload: bytes) -> None:
    """SPECTATOR_CANT_SPECTATE(me) to the host and its spectators."""
    spectate.cant_spectate(state, token)
