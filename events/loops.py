"""The foundation's background loop: the session timeout sweep (integration.md §5.1).

A service module: :func:`start` and :func:`stop` are called by ``pep.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tornado.ioloop

from events import session

if TYPE_CHECKING:
    from objects.state import State

_sweepers: dict[int, tornado.ioloop.PeriodicCallback] = {}


async def start(state: State) -> None:
    """Sweep idle sessions every ``[sessions] timeout_check`` seconds."""
    sweeper = tornado.ioloop.PeriodicCallback(lambda: session.sweep_timeouts(state),
                                              state.cfg.sessions.timeout_check * 1000)
    sweeper.start()
    _sweepers[id(state)] = sweeper


async def stop(state: State) -> None:
    sweeper = _sweepers.pop(id(state), None)
    if sweeper is not None:
        sweeper.stop()
