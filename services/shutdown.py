"""The stop itself, after a stop request (:mod:`services.stop`): grace period, clean-up, pools,
the hard-exit timer and the re-exec of a restart (docs/operations.md, docs/rules.md §7.5–7.7).

``pep.py`` runs :func:`shutdown` once :func:`services.stop.wait_for_stop` returns (when the
sessions are not kept); it refuses logins at once, tells every client to reconnect (86
Restart) unless a scheduled shutdown already did, keeps serving polls until every client has
fetched that packet or ``[server] shutdown_grace`` seconds passed, then stops listening, stops
the services, logs every session out (so their ``peppy:sessions:*`` entries go), waits for the
background writes, sets ``ripple:online_users`` to 0 and closes the pools. The whole stop is
bounded: a process still alive ``shutdown_grace + CLEANUP_TIMEOUT + 5`` seconds after the
request exits hard with code 1. When a restart was asked for, ``state.lifecycle.reexec`` is
true afterwards and ``pep.py`` calls :func:`reexec`. The stop that keeps the sessions
(:mod:`services.handover`) uses :func:`arm_hard_exit`, :func:`logout_and_close` and
:func:`close_pools` from here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from helpers import codec
from services import session

if TYPE_CHECKING:
    from objects.lifecycle import Lifecycle
    from objects.state import State

log = logging.getLogger("pep.system")

#: sent with the restart packet when the process is stopped by a signal (SIGTERM, SIGUSR2)
SHUTDOWN_NOTICE = "Bancho is restarting. You will be reconnected in a few seconds."
#: seconds allowed for the clean-up after the grace period (listener, services, logouts,
#: background writes, pools) before the process gives up waiting and exits
CLEANUP_TIMEOUT = 10.0


async def shutdown(state: State, server: Any, grace: float | None = None, hard_exit: bool = True) -> int:
    """Stop the server cleanly after a stop request (module docstring); returns the exit code 0.

    ``server`` is the ``tornado.httpserver.HTTPServer`` (or None); ``state.services`` are
    stopped in reverse order; ``grace`` (seconds) overrides ``[server] shutdown_grace``.
    ``hard_exit`` arms the timer that ends the *process* with code 1 if the stop hangs; pass
    False when calling this inside a process that must survive (tests). Afterwards
    ``state.lifecycle.reexec`` tells whether the caller should :func:`reexec`.
    """
    lc = state.lifecycle
    cfg = state.cfg.server
    grace = cfg.shutdown_grace if grace is None else max(0.0, grace)
    if hard_exit:
        arm_hard_exit(lc, grace + CLEANUP_TIMEOUT + 5)
    for handle in lc.scheduled:
        handle.cancel()
    state.restarting = True
    if lc.restart:
        lc.notifier.reloading("restarting")
    else:
        lc.notifier.stopping("stopping")
    if not lc.restart_sent:
        state.tokens.broadcast(codec.notification(SHUTDOWN_NOTICE) + codec.restart(int(cfg.reconnect_delay * 1000)))
        lc.restart_sent = True
        waited = await _grace(state, lc, grace)
        log.info("restart packet delivered to every session after %.2f s" if waited is not None
                 else "grace period of %.2f s over", grace if waited is None else waited)
    try:
        await asyncio.wait_for(_cleanup(state, server), CLEANUP_TIMEOUT)
    except asyncio.TimeoutError:
        log.error("clean-up did not finish within %g s; exiting anyway", CLEANUP_TIMEOUT)
    lc.reexec = lc.restart
    lc.close()
    log.info("stopped%s", "; re-executing" if lc.restart else "")
    return 0


async def _grace(state: State, lc: Lifecycle, grace: float) -> float | None:
    """Serve polls until no session has unread packets or ``grace`` s passed; returns the time
    it took when everyone got their packets, None when the grace period ran out."""
    start = time.monotonic()
    deadline = start + grace
    while True:
        if not any(t.queue for t in state.tokens if not t.is_bot):
            return time.monotonic() - start
        if lc.force or time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)


async def _cleanup(state: State, server: Any) -> None:
    if server is not None:
        server.stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), 2)
        except asyncio.TimeoutError:
            log.warning("some HTTP connections did not close within 2 s")
    lc = state.lifecycle
    if lc.ticker is not None:
        lc.ticker.stop()
        lc.ticker = None
    for service in reversed(state.services):
        try:
            await asyncio.wait_for(service.stop(), 5)
        except Exception:
            log.exception("stopping %s failed", type(service).__name__)
    # twice: a login that was past its checks when the stop began may add a session meanwhile
    in_cluster = state.cluster is not None and bool(state.cluster.nodes)
    for _ in range(2):
        for token in state.tokens:
            # the sessions of the other nodes of a cluster stay theirs (docs/cluster.md): only
            # this node's are logged out (their peppy:sessions addresses are theirs too)
            if not token.is_bot and token.node is None:
                session.logout(state, token, broadcast=False)
        if state.bot is not None and not in_cluster:  # the others count their bot as this one did
            state.tokens.remove(state.bot)
        state.kicked.clear()
        await asyncio.sleep(0)  # lets the coalesced online-count update start
        await state.drain_tasks()
    # a node leaving a cluster with live nodes leaves the world's count to them (its own
    # logouts above already wrote the world without this node's users)
    if not in_cluster:
        try:
            await state.redis.set_online_users(0)
        except Exception as exc:
            log.warning("could not reset the online count: %s", exc)
    await close_pools(state)


async def close_pools(state: State) -> None:
    """Close Redis, the MySQL pool, the thread pools and the GeoIP reader (end of every stop,
    also of one that keeps the sessions: services/handover.py). Failures to close Redis are
    logged, not raised."""
    try:
        await state.redis.close()
    except Exception as exc:
        log.warning("closing Redis failed: %s", exc)
    state.db.close()
    state.cpu_pool.shutdown(wait=False)
    state.io_pool.shutdown(wait=False)
    locator = getattr(state, "geo", None)
    if locator is not None:
        locator.close()


async def logout_and_close(state: State) -> None:
    """The end of a stop whose snapshot could not be written: log every session out, reset the
    online count, close the pools (services/handover.py)."""
    await _cleanup(state, None)


def arm_hard_exit(lc: Lifecycle, seconds: float) -> None:
    """Exit the process with code 1 after ``seconds`` whatever happens (a stuck MySQL call, a
    hung thread); a daemon ``threading.Timer`` kept as ``lc.hard_exit``. Armed once: a second
    call is a no-op. Used by :func:`shutdown` and by the stop that keeps sessions
    (services/handover.py)."""
    if lc.hard_exit is not None:
        return

    def fire() -> None:
        log.error("shutdown took longer than %g s; exiting hard", seconds)
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                pass
        os._exit(1)

    timer = lc.hard_exit = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def reexec(lc: Lifecycle) -> None:
    """Replace this process by a fresh ``pep.py`` with the same interpreter, options and
    arguments (same pid, so systemd keeps tracking it); after a :func:`shutdown` that left
    ``lc.reexec`` set. Does not return."""
    if lc.hard_exit is not None:
        lc.hard_exit.cancel()
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    args = list(getattr(sys, "orig_argv", ())[1:]) or list(sys.argv)
    os.execv(sys.executable, [sys.executable] + args)
