"""Packet 70, transfer host (i32 slot) (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Host only: give host to the user in that slot (it gets 50)."""
    multiplayer.transfer_host(state, token, codec.read_i32(payload))
