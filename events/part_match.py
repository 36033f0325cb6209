"""Packet 33, part match (docs/rules.md §1.3 "Leave").

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Leave the match the user sits in (no-op when none)."""
    multiplayer.leave(state, token)
