"""Packet 18, spectator frames (opaque bundle) (docs/rules.md §2.4, docs/protocol.md §4.8).

The rules live in :mod:`services.spectate`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import spectate


def handle(state, token, payload: bytes) -> None:
    """Relay the bundle unchanged as 15 to every spectator, never back to the host."""
    spectate.relay_frames(state, token, payload)
