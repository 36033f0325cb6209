"""Packet 82, set away message: Message whose content is the away text ("" clears it).

The bot confirms with a private message (docs/rules.md §6.3)."""

from __future__ import annotations

from constants import packets
from events import event
from services import chat
from helpers import codec

MAX_AWAY = 256


@event(packets.C_SET_AWAY_MESSAGE)
def handle(state, token, payload: bytes) -> None:
    """Store or clear the away text (at most 256 characters) and confirm it."""
    _, content, _, _ = codec.read_message(payload)
    content = content.strip()[:MAX_AWAY]
    if content:
        token.away_message = content
        chat.bot_private(state, token, f"Your away message is now: {content}")
    else:
        token.away_message = None
        chat.bot_private(state, token, "Your away message has been reset")
