"""Reloading the settings from MySQL without dropping anyone: ``peppy:reload_settings``,
``!system reload``, ``!reloadconfig`` and SIGHUP (docs/integration.md §1, docs/operations.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from helpers import codec
from helpers import geo
from helpers.layout import TITLE
from services import world

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.system")


async def reload_settings(state: State) -> None:
    """Reload bancho settings, the menu icon and new channels from MySQL, without dropping anyone.

    docs/integration.md §1 ``reload_settings``: everything is read first (a
    :class:`common.db.DatabaseError` leaves the state unchanged), then in one step: the settings
    are replaced, channels not known yet are added (existing ones are never removed or changed)
    and joined by the bot, and every session gets the menu icon (76, even when empty), 89 and
    65 for every listed channel. The geolocation database is reopened if its file changed.
    Concurrent reloads run one after the other (``state.lifecycle.reload_lock``).
    """
    repo = state.repo
    lc = state.lifecycle
    async with lc.reload_lock:
        await repo.load_admin_groups()
        settings = await repo.settings()
        settings.menu_icon = await repo.menu_icon(state.cfg.stack.menu_icon_base)
        rows = await repo.channels()
        # ---- memory only from here
        state.settings = settings
        added = world.add_channels(state, rows)
        tail = codec.channel_info_end() + b"".join(channel.info_packet() for channel in state.channels.listed())
        state.tokens.broadcast_layouts(lambda lay: codec.main_menu_icon(settings.menu_icon, lay) + tail, TITLE)
    _reload_geo(state)
    log.info("settings reloaded: maintenance %s, login notification %s, menu icon %s, new channels: %s",
             "on" if settings.maintenance else "off", "set" if settings.login_notification else "empty",
             "set" if settings.menu_icon else "none", ", ".join(added) or "none")


def _reload_geo(state: State) -> None:
    locator = getattr(state, "geo", None)
    if locator is not None:
        locator.reload()
    elif state.cfg.geo.database:
        state.geo = geo.open_locator(state.cfg.geo.database)
