"""The process signals of a running server (docs/operations.md "Restarting, stopping,
reloading"): SIGTERM/SIGINT stop, SIGUSR1 maintenance stop, SIGUSR2 restart, SIGHUP reload."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from services.reload import reload_settings
from services.status import status_line
from services.stop import request_stop

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.system")


def install_signal_handlers(state: State) -> None:
    """SIGTERM/SIGINT: stop (keeping the sessions for the next start when ``[sessions]
    handover`` is on); SIGUSR1: maintenance stop (clients are told); SIGUSR2: restart in place
    (hand-over to the new code, or re-exec); SIGHUP: reload settings. Must be called from the
    running event loop (``loop.add_signal_handler``; Unix only)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, request_stop, state, False, "SIGUSR1", True)
    loop.add_signal_handler(signal.SIGTERM, request_stop, state, False, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, request_stop, state, False, "SIGINT")
    loop.add_signal_handler(signal.SIGUSR2, request_stop, state, True, "SIGUSR2")
    loop.add_signal_handler(signal.SIGHUP, _on_reload_signal, state)


def _on_reload_signal(state: State) -> None:
    lc = state.lifecycle
    log.info("SIGHUP: reloading settings")
    lc.notifier.reloading("reloading settings")

    async def run() -> None:
        try:
            await reload_settings(state)
        finally:
            lc.notifier.ready(status_line(state))

    state.spawn(run(), "settings reload (SIGHUP)")
