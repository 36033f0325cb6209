"""Packet 108, tournament join match channel (i32 match id) (docs/rules.md §1.10).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Staff tournament clients join ``#multi_<id>`` without a slot."""
    multiplayer.observe(state, token, codec.read_i32(payload))
