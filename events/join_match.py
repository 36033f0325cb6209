"""Packet 32, join match (i32 match id, str password) (docs/rules.md §1.3 "Join").

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec
from helpers.codec import PacketError


def handle(state, token, payload: bytes) -> None:
    """Join the match or answer 37 (unknown id, wrong password, full, restricted, silenced)."""
    try:
        match_id, password = codec.read_join_match(payload)
    except PacketError:
        token.enqueue(codec.match_join_fail())  # never leave the client waiting
        raise
    multiplayer.join_from_packet(state, token, match_id, password)
