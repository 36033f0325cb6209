"""The life cycle of one running server: its stop request, scheduled restart/shutdown and the
systemd notifier (docs/operations.md "Restarting, stopping, reloading").

One :class:`Lifecycle` belongs to each :class:`objects.state.State` (``state.lifecycle``); the
procedures that drive it are in :mod:`services.stop`, :mod:`services.shutdown`,
:mod:`services.signals` and :mod:`services.readiness`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from helpers.systemd import Notifier


class Lifecycle:
    """Stop request, restart flags, scheduled timers, settings-reload lock and systemd notifier.

    * ``stop_requested``: set once a stop (or restart) was asked for;
    * ``restart``: re-execute after the stop instead of exiting; ``reexec``: set by the end of
      the shutdown when the process should re-execute itself;
    * ``restart_sent``: every client already got 86 (a scheduled shutdown): no grace period;
    * ``force``: a second stop request skips what is left of the grace period;
    * ``notify``: the stop tells clients to reconnect and logs them out (a maintenance stop);
      False: it keeps every session (services/handover.py, docs/operations.md "Deploys
      without disconnects");
    * ``scheduled``: the timers of a scheduled restart/shutdown (``asyncio.TimerHandle``);
    * ``ticker``: the systemd watchdog/status ``tornado.ioloop.PeriodicCallback`` or None;
    * ``hard_exit``: the timer that ends a stop that hangs (``threading.Timer``) or None.
    """

    def __init__(self) -> None:
        self.stop_requested = asyncio.Event()
        self.restart = False
        self.reexec = False
        self.restart_sent = False
        self.force = False
        self.notify = True
        self.reason = ""
        self.scheduled: list[asyncio.TimerHandle] = []
        self.reload_lock = asyncio.Lock()
        self.notifier = Notifier()
        self.ticker: Any = None
        self.last_status = ""
        self.hard_exit: threading.Timer | None = None

    def close(self) -> None:
        """Cancel the scheduled timers, stop the ticker and close the notifier (idempotent)."""
        for handle in self.scheduled:
            handle.cancel()
        self.scheduled = []
        if self.ticker is not None:
            self.ticker.stop()
            self.ticker = None
        self.notifier.close()
