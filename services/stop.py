"""Stop requests: a signal, the end of a scheduled restart/shutdown, or a second request that
cuts the grace period short (docs/operations.md "Restarting, stopping, reloading",
docs/rules.md §7.5).

A request only sets ``state.lifecycle`` (the flags of :class:`objects.lifecycle.Lifecycle`);
``pep.py`` waits in :func:`wait_for_stop` and then runs the stop itself
(:func:`services.shutdown.shutdown`, or :func:`services.handover.stop_keeping_sessions` when
the sessions are kept).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from helpers import codec
from services.status import status_line

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.system")

RESTART_NOTICE = ("We are performing some maintenance. Bancho will restart in {seconds} seconds. "
                  "Thank you for your patience.")
#: longest send_after / delay accepted by schedule_shutdown, seconds
MAX_SCHEDULE = 3600.0


def request_stop(state: State, restart: bool = False, reason: str = "", notify: bool | None = None) -> None:
    """Ask the server to stop (and restart when ``restart``); ``reason`` is logged.

    ``notify`` True: clients are told to reconnect and logged out (a maintenance stop; a
    restart re-executes the process: :func:`services.shutdown.shutdown`). False: the sessions
    are kept (SIGTERM writes a snapshot for the next start, SIGUSR2 hands them to a new
    process: :mod:`services.handover`, chosen by ``pep.py``). None: keep them when
    ``[sessions] handover`` is on. A second request while a stop is under way skips the rest
    of the grace period (``lifecycle.force``).
    """
    lc = state.lifecycle
    if lc.stop_requested.is_set():
        if not lc.force:
            lc.force = True
            log.warning("%s: already stopping; skipping the rest of the grace period", reason or "stop request")
        return
    lc.restart = restart
    lc.reason = reason
    # a cluster node does not keep sessions over a restart (docs/cluster.md, "Failure")
    keep = state.cfg.sessions.handover and not state.cfg.cluster.node_id
    lc.notify = (not keep) if notify is None else notify
    log.info("%s: %s requested", reason or "stop request", "restart" if restart else "shutdown")
    lc.stop_requested.set()


async def wait_for_stop(state: State) -> None:
    """Return when a stop has been requested."""
    await state.lifecycle.stop_requested.wait()


def schedule_shutdown(state: State, restart: bool, message: str | None = None,
                      send_after: float = 5, delay: float = 20) -> None:
    """Schedule a restart (re-exec) or shutdown (docs/rules.md §7.5).

    ``message`` is broadcast at once as a notification; new logins are refused from now on;
    after ``send_after`` seconds every client gets 86 Restart(``delay * 2 * 1000`` ms); after
    ``send_after + delay`` seconds the process stops (and restarts itself when ``restart``).
    Shutdown exits with code 0 (a supervisor with ``Restart=on-failure`` leaves it stopped;
    docs/operations.md). Times are clamped to 0..3600 s (non-numbers count as the defaults).
    A second call while one is pending, or during a stop, is ignored (logged). Must be called
    from the event loop.
    """
    lc = state.lifecycle
    if lc.scheduled or lc.stop_requested.is_set():
        log.warning("a %s was asked for while one is already under way; ignored",
                    "restart" if restart else "shutdown")
        return
    send_after = _seconds(send_after, 5)
    delay = _seconds(delay, 20)
    if message:
        state.tokens.broadcast(codec.notification(str(message)))
    state.restarting = True
    loop = asyncio.get_running_loop()
    lc.scheduled = [
        loop.call_later(send_after, _send_restart_packet, state, delay),
        loop.call_later(send_after + delay, request_stop, state, restart,
                        "scheduled " + ("restart" if restart else "shutdown"), True),
    ]
    lc.notifier.status(status_line(state))
    log.info("%s scheduled: restart packet in %g s, %s in %g s", "restart" if restart else "shutdown",
             send_after, "re-exec" if restart else "exit", send_after + delay)


def _seconds(value: Any, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    if math.isnan(value):
        return default
    return min(max(value, 0.0), MAX_SCHEDULE)


def _send_restart_packet(state: State, delay: float) -> None:
    state.tokens.broadcast(codec.restart(int(delay * 2 * 1000)))
    state.lifecycle.restart_sent = True
    log.info("restart packet (%d ms) sent to %d session(s)", int(delay * 2 * 1000), len(state.tokens))
