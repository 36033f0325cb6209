"""Packet 38, change slot (i32 slot) (docs/rules.md §1.5).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Move to an OPEN slot 0..15 (not while locked by a referee, counting down or playing)."""
    slot = codec.read_i32(payload)
    match = state.matches.get(token.match_id)
    if match is not None:
        multiplayer.move(state, match, token, slot)
