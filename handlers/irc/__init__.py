"""The IRC gateway: IRC clients (referee tools, chat bots, phones) chat with the game (docs/irc.md).

A background service of ``pep.py`` (``SERVICES``): :func:`start` builds the
:class:`~handlers.irc.gateway.Gateway`, hangs it off ``state.irc`` and listens on
``[irc] host``:``[irc] port``; :func:`stop` closes every IRC connection and stops listening.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.irc")


async def start(state: State) -> None:
    """Start the gateway when ``[irc] enabled``; a port that cannot be bound is logged as an
    error and the server runs without IRC (docs/irc.md, "Running it")."""
    if not state.cfg.irc.enabled:
        return
    from handlers.irc.gateway import Gateway

    gateway = Gateway(state)
    try:
        gateway.start()
    except OSError as exc:
        log.error("IRC gateway: cannot listen on %s:%d: %s; running without IRC",
                  state.cfg.irc.host, state.cfg.irc.port, exc)
        return
    state.irc = gateway
    state.chat_listeners.append(gateway)


async def stop(state: State) -> None:
    """Close every IRC connection (each user is logged out) and stop listening."""
    gateway = state.irc
    if gateway is None:
        return
    gateway.stop()
    if gateway in state.chat_listeners:
        state.chat_listeners.remove(gateway)
    state.irc = None
