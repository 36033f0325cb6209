"""Packet 87, invite (i32 user id) (docs/rules.md §1.9).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import chat, multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """MATCH_INVITE (88) to the user, from a seated player. Refused while the sender is
    silenced; a delivered invite counts against the chat spam limit like a message
    (docs/security.md, "Hardening II: in game")."""
    user_id = codec.read_i32(payload)
    if not chat.message_like_allowed(state, token):
        return
    if multiplayer.invite_user(state, token, user_id):
        chat.count_message_like(state, token)
