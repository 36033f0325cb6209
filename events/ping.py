"""Packet 4, ping: the keep-alive of an idle client. The poll itself refreshes ``last_seen``; no reply."""

from __future__ import annotations



def handle(state, token, payload: bytes) -> None:
    """Nothing to do (docs/protocol.md §8)."""
