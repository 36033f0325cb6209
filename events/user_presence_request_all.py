"""Packet 98, presence request all (i32 ignored): 83 for every online non-restricted user
(docs/rules.md §3.4 [FIX])."""

from __future__ import annotations

from constants import packets
from events import event


@event(packets.C_USER_PRESENCE_REQUEST_ALL)
def handle(state, token, payload: bytes) -> None:
    """Queue the presence of every visible online user (the payload is not read)."""
    seen: set[int] = set()
    for other in state.tokens:
        if other.user_id in seen or (other.restricted and other is not token):
            continue
        seen.add(other.user_id)
        token.enqueue(other.presence_packet())
