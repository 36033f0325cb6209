"""Small in-memory stand-ins for MySQL and Redis, for unit tests and benchmarks that build a
:class:`objects.state.State` but do not test the integration with the real services.

* :class:`FakeDatabase` has the query interface of :class:`common.db.Database`; it answers
  every read with "no row" and every write with "nothing changed", and records each statement
  (``statements``: list of ``(sql, args)``).
* :class:`FakeRedis` has the interface of :class:`common.redis.Redis` that the server uses;
  it keeps ``online_users``, ``sessions`` (user id -> set of IPs), ``pending_renames`` and the
  ``published`` messages in memory.

Integration tests use the real MySQL and Redis (tests/conftest.py), never these.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from common.db import ExecResult


class FakeDatabase:
    """:class:`common.db.Database` without a server: no rows, no changes, statements recorded."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.closed = False

    async def fetch_one(self, sql: str, args: Any = ()) -> dict[str, Any] | None:
        self.statements.append((sql, args))
        return None

    async def fetch_all(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        self.statements.append((sql, args))
        return []

    async def fetch_value(self, sql: str, args: Any = (), default: Any = None) -> Any:
        self.statements.append((sql, args))
        return default

    async def execute(self, sql: str, args: Any = ()) -> ExecResult:
        self.statements.append((sql, args))
        return ExecResult(0, 0)

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> int:
        self.statements.append((sql, list(rows)))
        return 0

    async def transaction(self, fn: Callable[[Any], Any]) -> Any:
        raise NotImplementedError("FakeDatabase has no transactions")

    async def ping(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeRedis:
    """:class:`common.redis.Redis` without a server: the stack's keys as plain attributes."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.online_users: int | None = None
        self.sessions: dict[int, set[str]] = {}
        self.pending_renames: dict[int, str] = {}
        self.published: list[tuple[str, str]] = []
        self.closed = False

    def key(self, name: str) -> str:
        return self.prefix + name

    async def close(self) -> None:
        self.closed = True

    async def startup(self) -> None:
        self.online_users = 0
        self.sessions.clear()

    async def set_online_users(self, count: int) -> None:
        self.online_users = count

    async def add_session_ip(self, user_id: int, ip: str) -> None:
        if ip:
            self.sessions.setdefault(user_id, set()).add(ip)

    async def remove_session_ip(self, user_id: int, ip: str) -> None:
        self.sessions.get(user_id, set()).discard(ip)

    async def rank(self, leaderboard: str, user_id: int) -> int:
        return 0

    async def publish(self, channel: str, message: str) -> int:
        self.published.append((channel, message))
        return 0

    async def resync(self, online: int, sessions: Iterable[tuple[int, str]]) -> None:
        self.online_users = online
        for user_id, ip in sessions:
            await self.add_session_ip(user_id, ip)

    async def remove_from_sorted_sets(self, names: Iterable[str], member: str) -> None:
        return None

    async def set_pending_rename(self, user_id: int, new_name: str) -> None:
        self.pending_renames[user_id] = new_name

    async def forget_username(self, user_id: int, *safe_names: str) -> None:
        self.pending_renames.pop(user_id, None)

    async def republish_pending_rename(self, user_id: int) -> bool:
        return False


def fake_state(cfg: Any = None) -> Any:
    """A :class:`objects.state.State` on :class:`FakeDatabase` and :class:`FakeRedis`, with the
    default configuration unless ``cfg`` is given."""
    from helpers import config
    from objects.state import State

    return State(cfg if cfg is not None else config.load(None, environ={}), FakeDatabase(), FakeRedis())
