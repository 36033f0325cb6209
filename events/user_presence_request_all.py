"""Packet 98, presence request all (i32 ignored): 83 for every online non-restricted user
(docs/rules.md §3.4 [FIX]). Answered at most once per poll: the answer costs O(online), so
repeating the frame must not multiply it (docs/security.md, "Hardening II: in game")."""

from __future__ import annotations

from objects.token import POLL_PRESENCE_ALL


def handle(state, token, payload: bytes) -> None:
    """Queue the presence of every visible online user (the payload is not read), once per poll."""
    if token.poll_flags & POLL_PRESENCE_ALL:
        return
    token.poll_flags |= POLL_PRESENCE_ALL
    seen: set[int] = set()
    for other in state.tokens:
        if other.user_id in seen or (other.restricted and other is not token):
            continue
        seen.add(other.user_id)
        token.enqueue(other.presence_packet())
