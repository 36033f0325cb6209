"""Packet 17, stop spectating (docs/rules.md §2.3).

The rules live in :mod:`services.spectate`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import spectate


def handle(state, token, payload: bytes) -> None:
    """Stop spectating (no-op when spectating nobody)."""
    spectate.stop_spectating(state, token)
