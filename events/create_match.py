"""Packet 31, create match (match struct) (docs/rules.md §1.3 "Create").

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec
from helpers.codec import PacketError


def handle(state, token, payload: bytes) -> None:
    """Create a match from the struct, or answer 37 (malformed struct, bad name, restricted, silenced)."""
    try:
        data = codec.read_match(payload, token.layout)
    except PacketError:
        token.enqueue(codec.match_join_fail())  # never leave the client waiting
        raise
    multiplayer.create_from_packet(state, token, data)
