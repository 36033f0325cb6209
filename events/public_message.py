"""Packet 1, public message: Message(sender, content, target channel, sender id); only content
and target are used, the identity is the token's (docs/protocol.md §4.4, §7.3)."""

from __future__ import annotations

from services import chat
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Send the message to the channel through the chat pipeline (docs/rules.md §6.2)."""
    _, content, target, _ = codec.read_message(payload, token.layout)
    if target.startswith("#"):
        chat.send_message(state, token, target, content)
