"""Redis: the keys the realtime server maintains (docs/integration.md §3) through redis-py's asyncio client.

Every key and pub/sub channel name goes through :meth:`Redis.key`, which puts the configured
``[redis] key_prefix`` in front (empty in production, so the names are exactly the stack's;
tests set a unique prefix so they never touch another server's keys).

Nothing here is called on the poll path: callers schedule these coroutines as background tasks.
Errors are logged and swallowed where the spec treats Redis as best-effort (ranks, counters);
they surface as :class:`redis.exceptions.RedisError` otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from helpers.config import RedisConfig

log = logging.getLogger("pep.redis")

VERSION = "3.1.0-pep"


class Redis:
    """The shared Redis connection and the stack's keys."""

    def __init__(self, cfg: RedisConfig) -> None:
        self.cfg = cfg
        self.prefix = cfg.key_prefix
        self.client = aioredis.Redis(
            host=cfg.host, port=cfg.port, db=cfg.db, password=cfg.password or None,
            decode_responses=True, socket_connect_timeout=cfg.connect_timeout, socket_timeout=cfg.timeout,
            health_check_interval=30,
        )
        # set by the health check (services/loops.py) while Redis does not answer: best-effort
        # reads (ranks) are skipped at once instead of waiting for a timeout each
        self.down = False
        # writes of ripple:online_users and peppy:sessions:* run in the order they were
        # scheduled (FIFO lock), so an older value can never land after a newer one
        self._online_lock = asyncio.Lock()
        self._sessions_lock = asyncio.Lock()

    def key(self, name: str) -> str:
        """The real key (or channel) name for the stack name ``name``."""
        return self.prefix + name

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def startup(self, wipe: bool = True) -> None:
        """Boot clean-up (docs/rules.md §7.7): online count 0, wipe ``peppy:*``, set the version.
        ``wipe=False`` (a cluster node joining live nodes, docs/cluster.md): only the version."""
        if not wipe:
            await self.client.set(self.key("peppy:version"), VERSION)
            return
        await self.client.set(self.key("ripple:online_users"), 0)
        pattern = self.key("peppy:*")
        batch: list[str] = []
        async for name in self.client.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await self.client.delete(*batch)
                batch.clear()
        if batch:
            await self.client.delete(*batch)
        await self.client.set(self.key("peppy:version"), VERSION)

    async def set_online_users(self, count: int) -> None:
        """``ripple:online_users`` = ``count`` (decimal string; bot included)."""
        async with self._online_lock:
            await self.client.set(self.key("ripple:online_users"), count)

    async def add_session_ip(self, user_id: int, ip: str) -> None:
        """Add ``ip`` to ``peppy:sessions:<id>`` (score servers accept submissions from it)."""
        if ip:
            async with self._sessions_lock:
                await self.client.sadd(self.key(f"peppy:sessions:{user_id}"), ip)

    async def remove_session_ip(self, user_id: int, ip: str) -> None:
        """Remove ``ip`` from ``peppy:sessions:<id>`` (the session ended)."""
        if ip:
            async with self._sessions_lock:
                await self.client.srem(self.key(f"peppy:sessions:{user_id}"), ip)

    async def rank(self, leaderboard: str, user_id: int) -> int:
        """Global rank (1-based) of ``user_id`` in sorted set ``leaderboard``; 0 when absent, on
        error, past ``[redis] timeout`` seconds, or at once while the health check finds Redis
        down (a login never waits for a hung Redis, docs/security.md)."""
        if self.down:
            return 0
        try:
            # asyncio.timeout, not wait_for: no task of its own per lookup (one per login)
            async with asyncio.timeout(self.cfg.timeout):
                index = await self.client.zrevrank(self.key(leaderboard), str(user_id))
        except TimeoutError:
            log.warning("rank lookup in %s timed out after %.1f s", leaderboard, self.cfg.timeout)
            return 0
        except RedisError as exc:
            log.warning("rank lookup in %s failed: %s", leaderboard, exc)
            return 0
        return 0 if index is None else int(index) + 1

    async def publish(self, channel: str, message: str) -> int:
        """Publish ``message`` on the stack channel ``channel`` (prefixed); returns receivers."""
        return await self.client.publish(self.key(channel), message)

    # ---------------------------------------------------------------- web-stack helpers
    def pubsub_client(self, client_name: str) -> aioredis.Redis:
        """A new client for a pub/sub listener: raw bytes, no read timeout (messages may be
        hours apart), TCP keep-alive, and ``CLIENT SETNAME client_name`` on every connect."""
        cfg = self.cfg
        return aioredis.Redis(
            host=cfg.host, port=cfg.port, db=cfg.db, password=cfg.password or None,
            decode_responses=False, socket_connect_timeout=cfg.connect_timeout, socket_timeout=None,
            socket_keepalive=True, health_check_interval=30, client_name=client_name,
        )

    async def resync(self, online: int, sessions: Iterable[tuple[int, str]]) -> None:
        """Rewrite the keys a Redis restart may have lost (docs/integration.md §3):
        ``ripple:online_users`` = ``online``, ``peppy:version``, and ``peppy:sessions:<id>``
        for every ``(user id, ip)`` of a live session."""
        await self.set_online_users(online)
        await self.client.set(self.key("peppy:version"), VERSION)
        async with self._sessions_lock:
            for user_id, ip in sessions:
                if ip:
                    await self.client.sadd(self.key(f"peppy:sessions:{user_id}"), ip)

    async def remove_from_sorted_sets(self, names: Iterable[str], member: str) -> None:
        """``ZREM member`` from every sorted set in ``names`` (stack names), in one pipeline."""
        names = list(names)
        if not names:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zrem(self.key(name), member)
            await pipe.execute()

    async def set_pending_rename(self, user_id: int, new_name: str) -> None:
        """``ripple:change_username_pending:<id>`` = ``new_name`` (rename deferred while playing)."""
        await self.client.set(self.key(f"ripple:change_username_pending:{user_id}"), new_name)

    async def forget_username(self, user_id: int, *safe_names: str) -> None:
        """After a rename: delete ``ripple:userid_cache:<safe>`` of each name and the pending key."""
        names = [self.key(f"ripple:userid_cache:{s}") for s in safe_names if s]
        names.append(self.key(f"ripple:change_username_pending:{user_id}"))
        await self.client.delete(*names)

    async def republish_pending_rename(self, user_id: int) -> bool:
        """At logout (docs/rules.md §7.2, the last step of a logout): when ``ripple:change_username_pending:<id>``
        exists, publish ``peppy:change_username`` ``{"userID", "newUsername"}``; returns whether
        it did."""
        new_name = await self.client.get(self.key(f"ripple:change_username_pending:{user_id}"))
        if not new_name:
            return False
        await self.publish("peppy:change_username", json.dumps({"userID": user_id, "newUsername": new_name}))
        return True
