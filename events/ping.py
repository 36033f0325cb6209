"""Packet 4, ping: the keep-alive of an idle client. The poll itself refreshes ``last_seen``; no reply."""

from __future__ import annotations

from constants import packets
from events import event


@event(packets.C_PING)
def handle(state, token, payload: bytes) -> None:
    """Nothing to do (docs/protocol.md §8)."""
