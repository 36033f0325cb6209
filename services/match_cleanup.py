"""The multiplayer background loop: empty and stale matches, stuck rounds (docs/rules.md §1.3
"Empty and stale matches", §1.8 [OPT] timeouts; docs/rules.md §7.1 "Multiplayer cleanup").

:class:`MatchJanitor` is a service (``state.services``, built by ``pep.py``). Every second it
checks the running rounds (forced ALL_PLAYERS_LOADED after ``load_timeout`` s, forced finish
``complete_timeout`` s after the first MATCH_COMPLETE, aborted ``round_timeout`` s after the
start); every ``cleanup_interval`` s it runs :func:`sweep`. Settings come from
``[multiplayer]`` (``state.cfg.multiplayer``; defaults in
:class:`helpers.config.MultiplayerConfig`). An error in one pass is logged; the loop goes on.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import tornado.ioloop

from services import multiplayer

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.match_cleanup")

TICK = 1.0  # s between two passes over the running rounds

def sweep(state: State, now: float | None = None) -> int:
    """Dispose every match nobody has sat in for ``empty_match_age`` seconds; returns how many.

    Also repairs what should never happen: seats whose token logged out are vacated through
    the normal leave (so rounds and hosts are re-evaluated). Disposing removes any remaining
    members and observers cleanly (:func:`services.multiplayer.dispose`).
    """
    now = time.monotonic() if now is None else now
    age = state.cfg.multiplayer.empty_match_age
    disposed = 0
    for match in state.matches:
        for index, slot in enumerate(match.slots):
            token = slot.token
            if token is not None and (token.logged_out or token.match_id != match.id):
                log.warning("match %d: vacating the seat of departed %s", match.id, token.username)
                multiplayer.vacate(state, match, index)
            if match.disposed:
                break
        if match.disposed:
            disposed += 1
            continue
        for key, token in tuple(match.observers.items()):
            if token.logged_out:
                del match.observers[key]
        if match.occupied_count() == 0:
            if match.empty_since is None:
                match.empty_since = now
            if now - match.empty_since >= age:
                log.info("match %d: empty for %.0f s, disposing", match.id, now - match.empty_since)
                multiplayer.dispose(state, match)
                disposed += 1
    return disposed


def check_rounds(state: State, now: float | None = None) -> None:
    """Apply the round timeouts to every running round."""
    now = time.monotonic() if now is None else now
    for match in state.matches:
        if match.in_progress:
            multiplayer.check_timeouts(state, match, now)


def tick(state: State, last_sweep: list[float], now: float | None = None) -> None:
    """One pass: round timeouts always, the sweep when ``cleanup_interval`` s have passed since
    ``last_sweep[0]`` (updated in place)."""
    now = time.monotonic() if now is None else now
    try:
        check_rounds(state, now)
    except Exception:
        log.exception("round timeout check failed")
    if now - last_sweep[0] >= state.cfg.multiplayer.cleanup_interval:
        last_sweep[0] = now
        try:
            sweep(state, now)
        except Exception:
            log.exception("match sweep failed")


class MatchJanitor:
    """The multiplayer loop of one state: :func:`tick` every :data:`TICK` seconds;
    ``last_sweep`` is the monotonic time of the last :func:`sweep` (a one-element list)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.last_sweep = [time.monotonic()]
        self.callback: tornado.ioloop.PeriodicCallback | None = None

    async def start(self) -> None:
        """Start the loop (on the running event loop)."""
        self.last_sweep = [time.monotonic()]
        self.callback = tornado.ioloop.PeriodicCallback(lambda: tick(self.state, self.last_sweep), TICK * 1000)
        self.callback.start()

    async def stop(self) -> None:
        """Stop the loop."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
