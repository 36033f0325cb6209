"""Failure counters for login abuse: a sliding window of failure times per key (IP or account).

Used by the login so that, past the limit, a request is refused before any bcrypt work. Memory
is bounded: at most ``max_keys`` keys are kept (the oldest entries are dropped first) and each
key keeps at most ``limit`` timestamps.

Attempts still in flight count against the limit too (docs/security.md, "Hardening II"): the
login takes a slot with :meth:`FailureLimiter.begin` before the password check and gives it
back with :meth:`FailureLimiter.end`, so a burst of simultaneous attempts cannot all pass the
check before the first failure is recorded.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.token import Token

log = logging.getLogger("pep.limits")

# the key of a client address: IPv4 as is, IPv6 by its /64 (helpers/netlimits.py)
from helpers.netlimits import address_key as limit_key  # noqa: F401  (re-exported for the login)


class FailureLimiter:
    """Refuse a key after ``limit`` failures (plus attempts in flight) within ``window`` seconds.

    ``limit`` >= 1 attempts, ``window`` > 0 seconds, ``max_keys`` keys kept at most; raises
    ValueError otherwise.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        # key -> attempts that took a slot with begin() and have not ended yet
        self._in_flight: dict[str, int] = {}

    def _recent(self, key: str, now: float | None) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        now = time.monotonic() if now is None else now
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def blocked(self, key: str, now: float | None = None) -> bool:
        """Whether ``key``'s failures within the window plus its attempts in flight reach the limit."""
        return self._recent(key, now) + self._in_flight.get(key, 0) >= self.limit

    def begin(self, key: str, now: float | None = None) -> bool:
        """Take an in-flight slot for one attempt of ``key``; False (nothing taken) when blocked.

        Every True must be followed by exactly one :meth:`end`.
        """
        if self.blocked(key, now):
            return False
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return True

    def end(self, key: str, failed: bool, now: float | None = None) -> None:
        """Give back the slot of :meth:`begin`; record a failure when ``failed``."""
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)
        if failed:
            self.failure(key, now)

    def in_flight(self, key: str) -> int:
        """Attempts of ``key`` between :meth:`begin` and :meth:`end` right now."""
        return self._in_flight.get(key, 0)

    def failure(self, key: str, now: float | None = None) -> None:
        """Record one failure of ``key``."""
        now = time.monotonic() if now is None else now
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = collections.deque(maxlen=self.limit)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful login)."""
        self._failures.pop(key, None)


class Window:
    """A fixed-window counter for one token and one kind of action (docs/security.md,
    "Hardening II: in game"): at most ``limit`` actions per ``window`` seconds.

    The limit and the window are passed on each call (they come from the configuration), so
    an instance holds three numbers only. ``refused`` counts the refusals in the current
    window, so a caller can log the first refusal and stay quiet about the rest.
    """

    __slots__ = ("start", "count", "refused")

    def __init__(self) -> None:
        self.start = 0.0  # time.monotonic() seconds at the start of the current window
        self.count = 0
        self.refused = 0

    def allow(self, limit: int, window: float, now: float | None = None) -> bool:
        """Count one action; False (and ``refused`` + 1) when ``limit`` were already counted
        within the current window of ``window`` seconds."""
        now = time.monotonic() if now is None else now
        if now - self.start >= window:
            self.start = now
            self.count = 0
            self.refused = 0
        if self.count >= limit:
            self.refused += 1
            return False
        self.count += 1
        return True


def allow(token: Token, window: Window, what: str, limit: int, seconds: float) -> bool:
    """Count one ``what`` of ``token`` in ``window`` (``limit`` per ``seconds``); False when over
    the limit, logged once per window (docs/security.md, "Hardening II: in game")."""
    if window.allow(limit, seconds):
        return True
    if window.refused == 1:
        log.info("user=%d name=%s: %s refused, more than %d in %g s (dropping until the window ends)",
                 token.user_id, token.username, what, limit, seconds)
    return False
