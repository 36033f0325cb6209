"""Packet 85, user stats request (u16-counted i32 ids): 11 for each requested online user,
skipping self, offline and restricted users (docs/rules.md §3.4, S70). At most 32 ids are answered."""

from __future__ import annotations

from helpers import codec

MAX_IDS = 32


def handle(state, token, payload: bytes) -> None:
    """Queue the cached stats packet of each visible requested user."""
    for user_id in codec.read_i32_list(payload, MAX_IDS):
        if user_id == token.user_id:
            continue
        other = state.tokens.user(user_id)
        if other is not None and not other.restricted:
            token.enqueue(other.stats_packet(token.layout))
