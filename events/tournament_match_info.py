"""Packet 93, tournament match info (i32 match id) (docs/rules.md §1.10).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Staff tournament clients get the censored MATCH_UPDATE; anyone else nothing."""
    multiplayer.tourney_match_info(state, token, codec.read_i32(payload))
