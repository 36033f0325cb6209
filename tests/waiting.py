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


@contextlib.contextmanager
def subscribed(raw_redis: Any, channel: str, timeout: float = 5.0) -> Iterator[Subscription]:
    """Subscribe the redis-py client ``raw_redis`` to ``channel`` (the full, prefixed name) and
    wait for the confirmation, so nothing published afterwards is missed; closes on exit."""
    pubsub = raw_redis.pubsub()
    try:
        pubsub.subscribe(channel)
        confirmation = pubsub.get_message(timeout=timeout)
        assert confirmation is not None and confirmation["type"] == "subscribe", confirmation
        yield Subscription(pubsub)
    finally:
        pubsub.close()
