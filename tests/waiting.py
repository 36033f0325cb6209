"""Waiting for background work without fixed sleeps.

The server does slow work (MySQL, Redis, pub/sub) in background tasks and tells nobody when it
is done; a test waits for the *effect* instead: :func:`wait_until` polls a condition until it
holds or a deadline passes, and fails with a readable message at the deadline. In-process
tests wait for ``await state.drain_tasks()`` (objects/state.py) or :func:`until`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, Awaitable, Callable, Iterator


#: ``[sessions] logout_grace`` of the test servers (tests/conftest.py BASE_SERVER_ENV), seconds
LOGOUT_GRACE = 1.0


def past_logout_grace(*clients: Any, grace: float = LOGOUT_GRACE, margin: float = 0.15) -> None:
    """Return once every client's session is older than the logout grace (a logout within
    ``grace`` seconds of the login is ignored: docs/rules.md §7.2). The grace period passing
    *is* the behaviour, so this sleeps, but only what is left of it since each client's login
    (``client.logged_in_at``, set by tests/client.py), plus ``margin`` for the clock of the
    server (its login time is before our answer arrived, so the margin is generous)."""
    latest = max((getattr(c, "logged_in_at", 0.0) for c in clients), default=0.0)
    left = latest + grace + margin - time.monotonic()
    if left > 0:
        time.sleep(left)


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05,
               what: str = "") -> Any:
    """Call ``predicate`` every ``interval`` seconds until it returns a true value, and return
    that value. Raises AssertionError (naming ``what``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or predicate} still false after {timeout} s (last value {value!r})")
        time.sleep(interval)


def holds_for(predicate: Callable[[], Any], duration: float = 0.5, interval: float = 0.05,
              what: str = "") -> None:
    """Check that ``predicate`` stays true for ``duration`` seconds (something must NOT happen).
    Raises AssertionError at the first false value."""
    deadline = time.monotonic() + duration
    while True:
        value = predicate()
        if not value:
            raise AssertionError(f"{what or predicate} became false ({value!r})")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


async def until(predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02,
                what: str = "") -> Any:
    """:func:`wait_until` for in-process tests: awaits between the checks (so the server's tasks
    run); ``predicate`` may be a coroutine function."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"{what or predicate} still false after {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


class Subscription:
    """A Redis pub/sub subscription of a test (redis-py, synchronous): :meth:`wait_json` waits
    for the first message whose JSON body satisfies a predicate, :meth:`next_message` returns
    the next message or None. Use :func:`subscribed`, which closes it."""

    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    def next_message(self, timeout: float = 0.5) -> Any:
        """The next published message (redis-py's dict, ``type`` ``message``) within ``timeout``
        seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.pubsub.get_message(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            if message is not None and message["type"] == "message":
                return message
            if time.monotonic() >= deadline:
                return None

    def messages(self, wait: float = 1.0) -> list[str]:
        """Every message body (text) published within the next ``wait`` seconds, in order; the
        window is the behaviour (what arrives in it, and that nothing else does)."""
        out = []
        deadline = time.monotonic() + wait
        while True:
            message = self.next_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                return out
            data = message["data"]
            out.append(data.decode() if isinstance(data, bytes) else data)

    def close(self) -> None:
        self.pubsub.close()

    def wait_json(self, predicate: Callable[[Any], Any], timeout: float = 5.0) -> Any:
        """The JSON body (decoded) of the first message with ``predicate(body)`` true within
        ``timeout`` seconds, or None (other messages are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.next_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
            data = json.loads(message["data"])
            if predicate(data):
                return data
        return None


def subscribe(raw_redis: Any, channel: str, timeout: float = 5.0) -> Subscription:
    """Subscribe the redis-py client ``raw_redis`` to ``channel`` (the full, prefixed name) and
    wait for Redis to confirm it (instead of sleeping), so nothing published afterwards is
    missed. The caller closes it (or uses :func:`subscribed`)."""
    pubsub = raw_redis.pubsub()
    try:
        pubsub.subscribe(channel)
        confirmation = pubsub.get_message(timeout=timeout)
        assert confirmation is not None and confirmation["type"] == "subscribe", confirmation
    except BaseException:
        pubsub.close()
        raise
    return Subscription(pubsub)


@contextlib.contextmanager
def subscribed(raw_redis: Any, channel: str, timeout: float = 5.0) -> Iterator[Subscription]:
    """:func:`subscribe` as a context manager that closes the subscription on exit."""
    subscription = subscribe(raw_redis, channel, timeout)
    try:
        yield subscription
    finally:
        subscription.close()
