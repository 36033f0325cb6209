"""Client packet handlers: one module per packet, registered here by packet id.

A handler is ``handle(state, token, payload) -> None``: it decodes ``payload`` with the codec,
applies the rules to :mod:`objects` and appends replies to queues. It never awaits; work that
needs MySQL or Redis is scheduled with :meth:`objects.state.State.spawn` and replies when done.
A handler may raise :class:`helpers.codec.PacketError` for a malformed payload; the main
handler logs it and goes on with the next packet.

Restricted users may only use the packets in :data:`RESTRICTED_ALLOWED`
(integration.md §5.3 plus ping and receive-updates as in bancho.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from constants import packets as p

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

Handler = Callable[["State", "Token", bytes], None]

#: packet id -> handler
HANDLERS: dict[int, Handler] = {}

RESTRICTED_ALLOWED = frozenset({
    p.C_CHANGE_ACTION, p.C_LOGOUT, p.C_REQUEST_STATUS_UPDATE, p.C_PING, p.C_CHANNEL_JOIN,
    p.C_CHANNEL_PART, p.C_USER_STATS_REQUEST, p.C_USER_PRESENCE_REQUEST, p.C_RECEIVE_UPDATES,
})


def event(packet_id: int) -> Callable[[Handler], Handler]:
    """Decorator registering ``handle`` as the handler of client packet ``packet_id``."""

    def register(handler: Handler) -> Handler:
        if packet_id in HANDLERS:
            raise RuntimeError(f"packet {packet_id} has two handlers")
        HANDLERS[packet_id] = handler
        return handler

    return register


_MODULES = (
    "change_action", "public_message", "logout", "request_status_update", "ping",
    "error_report", "private_message", "channel_join", "channel_part", "friend_add",
    "friend_remove", "receive_updates", "set_away_message", "user_stats_request",
    "user_presence_request", "user_presence_request_all", "toggle_block_dms",
)

for _name in _MODULES:
    importlib.import_module(f"events.{_name}")
