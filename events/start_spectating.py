"""Packet 16, start spectating (i32 host user id) (docs/rules.md §2.2).

The rules live in :mod:`services.spectate`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import spectate
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Spectate the user (refused for oneself, the bot, restricted and offline users)."""
    spectate.start_spectating(state, token, codec.read_i32(payload))
