"""The foundation's background loops (integration.md §5.1): the session timeout sweep, and the
Redis health check that rewrites the server's Redis keys after an outage.

A service module: :func:`start` and :func:`stop` are called by ``pep.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import tornado.ioloop
from redis.exceptions import RedisError

from services import session
from helpers import metrics

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.loops")

#: seconds between two Redis health checks
REDIS_CHECK_INTERVAL = 2.0

_loops: dict[int, list[tornado.ioloop.PeriodicCallback]] = {}


async def check_redis(state: State) -> None:
    """Ping Redis; when it answers again after failing, rewrite what this server keeps there:
    ``ripple:online_users`` and every session IP in ``peppy:sessions:<id>`` (a Redis restart
    without persistence loses them)."""
    if state.redis is None:
        return
    try:
        await asyncio.wait_for(state.redis.client.ping(), state.cfg.redis.timeout)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        metrics.redis_error()
        if not state.redis_down:
            log.warning("Redis is unreachable: %s", exc or type(exc).__name__)
        state.redis_down = state.redis.down = True
        return
    if state.redis_down:
        state.redis.down = False
        await resync_redis(state)
        state.redis_down = False
        log.info("Redis is back: online count and sessions rewritten")


async def resync_redis(state: State) -> None:
    """Write the online count, the version and the session IPs of every online token
    (:meth:`common.redis.Redis.resync`, also used by the pub/sub listener after a reconnect)."""
    assert state.redis is not None
    await state.redis.resync(len(state.tokens), [(t.user_id, t.ip) for t in state.tokens if t.ip])


async def start(state: State) -> None:
    """Sweep idle sessions every ``[sessions] timeout_check`` seconds; check Redis every 2 s."""
    sweeper = tornado.ioloop.PeriodicCallback(lambda: session.sweep_timeouts(state),
                                              state.cfg.sessions.timeout_check * 1000)
    health = tornado.ioloop.PeriodicCallback(lambda: state.spawn(check_redis(state), "Redis health check"),
                                             REDIS_CHECK_INTERVAL * 1000)
    sweeper.start()
    health.start()
    _loops[id(state)] = [sweeper, health]


async def stop(state: State) -> None:
    """Stop the loops started by :func:`start`."""
    for loop in _loops.pop(id(state), []):
        loop.stop()
