"""Packet 79, receive updates: which users' status changes the client wants pushed (0 none,
1 all, 2 friends; docs/rules.md §3.5). Stored on the token; out-of-range values are ignored."""

from __future__ import annotations

from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Store the presence filter."""
    value = codec.read_i32(payload)
    if 0 <= value <= 2:
        token.presence_filter = value
