"""The foundation's background loops (docs/rules.md §7.1): the session timeout sweep, and the
Redis health check that rewrites the server's Redis keys after an outage.

:class:`Loops` is a service (``state.services``, built by ``pep.py``).
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

async def check_redis(state: State) -> None:
    """Ping Redis; when it answers again after failing, rewrite what this server keeps there:
    ``ripple:online_users`` and every session IP in ``peppy:sessions:<id>`` (a Redis restart
    without persistence loses them)."""
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
        await session.resync_redis(state)
        state.redis_down = False
        log.info("Redis is back: online count and sessions rewritten")


class Loops:
    """The timeout sweep (every ``[sessions] timeout_check`` seconds) and the Redis health
    check (every :data:`REDIS_CHECK_INTERVAL` seconds) of one state."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.callbacks: list[tornado.ioloop.PeriodicCallback] = []

    async def start(self) -> None:
        """Start both loops (on the running event loop)."""
        state = self.state
        self.callbacks = [
            tornado.ioloop.PeriodicCallback(lambda: session.sweep_timeouts(state),
                                            state.cfg.sessions.timeout_check * 1000),
            tornado.ioloop.PeriodicCallback(lambda: state.spawn(check_redis(state), "Redis health check"),
                                            REDIS_CHECK_INTERVAL * 1000),
        ]
        for callback in self.callbacks:
            callback.start()

    async def stop(self) -> None:
        """Stop the loops started by :meth:`start`."""
        for callback in self.callbacks:
            callback.stop()
        self.callbacks = []
