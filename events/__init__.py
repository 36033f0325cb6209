"""Client packet handlers: one module per packet, and the one table from packet id to handler.

A handler is ``handle(state, token, payload) -> None``: it decodes ``payload`` with the codec,
applies the rules to :mod:`objects` and appends replies to queues. It never awaits; work that
needs MySQL or Redis is scheduled with :meth:`objects.state.State.spawn` and replies when done.
A handler may raise :class:`helpers.codec.PacketError` for a malformed payload; the main
handler logs it and goes on with the next packet.

:data:`HANDLERS` is built here, once, from the explicit list below (no registration at import
time, nothing to mutate later): a read-only mapping from :class:`constants.packets.ClientPacket`
to the module's ``handle``. Restricted users may only use the packets in
:data:`RESTRICTED_ALLOWED` (docs/rules.md §7.3 plus ping and receive-updates as in bancho.py).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping

from constants.packets import ClientPacket
from events import (change_action, public_message, logout, request_status_update, ping,
    error_report, private_message, channel_join, channel_part, friend_add, friend_remove,
    receive_updates, set_away_message, user_stats_request, user_presence_request,
    user_presence_request_all, toggle_block_dms, join_lobby, part_lobby, create_match, join_match,
    part_match, match_change_slot, match_ready, match_not_ready, match_lock, match_change_settings,
    match_change_password, match_start, match_score_update, match_complete, match_change_mods,
    match_load_complete, match_no_beatmap, match_has_beatmap, match_failed, match_skip_request,
    match_transfer_host, match_change_team, match_invite, tournament_match_info,
    tournament_join_match_channel, tournament_leave_match_channel, start_spectating,
    stop_spectating, spectate_frames, cant_spectate)

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

Handler = Callable[["State", "Token", bytes], None]

#: client packet id -> handler (read-only; docs/protocol.md lists the packets)
HANDLERS: Mapping[int, Handler] = MappingProxyType({
    ClientPacket.CHANGE_ACTION: change_action.handle,
    ClientPacket.PUBLIC_MESSAGE: public_message.handle,
    ClientPacket.LOGOUT: logout.handle,
    ClientPacket.REQUEST_STATUS_UPDATE: request_status_update.handle,
    ClientPacket.PING: ping.handle,
    ClientPacket.ERROR_REPORT: error_report.handle,
    ClientPacket.PRIVATE_MESSAGE: private_message.handle,
    ClientPacket.CHANNEL_JOIN: channel_join.handle,
    ClientPacket.CHANNEL_PART: channel_part.handle,
    ClientPacket.FRIEND_ADD: friend_add.handle,
    ClientPacket.FRIEND_REMOVE: friend_remove.handle,
    ClientPacket.RECEIVE_UPDATES: receive_updates.handle,
    ClientPacket.SET_AWAY_MESSAGE: set_away_message.handle,
    ClientPacket.USER_STATS_REQUEST: user_stats_request.handle,
    ClientPacket.USER_PRESENCE_REQUEST: user_presence_request.handle,
    ClientPacket.USER_PRESENCE_REQUEST_ALL: user_presence_request_all.handle,
    ClientPacket.TOGGLE_BLOCK_NON_FRIEND_DMS: toggle_block_dms.handle,
    ClientPacket.JOIN_LOBBY: join_lobby.handle,
    ClientPacket.PART_LOBBY: part_lobby.handle,
    ClientPacket.CREATE_MATCH: create_match.handle,
    ClientPacket.JOIN_MATCH: join_match.handle,
    ClientPacket.PART_MATCH: part_match.handle,
    ClientPacket.MATCH_CHANGE_SLOT: match_change_slot.handle,
    ClientPacket.MATCH_READY: match_ready.handle,
    ClientPacket.MATCH_NOT_READY: match_not_ready.handle,
    ClientPacket.MATCH_LOCK: match_lock.handle,
    ClientPacket.MATCH_CHANGE_SETTINGS: match_change_settings.handle,
    ClientPacket.MATCH_CHANGE_PASSWORD: match_change_password.handle,
    ClientPacket.MATCH_START: match_start.handle,
    ClientPacket.MATCH_SCORE_UPDATE: match_score_update.handle,
    ClientPacket.MATCH_COMPLETE: match_complete.handle,
    ClientPacket.MATCH_CHANGE_MODS: match_change_mods.handle,
    ClientPacket.MATCH_LOAD_COMPLETE: match_load_complete.handle,
    ClientPacket.MATCH_NO_BEATMAP: match_no_beatmap.handle,
    ClientPacket.MATCH_HAS_BEATMAP: match_has_beatmap.handle,
    ClientPacket.MATCH_FAILED: match_failed.handle,
    ClientPacket.MATCH_SKIP_REQUEST: match_skip_request.handle,
    ClientPacket.MATCH_TRANSFER_HOST: match_transfer_host.handle,
    ClientPacket.MATCH_CHANGE_TEAM: match_change_team.handle,
    ClientPacket.MATCH_INVITE: match_invite.handle,
    ClientPacket.TOURNAMENT_MATCH_INFO_REQUEST: tournament_match_info.handle,
    ClientPacket.TOURNAMENT_JOIN_MATCH_CHANNEL: tournament_join_match_channel.handle,
    ClientPacket.TOURNAMENT_LEAVE_MATCH_CHANNEL: tournament_leave_match_channel.handle,
    ClientPacket.START_SPECTATING: start_spectating.handle,
    ClientPacket.STOP_SPECTATING: stop_spectating.handle,
    ClientPacket.SPECTATE_FRAMES: spectate_frames.handle,
    ClientPacket.CANT_SPECTATE: cant_spectate.handle,
})

#: the packets a restricted user may still send (docs/rules.md §7.3)
RESTRICTED_ALLOWED: frozenset[int] = frozenset({
    ClientPacket.CHANGE_ACTION, ClientPacket.LOGOUT, ClientPacket.REQUEST_STATUS_UPDATE, ClientPacket.PING,
    ClientPacket.CHANNEL_JOIN, ClientPacket.CHANNEL_PART, ClientPacket.USER_STATS_REQUEST,
    ClientPacket.USER_PRESENCE_REQUEST, ClientPacket.RECEIVE_UPDATES,
    # create/join match reach their handlers only to be refused with 37 + a notification
    # (docs/rules.md §1.3 [FIX]: a restricted client must not be left waiting)
    ClientPacket.CREATE_MATCH, ClientPacket.JOIN_MATCH,
})
