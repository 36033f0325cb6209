"""Redis pub/sub: the listener for the stack's ``peppy:*`` channels, and the publishers.

:class:`Listener` is a service (``state.services`` and ``state.listener``, built by ``pep.py``
with the table ``services.pubsub_handlers.SUBSCRIPTIONS``): ``start()`` subscribes, ``stop()``
unsubscribes.

The listener (docs/integration.md §1, with the [FIX]es of the spec):

* one dedicated connection, named ``pep.py-pubsub:<key prefix>`` (``CLIENT SETNAME``) so that
  an operator can find it in ``CLIENT LIST``; every channel name goes through
  :meth:`common.redis.Redis.key` (the ``[redis] key_prefix``);
* messages are handled one at a time, in arrival order, each bounded by
  :data:`HANDLER_TIMEOUT` seconds;
* the payload is checked against the channel's kind before its handler runs: **int** (a
  decimal user id), **json** (an object whose key set equals the expected one exactly; ids may
  be JSON numbers or decimal strings, text fields must be strings) or **literal** (exactly the
  bytes ``reload``). A malformed payload is logged and skipped; a handler that raises is
  logged; neither stops the listener;
* when the connection is lost (Redis restart, ``CLIENT KILL``, network), it reconnects by
  itself with exponential backoff (:data:`BACKOFF_MIN` … :data:`BACKOFF_MAX` seconds, so it
  is subscribed again within a second of Redis being back; one warning per outage), subscribes
  again, and rewrites the keys a restarted Redis may have lost (``ripple:online_users``,
  ``peppy:version``, ``peppy:sessions:*``). Messages published while it was disconnected are
  lost (Redis pub/sub keeps nothing): what they would have changed in MySQL, the privileges
  (bans, restrictions) and silences of the online users, is read again and applied
  (``services.pubsub_handlers.catch_up``, docs/security.md, Hardening II).

The channels and their handlers are passed in by the caller (``pep.py`` passes
``services.pubsub_handlers.SUBSCRIPTIONS``), so this module stays below the handlers in the
layering (docs/architecture.md). The publishers are in :mod:`services.publish`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

from redis.exceptions import RedisError

from helpers import metrics
from services import session

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.pubsub")

#: seconds one message's handler may take before it is abandoned (logged) and the next runs
HANDLER_TIMEOUT = 30.0
#: reconnection backoff bounds, seconds: the listener is back within BACKOFF_MAX of Redis
#: (docs/security.md, Hardening II: with 30 s it came back 15 s late and missed bans)
BACKOFF_MIN = 0.2
BACKOFF_MAX = 1.0
#: largest payload accepted, bytes
MAX_PAYLOAD = 64 * 1024

_INT = re.compile(rb"\s*\+?(\d{1,10})\s*")
_ID_MAX = 2**31 - 1

Handler = Callable[["State", Any], Awaitable[None]]


class PayloadError(ValueError):
    """A pub/sub payload that does not have the shape its channel requires."""


@dataclasses.dataclass(frozen=True)
class Subscription:
    """One subscribed channel.

    ``channel`` is the stack name (``peppy:ban``; the key prefix is added when subscribing);
    ``kind`` is ``"int"``, ``"json"`` or ``"literal"``; for json, ``fields`` maps every
    expected key to its type: ``"id"`` (user id, 1..2**31-1, a JSON integer or a decimal
    string), ``"int"`` (any integer, same forms) or ``"str"``; for literal, ``literal`` is the
    exact body. ``handler(state, value)`` receives the int, the validated dict (ids converted
    to int) or None for a literal.
    """

    channel: str
    kind: str
    handler: Handler
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    literal: bytes = b"reload"


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise PayloadError(f"{what} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value):
        return int(value)
    raise PayloadError(f"{what} is not an integer: {value!r}")


def _as_id(value: Any, what: str) -> int:
    number = _as_int(value, what)
    if not 1 <= number <= _ID_MAX:
        raise PayloadError(f"{what} out of range: {number}")
    return number


def parse(sub: Subscription, data: bytes) -> Any:
    """Validate ``data`` for ``sub`` (docs/integration.md §1 payload kinds).

    Returns the user id (int), the dict (ids as int) or None (literal). Raises
    :class:`PayloadError`; for a literal channel a body other than ``sub.literal`` raises it too
    (the caller skips it).
    """
    if len(data) > MAX_PAYLOAD:
        raise PayloadError(f"payload of {len(data)} bytes is too large")
    if sub.kind == "literal":
        if data != sub.literal:
            raise PayloadError(f"body is not {sub.literal!r}")
        return None
    if sub.kind == "int":
        match = _INT.fullmatch(data)
        if match is None:
            raise PayloadError("body is not a decimal user id")
        return _as_id(match.group(1).decode(), "user id")
    if sub.kind != "json":
        raise PayloadError(f"unknown payload kind {sub.kind!r}")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"JSON {type(obj).__name__}, expected an object")
    if set(obj) != set(sub.fields):
        raise PayloadError(f"keys {sorted(obj)} != expected {sorted(sub.fields)}")
    out: dict[str, Any] = {}
    for key, kind in sub.fields.items():
        value = obj[key]
        if kind == "id":
            out[key] = _as_id(value, key)
        elif kind == "int":
            out[key] = _as_int(value, key)
        elif kind == "str":
            if not isinstance(value, str):
                raise PayloadError(f"{key} is not a string: {value!r}")
            out[key] = value
        else:
            raise PayloadError(f"unknown field type {kind!r} for {key}")
    return out


def client_name(prefix: str) -> str:
    """Connection name of the listener: ``pep.py-pubsub:<prefix>``, with every character that a
    Redis client name cannot hold (space, control, non-ASCII) replaced by ``_``."""
    return "pep.py-pubsub:" + "".join(c if "!" <= c <= "~" else "_" for c in prefix)


def _count(channel: str, outcome: str) -> None:
    metrics.count_pubsub(channel, outcome)


class Listener:
    """The subscriber of one :class:`State`: a background task that owns its connection.

    ``subscriptions``: the channels and their handlers; ``wait``: seconds :meth:`start` waits
    for the first subscription (so that messages published right after start-up are not lost);
    ``on_reconnect(state)``: a coroutine function run in the background after each reconnection.
    """

    def __init__(self, state: State, subscriptions: Iterable[Subscription], wait: float = 5.0,
                 on_reconnect: Callable[["State"], Awaitable[Any]] | None = None) -> None:
        self.state = state
        # run (as a background task) after every reconnection: the catch-up of what the lost
        # messages changed (services.pubsub_handlers.catch_up, docs/security.md)
        self.on_reconnect = on_reconnect
        self.wait = wait
        self.redis = state.redis
        self.by_channel: dict[bytes, Subscription] = {
            self.redis.key(s.channel).encode(): s for s in subscriptions
        }
        self.name = client_name(self.redis.prefix)
        self.subscribed = asyncio.Event()  # set while subscribed
        self.connections = 0  # successful subscriptions so far (1 = first, >1 = reconnects)
        self.task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Whether the listener is subscribed right now."""
        return self.subscribed.is_set()

    async def start(self) -> None:
        """Start the background task (connect, subscribe, handle, reconnect) and wait at most
        ``wait`` seconds for the first subscription (logged when it does not come)."""
        self.task = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self.subscribed.wait()), self.wait)
        except asyncio.TimeoutError:
            log.warning("pub/sub not subscribed after %.0f s; retrying in the background", self.wait)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the task and wait until its connection is closed, at most ``timeout`` seconds
        (a connection that does not close in time is logged and left to the garbage collector,
        so a stop never hangs on Redis)."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.warning("pub/sub listener did not stop within %.0f s", timeout)
            elif not task.cancelled() and task.exception() is not None:
                log.error("pub/sub listener ended with %r", task.exception())

    async def _run(self) -> None:
        backoff = BACKOFF_MIN
        failures = 0  # failed attempts since the last subscription (one warning per outage)
        while True:
            client = self.redis.pubsub_client(self.name)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.by_channel)
                self.connections += 1
                self.subscribed.set()
                backoff = BACKOFF_MIN
                if self.connections == 1:
                    log.info("subscribed to %d channels as %s", len(self.by_channel), self.name)
                else:
                    log.warning("subscribed again after a lost connection (%d channels, %d failed attempt(s))",
                                len(self.by_channel), failures)
                    self.state.spawn(self._resync(), "redis keys resync after reconnect")
                    if self.on_reconnect is not None:
                        self.state.spawn(self.on_reconnect(self.state), "pub/sub catch-up after reconnect")
                failures = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        await self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                failures += 1
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "pub/sub connection lost (%s: %s); reconnecting every %.1f s at most",
                        type(exc).__name__, exc, BACKOFF_MAX)
            except Exception:
                failures += 1
                log.exception("pub/sub listener failed; reconnecting in %.1f s", backoff)
            finally:
                self.subscribed.clear()
                await _close(pubsub, client)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # never more than BACKOFF_MAX
            backoff = min(BACKOFF_MAX, backoff * 2)

    async def _dispatch(self, raw_channel: Any, data: Any) -> None:
        """Validate one message and run its handler; never raises (except cancellation)."""
        channel = raw_channel if isinstance(raw_channel, bytes) else str(raw_channel).encode()
        sub = self.by_channel.get(channel)
        if sub is None:
            log.warning("message on unexpected channel %r dropped", channel)
            return
        body = data if isinstance(data, bytes) else str(data).encode()
        try:
            value = parse(sub, body)
        except PayloadError as exc:
            level = logging.INFO if sub.kind == "literal" else logging.WARNING
            log.log(level, "%s: malformed message %r skipped: %s", sub.channel, body[:200], exc)
            _count(sub.channel, "invalid")
            return
        log.info("%s: %r", sub.channel, body[:200])
        try:
            await asyncio.wait_for(sub.handler(self.state, value), HANDLER_TIMEOUT)
        except asyncio.TimeoutError:
            log.error("%s: handler did not finish within %.0f s; skipped", sub.channel, HANDLER_TIMEOUT)
            _count(sub.channel, "error")
        except Exception:
            log.exception("%s: handler failed on %r", sub.channel, body[:200])
            _count(sub.channel, "error")
        else:
            _count(sub.channel, "ok")

    async def _resync(self) -> None:
        await session.resync_redis(self.state)


async def _close(pubsub: Any, client: Any) -> None:
    for closer in (pubsub.aclose, client.aclose):
        try:
            await closer()
        except Exception:  # a dead connection: nothing left to close cleanly
            pass
