"""Packet 87, invite (i32 user id) (docs/rules.md §1.9).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from constants import packets
from events import event
from services import multiplayer
from helpers import codec


@event(packets.C_MATCH_INVITE)
def handle(state, token, payload: bytes) -> None:
    """MATCH_INVITE (88) to the user, from a seated player."""
    multiplayer.invite_user(state, token, codec.read_i32(payload))
