"""Client packet handlers: one module per packet, registered here by packet id.

A handler is ``handle(state, token, payload) -> None``: it decodes ``payload`` with the codec,
applies the rules to :mod:`objects` and appends replies to queues. It never awaits; work that
needs MySQL or Redis is scheduled with :meth:`objects.state.State.spawn` and replies when done.
A handler may raise :class:`helpers.codec.PacketError` for a malformed payload; the main
handler logs it and goes on with the next packet.

Restricted users may only use the packets in :data:`RESTRICTED_ALLOWED`
(docs/rules.md §7.3 plus ping and receive-updates as in bancho.py).
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
    # create/join match reach their handlers only to be refused with 37 + a notification
    # (docs/rules.md §1.3 [FIX]: a restricted client must not be left waiting)
    p.C_CREATE_MATCH, p.C_JOIN_MATCH,
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
    # multiplayer, lobby, tournament clients, spectating (services.multiplayer, services.spectate)
    "join_lobby", "part_lobby", "create_match", "join_match", "part_match", "match_change_slot",
    "match_ready", "match_not_ready", "match_lock", "match_change_settings", "match_change_password",
    "match_start", "match_score_update", "match_complete", "match_change_mods", "match_load_complete",
    "match_no_beatmap", "match_has_beatmap", "match_failed", "match_skip_request",
    "match_transfer_host", "match_change_team", "match_invite", "tournament_match_info",
    "tournament_join_match_channel", "tournament_leave_match_channel", "start_spectating",
    "stop_spectating", "spectate_frames", "cant_spectate",
)

for _name in _MODULES:
    importlib.import_module(f"events.{_name}")
