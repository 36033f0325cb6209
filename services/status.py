"""The one-line status of a running server, shown by ``systemctl status`` (systemd ``STATUS=``)
and refreshed by the stop, maintenance and reload procedures (docs/operations.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State


def status_line(state: State) -> str:
    """One line for ``systemctl status``: users online (bot excluded) and matches, plus
    ``maintenance`` / ``restarting`` when they apply; e.g. ``"3 online, 1 matches, maintenance"``."""
    bot_id = state.bot.user_id if state.bot is not None else None
    online = sum(1 for uid in state.tokens.online_user_ids() if uid != bot_id)
    line = f"{online} online, {len(getattr(state, 'matches', ()))} matches"
    if state.settings.maintenance:
        line += ", maintenance"
    if state.restarting:
        line += ", restarting"
    return line
