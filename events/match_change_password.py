"""Packet 90, change password (match struct; only the password is used) (docs/rules.md §1.6).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Host only: new password, 91 to the members, updates."""
    multiplayer.change_password(state, token, codec.read_match(payload, token.layout).password)
