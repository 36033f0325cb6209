"""Packet 3, request status update: the client wants its own fresh stats (after a score
submission or a mode change). The stats are re-read from MySQL, then 11 is queued
(docs/rules.md §3.4, S71); the reply reaches the client on its next poll. Reloads are coalesced
per session (docs/security.md, "Hardening II: in game")."""

from __future__ import annotations

from objects.token import REPLY_STATS
from services import session


def handle(state, token, payload: bytes) -> None:
    """Schedule the reload (at most one in flight per session, one more after it)."""
    session.request_stats_reload(state, token, REPLY_STATS)
