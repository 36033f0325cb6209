"""Packet 40, lock/unlock a slot (i32 slot) (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Host only: toggle LOCKED/OPEN; locking an occupied slot kicks its player; never the host's own slot."""
    multiplayer.toggle_lock(state, token, codec.read_i32(payload))
