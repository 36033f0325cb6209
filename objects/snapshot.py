"""Checked reading of snapshot records (docs/operations.md "Deploys without disconnects").

A snapshot is outside input: it may be corrupt, truncated, written by another version or
forged by whoever can write the Redis key. Every ``from_snapshot`` of the owning objects
(:class:`objects.token.Token`, :class:`objects.channel.Channel`, :class:`objects.match.Match`)
reads its record through :class:`Record`, which checks the type and range of each field and
raises :class:`SnapshotError` naming the field; nothing is applied until the whole snapshot has
been read (``services.handover``). No state here.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any, Iterable

#: widest integer the snapshot accepts anywhere (privileges are 64-bit in some stacks)
INT_MAX = 2**63 - 1
#: longest time offset accepted, seconds (one year)
MAX_AGE = 365 * 86400.0
TOKEN_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class SnapshotError(ValueError):
    """A snapshot (or one of its records) is not acceptable; the message names the field."""


class Record:
    """Typed access to one JSON object of a snapshot, by field name.

    ``data`` must be a ``dict`` (else :class:`SnapshotError`); ``where`` names it in errors,
    e.g. ``"tokens[3]"``. Every getter raises :class:`SnapshotError` on a missing field (unless
    a default is given), a wrong type or a value out of range.
    """

    __slots__ = ("data", "where")

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise SnapshotError(f"{self.where}.{key}: missing")
        return default

    def fail(self, key: str, why: str) -> SnapshotError:
        """An error about field ``key``."""
        return SnapshotError(f"{self.where}.{key}: {why}")

    def int(self, key: str, low: int = -INT_MAX, high: int = INT_MAX, default: Any = None) -> int:
        """An integer in ``low..high`` (booleans are refused)."""
        value = self._get(key, _MISSING if default is None else default)
        if type(value) is not int or not low <= value <= high:
            raise self.fail(key, f"expected an integer in {low}..{high}")
        return value

    def opt_int(self, key: str, low: int = -INT_MAX, high: int = INT_MAX) -> int | None:
        """An integer in ``low..high`` or null (missing counts as null)."""
        value = self.data.get(key)
        if value is None:
            return None
        return self.int(key, low, high)

    def float(self, key: str, low: float = -1e18, high: float = 1e18, default: Any = None) -> float:
        """A finite number in ``low..high`` (integers accepted)."""
        value = self._get(key, _MISSING if default is None else default)
        if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
            raise self.fail(key, f"expected a number in {low:g}..{high:g}")
        return float(value)

    def age(self, key: str) -> float:
        """A time offset in seconds, 0..:data:`MAX_AGE` (how long before the snapshot)."""
        return self.float(key, 0.0, MAX_AGE)

    def opt_age(self, key: str) -> float | None:
        """An age or null."""
        return None if self.data.get(key) is None else self.age(key)

    def bool(self, key: str, default: Any = None) -> bool:
        """``true`` or ``false``."""
        value = self._get(key, _MISSING if default is None else default)
        if type(value) is not bool:
            raise self.fail(key, "expected true or false")
        return value

    def str(self, key: str, max_len: int = 256, default: Any = None) -> str:
        """A string of at most ``max_len`` characters."""
        value = self._get(key, _MISSING if default is None else default)
        if type(value) is not str or len(value) > max_len:
            raise self.fail(key, f"expected a string of at most {max_len} characters")
        return value

    def opt_str(self, key: str, max_len: int = 256) -> str | None:
        """A string or null."""
        return None if self.data.get(key) is None else self.str(key, max_len)

    def token_ref(self, key: str) -> str | None:
        """A session token string (UUID form) or null."""
        value = self.opt_str(key, 36)
        if value is not None and not TOKEN_RE.fullmatch(value):
            raise self.fail(key, "not a session token")
        return value

    def list(self, key: str, max_items: int, default: Any = None) -> list:
        """A JSON array of at most ``max_items`` elements."""
        value = self._get(key, _MISSING if default is None else default)
        if type(value) is not list or len(value) > max_items:
            raise self.fail(key, f"expected an array of at most {max_items} items")
        return value

    def ints(self, key: str, max_items: int, low: int = -INT_MAX, high: int = INT_MAX) -> list[int]:
        """An array of integers in ``low..high``."""
        items = self.list(key, max_items)
        for item in items:
            if type(item) is not int or not low <= item <= high:
                raise self.fail(key, f"expected integers in {low}..{high}")
        return items

    def strs(self, key: str, max_items: int, max_len: int = 256) -> list[str]:
        """An array of strings of at most ``max_len`` characters."""
        items = self.list(key, max_items)
        for item in items:
            if type(item) is not str or len(item) > max_len:
                raise self.fail(key, f"expected strings of at most {max_len} characters")
        return items

    def token_refs(self, key: str, max_items: int) -> list[str]:
        """An array of session token strings."""
        items = self.strs(key, max_items, 36)
        for item in items:
            if not TOKEN_RE.fullmatch(item):
                raise self.fail(key, "not a session token")
        return items

    def bytes(self, key: str, max_len: int) -> bytes:
        """Base64 text decoding to at most ``max_len`` bytes."""
        text = self.str(key, (max_len + 2) // 3 * 4)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(key, "not base64") from None

    def record(self, key: str) -> "Record":
        """A nested object."""
        return Record(self._get(key, _MISSING), f"{self.where}.{key}")


_MISSING = object()


def b64(data: bytes) -> str:
    """``data`` as base64 text (how queued packets are stored)."""
    return base64.b64encode(data).decode("ascii")


def records(items: Iterable[Any], where: str) -> Iterable[Record]:
    """Each item of a JSON array as a :class:`Record` named ``where[i]``."""
    for index, item in enumerate(items):
        yield Record(item, f"{where}[{index}]")
