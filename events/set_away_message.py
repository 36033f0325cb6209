"""Packet 82, set away message: Message whose content is the away text ("" clears it).

The bot confirms with a private message (docs/rules.md §6.3). Refused while silenced and
counted against the spam limit like a message (docs/security.md, "Hardening II: in game")."""

from __future__ import annotations

from services import chat
from helpers import codec

MAX_AWAY = 256


def handle(state, token, payload: bytes) -> None:
    """Store or clear the away text (at most 256 characters) and confirm it."""
    _, content, _, _ = codec.read_message(payload, token.layout)
    if not chat.message_like_allowed(state, token):
        return
    chat.count_message_like(state, token)  # shares the spam limit (docs/security.md)
    content = content.strip()[:MAX_AWAY]
    if content:
        token.away_message = content
        chat.bot_private(state, token, f"Your away message is now: {content}")
    else:
        token.away_message = None
        chat.bot_private(state, token, "Your away message has been reset")
