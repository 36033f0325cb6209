"""Packet 47, score frame (docs/rules.md §1.8, docs/protocol.md §4.7).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer


def handle(state, token, payload: bytes) -> None:
    """Relay the frame as 48 (slot id patched) to the players of the running round."""
    multiplayer.score_update(state, token, payload)
