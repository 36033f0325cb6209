"""Server-wide operations used by the bot, the API, pub/sub and signals: shutdown/restart,
maintenance, settings reload.

Owned by the operations issue. Signatures are fixed; callers elsewhere rely on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State

RESTART_NOTICE = ("We are performing some maintenance. Bancho will restart in {seconds} seconds. "
                  "Thank you for your patience.")


def schedule_shutdown(state: State, restart: bool, message: str | None = None,
                      send_after: float = 5, delay: float = 20) -> None:
    """Schedule a restart (re-exec) or shutdown (integration.md §5.5).

    ``message`` is broadcast at once as a notification; new logins are refused from now on;
    after ``send_after`` seconds every client gets 86 Restart(``delay * 2 * 1000`` ms); after
    ``send_after + delay`` seconds the process stops (and restarts itself when ``restart``).
    """
    raise NotImplementedError("operations issue")


async def set_maintenance(state: State, on: bool) -> None:
    """Turn maintenance mode on/off: write ``bancho_settings``, notify, refuse non-admins."""
    raise NotImplementedError("operations issue")


async def reload_settings(state: State) -> None:
    """Reload bancho settings, the menu icon and new channels from MySQL, without dropping anyone."""
    raise NotImplementedError("operations issue")
