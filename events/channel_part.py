"""Packet 78, channel part: leave a channel the user is in (docs/protocol.md §7.2).

The runtime ``#spectator`` and ``#multiplayer`` channels cannot be parted by hand
(docs/rules.md §6.1); leaving them happens by stopping spectating or leaving the match.
"""

from __future__ import annotations

from services import channels
from helpers import codec
from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX


def handle(state, token, payload: bytes) -> None:
    """Part the channel; nothing happens for channels the user is not in."""
    name = codec.read_str(payload)
    if name in ("#spectator", "#multiplayer") or name.startswith((SPECTATOR_PREFIX, MULTIPLAYER_PREFIX)):
        return
    channel = state.channels.get(name)
    if channel is None or channel.name not in token.channels:
        return
    channels.part_channel(state, token, channel)
