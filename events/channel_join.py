"""Packet 63, channel join (docs/protocol.md §7.2, docs/rules.md §6.1).

Joining a channel one may read answers 64 (also when already a member: the client may ask again).
Unknown channels, channels the user may not read, and the runtime ``#spectator`` /
``#multiplayer`` channels (joined by the server only) are refused with 66 so the tab closes.
``#highlight`` and ``#userlog`` are client-local tabs and are opened with 64.
"""

from __future__ import annotations

from services import channels
from helpers import codec
from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX

CLIENT_LOCAL = ("#highlight", "#userlog")
RUNTIME = ("#spectator", "#multiplayer")


def handle(state, token, payload: bytes) -> None:
    """Join the named channel or refuse it with 66."""
    name = codec.read_str(payload)
    if name in CLIENT_LOCAL:
        token.enqueue(codec.channel_join_success(name))
        return
    channel = None
    if name not in RUNTIME and not name.startswith((SPECTATOR_PREFIX, MULTIPLAYER_PREFIX)):
        channel = state.channels.get(name)
    if channel is None or not channel.can_read(token):
        token.enqueue(codec.channel_kicked(name[:64]))
        return
    if channel.name in token.channels:
        token.enqueue(codec.channel_join_success(channel.client_name))
        return
    channels.join_channel(state, token, channel)
