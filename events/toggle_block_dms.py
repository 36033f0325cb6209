"""Packet 99, block private messages from non-friends (i32, 1 = block; docs/protocol.md §7.4).

Refused private messages are answered with 100 (see :mod:`services.chat`)."""

from __future__ import annotations

from constants import packets
from events import event
from helpers import codec


@event(packets.C_TOGGLE_BLOCK_NON_FRIEND_DMS)
def handle(state, token, payload: bytes) -> None:
    """Store the flag on the token (the session's setting; the login line carries the initial value)."""
    token.block_nonfriend_dms = codec.read_i32(payload) != 0
