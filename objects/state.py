"""The live state of the server: tokens, channels, streams, settings, the outside world, and
every long-lived runtime object (life cycle, background services, bot hooks, pools).

One :class:`State` is built by ``pep.py`` and handed to every handler and event. Nothing of the
runtime lives in module globals, so a test builds its own ``State`` (with the real MySQL/Redis
or the small fakes of ``tests/fakes.py``) and gets a server world of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Protocol

from common.ripple import Repository, Settings
from helpers.config import Config
from helpers.metrics import PollCounters
from helpers.netlimits import Throttle
from objects.channel import ChannelList
from objects.lifecycle import Lifecycle
from objects.match import Match, MatchList
from objects.ratelimit import FailureLimiter
from objects.stream import Stream
from objects.tokenlist import TokenList

if TYPE_CHECKING:
    from common.db import Database
    from common.redis import Redis
    from objects.token import Token

log = logging.getLogger("pep.state")

#: ``hook(state, sender, channel_name_or_None, text)``: a message the bot sees (objects.bot)
BotHook = Callable[["State", "Token", "str | None", str], Any]


class Service(Protocol):
    """A background service owned by the state (``state.services``): started after the world is
    loaded, stopped in reverse order at shutdown (services.loops, services.match_cleanup,
    services.pubsub)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Listening(Protocol):
    """What the rest of the server asks of the pub/sub listener (services.pubsub.Listener)."""

    @property
    def listening(self) -> bool: ...


class ChatListener:
    """What a chat front end other than the game client (the IRC gateway, docs/irc.md) hears of
    the chat world. Every method is called synchronously, after the change is made in memory,
    and must not raise or await; the defaults do nothing.

    Sources: :mod:`services.chat` (``channel_message``, ``private_message``),
    :mod:`services.channels` (``joined``, ``parted``) and :mod:`services.session` (``logged_out``).
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
    """Everything the server knows in memory, plus handles on MySQL and Redis.

    ``db`` (:class:`common.db.Database`) and ``redis`` (:class:`common.redis.Redis`) are
    required; tests that do not need the real ones pass the fakes of ``tests/fakes.py``.
    Runtime objects reachable from here: ``lifecycle`` (stop/restart, systemd), ``services``
    (background services, started and stopped by ``pep.py`` and :mod:`services.shutdown`),
    ``listener`` (the pub/sub listener once started), ``bot_hooks`` (who answers the bot's
    messages), ``cpu_pool`` (bcrypt) and ``io_pool`` (blocking HTTP calls of bot commands).
    """

    def __init__(self, cfg: Config, db: Database, redis: Redis) -> None:
        self.cfg = cfg
        self.db = db
        self.redis = redis
        self.repo = Repository(db, redis, cfg.stack.flavour)
        self.lifecycle = Lifecycle()
        self.services: list[Service] = []
        self.listener: Listening | None = None
        self.bot_hooks: list[BotHook] = []
        #: the bot's command table (a services.commands.Registry, set by services.commands.install)
        self.commands: Any = None
        # user ids with a pp request of /np in flight (services.commands.np)
        self.pp_pending: set[int] = set()
        self.tokens = TokenList(on_change=self._online_changed)
        self.channels = ChannelList()
        self.lobby = Stream("lobby")
        self.matches = MatchList()  # multiplayer matches by id (services.multiplayer)
        # matches whose censored update the lobby has not had yet: sent once at the end of
        # the current loop step (services.multiplayer.flush_lobby; docs/security.md)
        self.lobby_pending: dict[int, Match] = {}
        self.settings = Settings()
        self.bot: Token | None = None
        # chat front ends besides the game client (the IRC gateway); see ChatListener
        self.chat_listeners: list[ChatListener] = []
        self.match_listeners: list[MatchListener] = []  # services.match_events
        # the link to the other nodes (services/cluster.py) when [cluster] node_id is set, else
        # None: the single-process server (docs/cluster.md)
        self.cluster: Any = None
        self.irc: Any = None  # the IRC gateway (handlers/irc) while it runs, else None
        self.tcp: Any = None  # the TCP listener of the 2012-2013 builds (handlers/tcp) while it runs
        # tokens removed by a kick whose final packets are delivered on their next poll:
        # token string -> (token, monotonic time of the kick)
        self.kicked: dict[str, tuple[Token, float]] = {}
        # user id -> (password md5, stored bcrypt hash) of the last successful check
        self.password_cache: dict[int, tuple[str, str]] = {}
        # /api/v1/verifiedStatus: user id string -> 1 verified, 0 multi-account (docs/integration.md §5)
        self.verified: dict[str, int] = {}
        self.restarting = False
        self.logins_in_flight = 0  # logins past their first await (a hand-over waits for them)
        self.geo = None  # helpers.geo locator, set at start-up when [geo] database is configured
        self.http_server = None  # helpers.netlimits.GuardedHTTPServer, set by pep.py (metrics read it)
        self.redis_down = False  # set by the Redis health check (services/loops.py)
        limits = cfg.limits
        self.login_failures_ip = FailureLimiter(limits.login_failures_ip, limits.login_failure_window)
        self.login_failures_account = FailureLimiter(limits.login_failures_account, limits.login_failure_window)
        self.started = time.time()
        self.poll_counters = PollCounters()  # poll-path counts for /metrics (helpers/metrics.py)
        # bcrypt releases the GIL: one thread per core runs checks in parallel; more threads
        # would only take the core away from the event loop (polls) during a login storm
        self.cpu_pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                                             thread_name_prefix="bcrypt")
        self.bcrypt_pending = 0  # bcrypt checks queued or running (services/login.py, [limits] bcrypt_queue)
        self.bcrypt_by_ip: dict[str, int] = {}  # the same per client address key ([limits] bcrypt_per_ip)
        # login refusals that come in floods (services/login.py), logged once per 10 s with a count
        login_log = logging.getLogger("pep.login")
        self.login_refusal_logs = {
            reason: Throttle("login refused %d time(s) in the last interval: reason=%s (last ip=%s)",
                             logger=login_log)
            for reason in ("too many failed logins", "bcrypt queue full", "malformed login")
        }
        # blocking HTTP requests of bot commands (the pp API of /np); threads start on first use
        self.io_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ppapi")
        self._tasks: set[asyncio.Future[Any]] = set()
        self._online_dirty = False

    # ---------------------------------------------------------------- background work
    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Future[Any] | None:
        """Run ``coro`` in the background; its exception is logged (with ``what``), never raised.

        Returns the task, or None (and closes ``coro``) when no event loop is running in this
        thread (a loop that is only set, not running, counts as none).
        """
        try:
            # the running loop only: a loop that is set but not running would never run it
            task = asyncio.get_running_loop().create_task(coro)
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

    def background_tasks(self) -> int:
        """How many coroutines started with :meth:`spawn` are still running."""
        return len(self._tasks)

    async def drain_tasks(self, timeout: float = 5.0) -> None:
        """Wait (bounded by ``timeout`` seconds) until no background task of :meth:`spawn` is
        left, including the tasks those tasks spawn and the coalesced online-count write (at
        shutdown, and in tests instead of sleeping)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await asyncio.sleep(0)  # lets call_soon work (the online-count write) spawn its task
            pending = set(self._tasks)
            left = deadline - loop.time()
            if not pending or left <= 0:
                return
            await asyncio.wait(pending, timeout=left)

    # ---------------------------------------------------------------- online count
    def _online_changed(self) -> None:
        if self._online_dirty:
            return
        self._online_dirty = True
        try:
            asyncio.get_running_loop().call_soon(self._sync_online)
        except RuntimeError:
            self._online_dirty = False

    def _sync_online(self) -> None:
        self._online_dirty = False
        self.spawn(self.redis.set_online_users(len(self.tokens)), "online users update")
