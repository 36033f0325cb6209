"""Waiting for background work without fixed sleeps.

The server does slow work (MySQL, Redis, pub/sub) in background tasks and tells nobody when it
is done; a test waits for the *effect* instead: :func:`wait_until` polls a condition until it
holds or a deadline passes, and fails with a readable message at the deadline. In-process
tests wait for ``await state.drain_tasks()`` (objects/state.py) or :func:`until`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable


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
