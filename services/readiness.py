"""systemd readiness, watchdog and status (``Type=notify``; docs/operations.md). The
notifier itself is ``state.lifecycle.notifier`` (:class:`helpers.systemd.Notifier`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import tornado.ioloop

from helpers.systemd import watchdog_interval
from services.status import status_line

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.system")

#: seconds between two status updates to systemd when there is no watchdog
STATUS_INTERVAL = 10.0


def started(state: State, ready: bool = True) -> None:
    """Tell systemd the server accepts clients (``READY=1``) and start the timer that sends
    ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2`` and the status line (integration with
    ``Type=notify``; a no-op without ``NOTIFY_SOCKET``). ``ready`` False: a process started by
    a hand-over, whose ``READY=1`` the old process sends with ``MAINPID=``. The timer is
    ``state.lifecycle.ticker``, stopped by the shutdown."""
    lc = state.lifecycle
    if not lc.notifier.enabled:
        return
    lc.last_status = status_line(state)
    if ready:
        lc.notifier.ready(lc.last_status)
    interval = watchdog_interval()
    watchdog = interval is not None
    period = interval / 2 if watchdog else STATUS_INTERVAL

    def tick() -> None:
        status = status_line(state)
        if watchdog:
            lc.notifier.watchdog(status)
        elif status != lc.last_status:
            lc.notifier.status(status)
        lc.last_status = status

    lc.ticker = tornado.ioloop.PeriodicCallback(tick, period * 1000)
    lc.ticker.start()
    log.info("systemd notification on%s", f", watchdog every {period:g} s" if watchdog else "")
