"""Packet 33, part match (docs/rules.md §1.3 "Leave").

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from constants import packets
from events import event
from services import multiplayer


@event(packets.C_PART_MATCH)
def handle(state, token, payload: bytes) -> None:
    """Leave the match the user sits in (no-op when none)."""
    multiplayer.leave(state, token)
