"""The live state of the server: tokens, channels, streams, settings, and the outside world.

One :class:`State` is built at start-up and handed to every handler and event, so tests can
build their own without patching globals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Coroutine

from common.ripple import Repository, Settings
from helpers.config import Config
from objects.channel import ChannelList
from objects.match import MatchList
from objects.ratelimit import FailureLimiter
from objects.stream import Stream
from objects.token import Token as _Token
from objects.tokenlist import TokenList

if TYPE_CHECKING:
    from common.db import Database
    from common.redis import Redis
    from objects.token import Token

log = logging.getLogger("pep.state")


class ChatListener:
    """What a chat front end other than the game client (the IRC gateway, docs/irc.md) hears of
    the chat world. Every method is called synchronously, after the change is made in memory,
    and must not raise or await; the defaults do nothing.

    Sources: :mod:`services.chat` (``channel_message``, ``private_message``) and
    :mod:`services.session` (``joined``, ``parted``, ``logged_out``).
    """

    def channel_message(self, channel: Any, sender: Token, text: str) -> None:
        """``sender`` said ``text`` in ``channel`` (an :class:`objects.channel.Channel`); the
        game members already got the packet."""

    def private_message(self, sender: Token, target: Token, text: str) -> None:
        """``sender`` sent ``text`` to ``target`` (the user's main token, already queued)."""

    def joined(self, channel: Any, token: Token) -> None:
        """``token`` became a member of ``channel``."""

    def parted(self, channel: Any, token: Token, kick: bool) -> None:
        """``token`` left ``channel`` (``kick``: it was removed by the server)."""

    def logged_out(self, token: Token) -> None:
        """``token`` is logging out; called while it is still in its channels."""


class MatchListener:
    """What a listener hears of multiplayer matches (the match-event lines of
    :mod:`services.match_events`). Called synchronously from :mod:`services.multiplayer`; must
    not raise or await; the defaults do nothing."""

    def match_changed(self, match: Any) -> None:
        """Anything about ``match`` changed (called where the update is sent to everyone)."""

    def round_finished(self, match: Any) -> None:
        """The round of ``match`` is over; its slots still hold this round's scores."""


class State:
    """Everything the server knows in memory, plus handles on MySQL and Redis."""

    def __init__(self, cfg: Config, db: Database | None = None, redis: Redis | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.redis = redis
        self.repo = Repository(db, redis, cfg.stack.flavour) if db is not None else None
        self.tokens = TokenList(on_change=self._online_changed)
        self.channels = ChannelList()
        self.lobby = Stream("lobby")
        self.matches = MatchList()  # multiplayer matches by id (services.multiplayer)
        self.settings = Settings()
        self.bot: Token | None = None
        # chat front ends besides the game client (the IRC gateway); see ChatListener
        self.chat_listeners: list[ChatListener] = []
        self.match_listeners: list[MatchListener] = []  # services.match_events
        self.irc: Any = None  # the IRC gateway (handlers/irc) while it runs, else None
        # tokens removed by a kick whose final packets are delivered on their next poll:
        # token string -> (token, monotonic time of the kick)
        self.kicked: dict[str, tuple[Token, float]] = {}
        # user id -> (password md5, stored bcrypt hash) of the last successful check
        self.password_cache: dict[int, tuple[str, str]] = {}
        # /api/v1/verifiedStatus: user id string -> 1 verified, 0 multi-account (integration.md §2.2)
        self.verified: dict[str, int] = {}
        self.restarting = False
        self.geo = None  # helpers.geo locator, set at start-up when [geo] database is configured
        self.redis_down = False  # set by the Redis health check (services/loops.py)
        limits = cfg.limits
        self.login_failures_ip = FailureLimiter(limits.login_failures_ip, limits.login_failure_window)
        self.login_failures_account = FailureLimiter(limits.login_failures_account, limits.login_failure_window)
        _Token.max_queue = limits.max_queue
        self.started = time.time()
        # bcrypt releases the GIL: one thread per core runs checks in parallel; more threads
        # would only take the core away from the event loop (polls) during a login storm
        self.cpu_pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                                             thread_name_prefix="bcrypt")
        self._tasks: set[asyncio.Future[Any]] = set()
        self._online_dirty = False

    # ---------------------------------------------------------------- background work
    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Future[Any] | None:
        """Run ``coro`` in the background; its exception is logged (with ``what``), never raised.

        Returns the task, or None (and closes ``coro``) when no event loop is running.
        """
        try:
            task = asyncio.ensure_future(coro)
        except RuntimeError:
            coro.close()
            log.warning("no event loop for %s", what)
            return None
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, what))
        return task

    def _task_done(self, task: asyncio.Future[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s failed: %s", what, exc, exc_info=exc)

    async def drain_tasks(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the background tasks still running, e.g. at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # ---------------------------------------------------------------- online count
    def _online_changed(self) -> None:
        if self.redis is None or self._online_dirty:
            return
        self._online_dirty = True
        try:
            asyncio.get_running_loop().call_soon(self._sync_online)
        except RuntimeError:
            self._online_dirty = False

    def _sync_online(self) -> None:
        self._online_dirty = False
        if self.redis is not None:
            self.spawn(self.redis.set_online_users(len(self.tokens)), "online users update")
