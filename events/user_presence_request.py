"""Packet 97, presence request (u16-counted i32 ids): 83 for each online, non-restricted id
(self included; docs/rules.md §3.4). At most 256 ids are answered."""

from __future__ import annotations

from helpers import codec

MAX_IDS = 256


def handle(state, token, payload: bytes) -> None:
    """Queue the cached presence packet of each visible requested user."""
    for user_id in codec.read_i32_list(payload, MAX_IDS):
        other = state.tokens.user(user_id)
        if other is not None and (not other.restricted or other is token):
            token.enqueue(other.presence_packet())
