"""Packet 25, private message: Message whose target is the recipient's username (docs/protocol.md §7.3)."""

from __future__ import annotations

from services import chat
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Send the message to the user through the chat pipeline (docs/rules.md §6.2, §6.3)."""
    _, content, target, _ = codec.read_message(payload, token.layout)
    if target and not target.startswith("#"):
        chat.send_message(state, token, target, content)
