"""Packet 41, change settings (match struct) (docs/rules.md §1.6).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Host only: apply the host-editable fields of the struct."""
    multiplayer.change_settings(state, token, codec.read_match(payload, token.layout))
