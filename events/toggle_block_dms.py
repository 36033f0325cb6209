"""Packet 99, block private messages from non-friends (i32, 1 = block; docs/protocol.md §7.4).

Refused private messages are answered with 100 (see :mod:`services.chat`)."""

from __future__ import annotations

from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Store the flag on the token (the session's setting; the login line carries the initial value)."""
    token.block_nonfriend_dms = codec.read_i32(payload) != 0
