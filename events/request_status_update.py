"""Packet 3, request status update: the client wants its own fresh stats (after a score
submission or a mode change). The stats are re-read from MySQL, then 11 is queued
(docs/rules.md §3.4, S71); the reply reaches the client on its next poll."""

from __future__ import annotations

from constants import packets
from events import event
from services import session


@event(packets.C_REQUEST_STATUS_UPDATE)
def handle(state, token, payload: bytes) -> None:
    """Schedule the reload; the reply goes out when it is done."""
    state.spawn(_reload_and_reply(state, token), f"status update of {token.user_id}")


async def _reload_and_reply(state, token) -> None:
    await session.reload_stats(state, token)
    token.enqueue(token.stats_packet())
