"""Maintenance mode: only administrators may stay and log in (docs/rules.md §7.6,
docs/operations.md). Used by ``!system maintenance`` (services/commands/staff.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from constants import game
from helpers import codec
from services import login, session
from services.status import status_line

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.system")

MAINTENANCE_OFF_NOTICE = "Bancho is no longer in maintenance mode. You can log in again."


async def set_maintenance(state: State, on: bool) -> None:
    """Turn maintenance mode on/off: write ``bancho_settings``, notify, refuse non-admins.

    docs/rules.md §7.6: the row is written first (raises :class:`common.db.DatabaseError`,
    nothing changes then). On: admins get the admin maintenance notice; every other session
    gets the maintenance notice and login reply -5 and is logged out at once (its final packets
    are kept for its next poll, like a kick; docs/operations.md). Off: everyone is told.
    """
    on = bool(on)
    await state.repo.set_maintenance(on)
    state.settings.maintenance = on
    refused = 0
    if on:
        admin_notice = codec.notification(login.NOTICE_MAINTENANCE_ADMIN)
        for token in state.tokens:
            if token.is_bot:
                continue
            if token.admin:
                token.enqueue(admin_notice)
                continue
            session.kick(state, token, login.NOTICE_MAINTENANCE, reply=game.LOGIN_ERROR)
            refused += 1
    else:
        state.tokens.broadcast(codec.notification(MAINTENANCE_OFF_NOTICE))
    state.lifecycle.notifier.status(status_line(state))
    log.info("maintenance %s (%d session(s) refused)", "on" if on else "off", refused)
