"""Packet 39, ready (docs/rules.md §1.5 [FIX]: set, never toggle).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """NOT_READY → READY."""
    multiplayer.set_ready(state, token, True)
